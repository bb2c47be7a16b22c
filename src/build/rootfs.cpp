// RootFs (rootfs.hpp): every path is resolved with openat2(2) RESOLVE_IN_ROOT, which treats
// the directory fd as "/" for absolute symlinks and "..", so nothing escapes the tree.
#include "build/rootfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

#include "util/error.hpp"

namespace rbox::build {
namespace {

std::string clean(std::string_view rel) {
  std::string out;
  size_t i = 0;
  while (i < rel.size()) {
    while (i < rel.size() && rel[i] == '/') ++i;
    size_t j = i;
    while (j < rel.size() && rel[j] != '/') ++j;
    if (j > i) {
      std::string_view part = rel.substr(i, j - i);
      if (part != ".") {
        if (!out.empty()) out += '/';
        out += part;
      }
    }
    i = j;
  }
  return out;
}

long openat2_raw(int dirfd, const std::string& path, int flags, mode_t mode) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  if (flags & O_CREAT) how.mode = mode;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, path.empty() ? "." : path.c_str(), &how, sizeof how);
    if (fd < 0 && errno == EAGAIN) continue;  // a concurrent rename raced the lookup; retry
    return fd;
  }
}

void remove_at(int parent, const std::string& name, const std::string& shown) {
  if (::unlinkat(parent, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw sys_error("unlink", shown);
  UniqueFd d(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) {
    if (errno == EACCES && ::fchmodat(parent, name.c_str(), 0700, 0) == 0)
      d.reset(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) throw sys_error("open", shown);
  }
  struct stat st {};
  if (::fstat(d.get(), &st) == 0 && (st.st_mode & 0700) != 0700) ::fchmod(d.get(), st.st_mode | 0700);
  int dup = ::dup(d.get());
  if (dup < 0) throw sys_error("dup", shown);
  DIR* dir = ::fdopendir(dup);
  if (!dir) {
    ::close(dup);
    throw sys_error("opendir", shown);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dir);
  for (const auto& n : names) remove_at(d.get(), n, shown + "/" + n);
  d.reset();
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) throw sys_error("rmdir", shown);
}

}  // namespace

RootFs::RootFs(std::string path) : path_(std::move(path)) {
  dir_.reset(::open(path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_) throw sys_error("open", path_);
}

void RootFs::reopen() {
  UniqueFd fd(::open(path_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throw sys_error("open", path_);
  dir_ = std::move(fd);
}

std::string RootFs::host_path(std::string_view rel) const {
  std::string c = clean(rel);
  return c.empty() ? path_ : path_ + "/" + c;
}

std::pair<std::string, std::string> RootFs::split(std::string_view rel) {
  std::string c = clean(rel);
  size_t slash = c.rfind('/');
  if (slash == std::string::npos) return {"", c};
  return {c.substr(0, slash), c.substr(slash + 1)};
}

std::optional<UniqueFd> RootFs::try_open(std::string_view rel, int flags, mode_t mode) const {
  long fd = openat2_raw(dir_.get(), clean(rel), flags, mode);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return std::nullopt;
    throw sys_error("open", host_path(rel));
  }
  return UniqueFd(static_cast<int>(fd));
}

UniqueFd RootFs::open(std::string_view rel, int flags, mode_t mode) const {
  long fd = openat2_raw(dir_.get(), clean(rel), flags, mode);
  if (fd < 0) throw sys_error("open", host_path(rel));
  return UniqueFd(static_cast<int>(fd));
}

UniqueFd RootFs::open_parent(std::string_view rel, std::string* leaf) const {
  auto [parent, name] = split(rel);
  if (name.empty() || name == "..") throw Error("invalid path inside the image: '" + std::string(rel) + "'");
  *leaf = name;
  return open(parent, O_PATH | O_DIRECTORY);
}

std::optional<struct stat> RootFs::stat(std::string_view rel, bool follow) const {
  std::string c = clean(rel);
  struct stat st {};
  if (c.empty()) {
    if (::fstat(dir_.get(), &st) != 0) throw sys_error("stat", path_);
    return st;
  }
  std::string leaf;
  UniqueFd parent;
  try {
    parent = open_parent(c, &leaf);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (follow) {
    auto fd = try_open(c, O_PATH);
    if (!fd || ::fstat(fd->get(), &st) != 0) return std::nullopt;
    return st;
  }
  if (::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  return st;
}

bool RootFs::is_dir(std::string_view rel) const {
  auto st = stat(rel, true);
  return st && S_ISDIR(st->st_mode);
}

bool RootFs::is_file(std::string_view rel) const {
  auto st = stat(rel, true);
  return st && S_ISREG(st->st_mode);
}

void RootFs::mkdirs(std::string_view rel, mode_t mode) const {
  // A dangling symlink on the way is followed by creating its target inside the root, as
  // Apptainer's MkdirAll on a securejoin'ed path does. 40 = the kernel's MAXSYMLINKS.
  std::string c = clean(rel);
  for (int hops = 0; hops < 40; ++hops) {
    bool restart = false;
    for (size_t i = 0; i <= c.size() && !restart; ++i) {
      if (i < c.size() && c[i] != '/') continue;
      std::string part = c.substr(0, i);
      if (part.empty() || try_open(part, O_PATH | O_DIRECTORY)) continue;
      std::string leaf;
      UniqueFd parent = open_parent(part, &leaf);
      if (::mkdirat(parent.get(), leaf.c_str(), mode) == 0) continue;
      if (errno != EEXIST) throw sys_error("mkdir", host_path(part));
      char target[4096];
      ssize_t n = ::readlinkat(parent.get(), leaf.c_str(), target, sizeof target - 1);
      if (n <= 0) throw Error(host_path(part) + ": exists and is not a directory");
      target[n] = 0;
      std::string parent_rel = split(part).first;
      std::string dest = target[0] == '/' ? std::string(target) : parent_rel + "/" + target;
      c = clean(dest + c.substr(i));
      restart = true;
    }
    if (!restart) return;
  }
  throw Error(host_path(rel) + ": too many levels of symbolic links");
}

void RootFs::write_file(std::string_view rel, std::string_view data, mode_t mode, bool overwrite) const {
  // Like Apptainer's makeFile: an existing file first gets the mode (images ship read-only
  // /etc/hosts), through an O_PATH fd so a mode of 0000 does not stop us.
  if (auto st = stat(rel, true); st && S_ISREG(st->st_mode)) {
    UniqueFd p = open(rel, O_PATH);
    if (::chmod(("/proc/self/fd/" + std::to_string(p.get())).c_str(), mode) != 0)
      throw sys_error("chmod", host_path(rel));
    if (!overwrite) return;
  }
  UniqueFd fd = open(rel, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (::fchmod(fd.get(), mode) != 0) throw sys_error("chmod", host_path(rel));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw sys_error("write", host_path(rel));
    done += static_cast<size_t>(n);
  }
}

void RootFs::append_file(std::string_view rel, std::string_view data) const {
  UniqueFd fd = open(rel, O_WRONLY | O_APPEND);
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    throw sys_error("write", host_path(rel));
}

std::optional<std::string> RootFs::read_file(std::string_view rel) const {
  auto fd = try_open(rel, O_RDONLY);
  if (!fd) return std::nullopt;
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd->get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sys_error("read", host_path(rel));
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void RootFs::symlink(const std::string& target, std::string_view rel) const {
  std::string leaf;
  UniqueFd parent = open_parent(rel, &leaf);
  if (::symlinkat(target.c_str(), parent.get(), leaf.c_str()) != 0)
    throw sys_error("symlink", host_path(rel));
}

void RootFs::remove(std::string_view rel) const {
  std::string leaf;
  std::optional<UniqueFd> parent;
  try {
    parent = open_parent(rel, &leaf);
  } catch (const Error&) {
    return;  // parent missing: nothing to remove
  }
  remove_at(parent->get(), leaf, host_path(rel));
}

void RootFs::rename(std::string_view from, std::string_view to) const {
  std::string lf, lt;
  UniqueFd pf = open_parent(from, &lf), pt = open_parent(to, &lt);
  if (::renameat(pf.get(), lf.c_str(), pt.get(), lt.c_str()) != 0) throw sys_error("rename", host_path(from));
}

std::vector<std::string> RootFs::list(std::string_view rel) const {
  std::vector<std::string> names;
  auto fd = try_open(rel, O_RDONLY | O_DIRECTORY);
  if (!fd) return names;
  DIR* dir = ::fdopendir(fd->release());
  if (!dir) throw sys_error("opendir", host_path(rel));
  while (dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace rbox::build
