// %files copying (files_copy.hpp). Destination side: a directory fd resolved with RootFs
// (RESOLVE_IN_ROOT), then every entry below it created with *at() calls and O_NOFOLLOW; an
// existing non-directory in the way is unlinked first (where `cp -f` would write through a
// symlink, which could point out of the image). Source side: host files are opened following
// links (cp -L); stage and tree copies open every component with O_NOFOLLOW.
#include "build/files_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace rbox::build {
namespace {

struct CopyMode {
  bool follow = false;    // dereference symlinks below the top (cp -L)
  bool preserve = false;  // keep modes incl. set-id bits, times, owners (tar/cp -a); else cp's rules
  mode_t umask = 0002;    // Apptainer builds with umask 002
};

void copy_data(int in, int out, const std::string& shown) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sys_error("read", shown);
    if (n == 0) return;
    ssize_t done = 0;
    while (done < n) {
      ssize_t w = ::write(out, buf + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw sys_error("write", shown);
      done += w;
    }
  }
}

std::vector<std::string> list_dir(int dirfd, const std::string& shown) {
  int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) throw sys_error("open", shown);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    throw sys_error("opendir", shown);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void apply_meta(int dst_parent, const std::string& name, const struct stat& st, const CopyMode& m,
                bool is_link) {
  if (!m.preserve) return;
  // Owners only stick as (fake) root; elsewhere they fail, which is fine: files belong to us.
  if (::fchownat(dst_parent, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
  }
  if (!is_link) ::fchmodat(dst_parent, name.c_str(), st.st_mode & 07777, 0);
  struct timespec ts[2] = {st.st_atim, st.st_mtim};
  ::utimensat(dst_parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

// Removes whatever non-directory sits at dst_parent/name (never following it).
void clear_non_dir(int dst_parent, const std::string& name) {
  struct stat st {};
  if (::fstatat(dst_parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
    ::unlinkat(dst_parent, name.c_str(), 0);
}

// Copies the source object (an fd opened O_PATH or readable, with its stat) to dst_parent/name.
void copy_entry(int src_fd, const struct stat& st, const std::string& src_shown, int dst_parent,
                const std::string& name, const std::string& dst_shown, const CopyMode& m) {
  if (S_ISDIR(st.st_mode)) {
    mode_t mode = m.preserve ? (st.st_mode & 07777) : (st.st_mode & 0777 & ~m.umask);
    clear_non_dir(dst_parent, name);
    if (::mkdirat(dst_parent, name.c_str(), mode | 0700) != 0 && errno != EEXIST)
      throw sys_error("mkdir", dst_shown);
    UniqueFd dst(::openat(dst_parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dst) throw sys_error("open", dst_shown);
    UniqueFd src(::openat(src_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!src) throw sys_error("open", src_shown);
    for (const auto& child : list_dir(src.get(), src_shown)) {
      std::string cs = src_shown + "/" + child, ds = dst_shown + "/" + child;
      struct stat cst {};
      int flags = m.follow ? 0 : AT_SYMLINK_NOFOLLOW;
      if (::fstatat(src.get(), child.c_str(), &cst, flags) != 0) throw sys_error("stat", cs);
      int open_flags = O_PATH | O_CLOEXEC | (m.follow ? 0 : O_NOFOLLOW);
      UniqueFd cfd(::openat(src.get(), child.c_str(), open_flags));
      if (!cfd) throw sys_error("open", cs);
      copy_entry(cfd.get(), cst, cs, dst.get(), child, ds, m);
    }
    if (m.preserve) {
      apply_meta(dst_parent, name, st, m, false);
    } else if (::fchmodat(dst_parent, name.c_str(), mode, 0) != 0) {
      throw sys_error("chmod", dst_shown);
    }
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    ssize_t n = ::readlinkat(src_fd, "", target.data(), target.size());
    if (n < 0) throw sys_error("readlink", src_shown);
    target.resize(static_cast<size_t>(n));
    clear_non_dir(dst_parent, name);
    if (::symlinkat(target.c_str(), dst_parent, name.c_str()) != 0) throw sys_error("symlink", dst_shown);
    apply_meta(dst_parent, name, st, m, true);
    return;
  }
  if (S_ISREG(st.st_mode)) {
    // Reopen the O_PATH fd for reading through its /proc magic link (no path lookup again).
    UniqueFd in(::open(("/proc/self/fd/" + std::to_string(src_fd)).c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) throw sys_error("open", src_shown);
    mode_t mode = m.preserve ? (st.st_mode & 07777) : (st.st_mode & 0777 & ~m.umask);
    clear_non_dir(dst_parent, name);
    UniqueFd out(::openat(dst_parent, name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                          mode | 0200));
    if (!out) throw sys_error("create", dst_shown);
    copy_data(in.get(), out.get(), src_shown);
    if (m.preserve) {
      apply_meta(dst_parent, name, st, m, false);
    } else if (::fchmod(out.get(), mode) != 0) {
      throw sys_error("chmod", dst_shown);
    }
    return;
  }
  if (S_ISFIFO(st.st_mode)) {
    clear_non_dir(dst_parent, name);
    if (::mkfifoat(dst_parent, name.c_str(), st.st_mode & 0777) != 0) throw sys_error("mkfifo", dst_shown);
    apply_meta(dst_parent, name, st, m, false);
    return;
  }
  // Device nodes and sockets cannot be recreated without real root; skip them as tar would.
}

std::string join_keep_slash(const std::string& a, const std::string& b) {
  std::string out = a;
  if (!out.empty() && out.back() != '/' && !b.empty() && b.front() != '/') out += '/';
  out += b;
  return out;
}

// Copies source (already opened, with stat) to dst inside root with cp's rules: into an existing
// directory as its basename, else as dst itself; parents created (dst ending in '/' = a dir).
void copy_to_root(int src_fd, const struct stat& st, const std::string& src_shown,
                  const std::string& src_name, const std::string& dst, const RootFs& root,
                  const CopyMode& m) {
  const bool dir_hint = !dst.empty() && dst.back() == '/';
  if (!root.exists(dst) && !root.stat(dst, true)) {
    if (dir_hint)
      root.mkdirs(dst, 0755);
    else
      root.mkdirs(RootFs::split(dst).first, 0755);
  }
  std::string parent, leaf;
  if (root.is_dir(dst)) {
    parent = dst;
    leaf = src_name;
  } else {
    auto [p, l] = RootFs::split(dst);
    parent = p;
    leaf = l;
  }
  if (leaf.empty() || leaf == "." || leaf == "..")
    throw Error("%files: cannot copy " + src_shown + " to '" + dst + "'");
  UniqueFd pfd = root.open(parent, O_RDONLY | O_DIRECTORY);
  copy_entry(src_fd, st, src_shown, pfd.get(), leaf, root.host_path(parent + "/" + leaf), m);
}

}  // namespace

std::vector<std::string> expand_glob(const std::string& pattern, const std::string& base) {
  std::string full = pattern;
  if (!base.empty() && (pattern.empty() || pattern[0] != '/')) full = base + "/" + pattern;
  glob_t g{};
  int rc = ::glob(full.c_str(), GLOB_NOCHECK | GLOB_BRACE | GLOB_TILDE, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  if (out.empty()) out.push_back(full);
  return out;
}

size_t copy_from_host(const std::string& src, const std::string& dst, const RootFs& root) {
  CopyMode m;
  m.follow = true;
  size_t n = 0;
  for (const auto& path : expand_glob(src)) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0)
      throw Error("%files: cannot copy " + path + ": " + std::strerror(errno));
    std::string d = dst.empty() ? path : dst;
    copy_to_root(fd.get(), st, path, fs::basename(path), d, root, m);
    ++n;
  }
  return n;
}

size_t copy_from_stage(const std::string& src, const std::string& dst, const RootFs& from, const RootFs& to) {
  CopyMode m;
  m.preserve = true;
  size_t n = 0;
  const std::string prefix = from.path();
  for (const auto& match : expand_glob(join_keep_slash(prefix, src))) {
    std::string rel = match.substr(std::min(prefix.size(), match.size()));
    // The named source is dereferenced inside the stage's root; links below it are kept.
    auto fd = from.try_open(rel, O_PATH);
    struct stat st {};
    if (!fd || ::fstat(fd->get(), &st) != 0)
      throw Error("%files from stage: " + rel + " does not exist in " + prefix);
    std::string name = RootFs::split(rel).second;
    copy_to_root(fd->get(), st, from.host_path(rel), name, dst.empty() ? rel : dst, to, m);
    ++n;
  }
  return n;
}

void copy_tree(const std::string& src, const RootFs& root) {
  CopyMode m;
  m.preserve = true;
  UniqueFd sfd(::open(src.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!sfd) throw sys_error("open", src);
  UniqueFd dfd = root.open("", O_RDONLY | O_DIRECTORY);
  for (const auto& child : list_dir(sfd.get(), src)) {
    struct stat st {};
    if (::fstatat(sfd.get(), child.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      throw sys_error("stat", src + "/" + child);
    UniqueFd cfd(::openat(sfd.get(), child.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!cfd) throw sys_error("open", src + "/" + child);
    copy_entry(cfd.get(), st, src + "/" + child, dfd.get(), child, root.host_path(child), m);
  }
}

}  // namespace rbox::build
