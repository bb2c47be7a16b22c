// In-root path resolution (root_dir.hpp). The fallback walk mirrors RESOLVE_IN_ROOT: absolute
// symlink targets restart at the root, ".." never climbs above it, and at most 40 symlinks are
// followed (the kernel's MAXSYMLINKS, path_resolution(7)).
#include "oci/root_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <deque>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

std::atomic<bool> g_force_fallback{false};
// -1 unknown, 0 no openat2 (ENOSYS, or blocked by a seccomp filter), 1 available.
std::atomic<int> g_have_openat2{-1};

constexpr int kMaxSymlinks = 40;

}  // namespace

std::string clean_member_path(std::string_view name, bool* clamped) {
  std::vector<std::string_view> parts;
  bool climbed = !name.empty() && name.front() == '/';
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string_view::npos) j = name.size();
    std::string_view c = name.substr(i, j - i);
    if (c == "..") {
      if (parts.empty())
        climbed = true;
      else
        parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  if (clamped) *clamped = climbed;
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out += '/';
    out += p;
  }
  return out;
}

std::pair<std::string, std::string> split_parent(const std::string& clean) {
  auto slash = clean.rfind('/');
  if (slash == std::string::npos) return {"", clean};
  return {clean.substr(0, slash), clean.substr(slash + 1)};
}

void RootDir::force_fallback(bool on) {
  g_force_fallback = on;
}

bool RootDir::using_openat2() {
  return !g_force_fallback && g_have_openat2 != 0;
}

RootDir::RootDir(const std::string& path) : path_(path) {
  root_.reset(::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_) throw sys_error("open root directory", path);
}

int RootDir::resolve_openat2(const std::string& rel) {
  struct open_how how {};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const char* p = rel.empty() ? "." : rel.c_str();
  for (int tries = 0;; ++tries) {
    long fd = ::syscall(SYS_openat2, root_.get(), p, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    // EAGAIN: a concurrent rename raced with the lookup (openat2(2)); nobody else writes our
    // tree, but retry a few times rather than fail.
    if (errno == EAGAIN && tries < 8) continue;
    return -errno;
  }
}

int RootDir::resolve_walk(const std::string& rel) {
  std::vector<UniqueFd> stack;
  stack.emplace_back(::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0));
  if (!stack.back()) return -errno;
  std::deque<std::string> todo;
  for (auto& c : str::split(rel, '/')) todo.push_back(c);
  int links = 0;
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (stack.size() > 1) stack.pop_back();  // clamped at the root
      continue;
    }
    UniqueFd next(::openat(stack.back().get(), c.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next) return -errno;
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return -errno;
    if (S_ISLNK(st.st_mode)) {
      if (++links > kMaxSymlinks) return -ELOOP;
      char buf[4096];
      // readlinkat on an O_PATH fd with an empty name reads that link (readlinkat(2), 2.6.39+).
      ssize_t n = ::readlinkat(next.get(), "", buf, sizeof buf);
      if (n < 0) return -errno;
      if (static_cast<size_t>(n) == sizeof buf) return -ENAMETOOLONG;  // possibly truncated
      std::string target(buf, static_cast<size_t>(n));
      if (!target.empty() && target[0] == '/') stack.resize(1);
      auto parts = str::split(target, '/');
      todo.insert(todo.begin(), parts.begin(), parts.end());
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
    stack.push_back(std::move(next));
  }
  return stack.back().release();
}

int RootDir::try_open_dir(const std::string& rel) {
  if (!g_force_fallback && g_have_openat2 != 0) {
    int fd = resolve_openat2(rel);
    if (fd != -ENOSYS && fd != -EPERM) {
      g_have_openat2 = 1;
      return fd;
    }
    if (g_have_openat2 == -1)
      g_have_openat2 = 0;  // fall through to the walk from now on
    else if (fd == -EPERM)
      return fd;
  }
  return resolve_walk(rel);
}

UniqueFd RootDir::open_dir(const std::string& rel, bool create, std::vector<std::string>* created) {
  if (!create) {
    int fd = try_open_dir(rel);
    if (fd >= 0) return UniqueFd(fd);
    if (fd == -ENOTDIR) throw Error("/" + rel + ": a component of the path is not a directory");
    if (fd == -ELOOP) throw Error("/" + rel + ": too many levels of symbolic links");
    throw sys_error("resolve", "/" + rel, -fd);
  }
  return open_dir_at_depth(rel, created, 0);
}

UniqueFd RootDir::open_dir_at_depth(const std::string& rel, std::vector<std::string>* created, int depth) {
  if (depth > kMaxSymlinks) throw Error("/" + rel + ": too many levels of symbolic links");
  int fd = try_open_dir(rel);
  if (fd >= 0) return UniqueFd(fd);
  if (fd == -ENOENT && !rel.empty()) {
    auto [parent, base] = split_parent(rel);
    UniqueFd pfd = open_dir_at_depth(parent, created, depth);
    if (::mkdirat(pfd.get(), base.c_str(), 0700) == 0) {
      if (created) created->push_back(rel);
    } else if (errno != EEXIST) {
      throw sys_error("create directory", "/" + rel);
    }
    fd = try_open_dir(rel);
    if (fd >= 0) return UniqueFd(fd);
    if (fd == -ENOENT) {
      // EEXIST yet ENOENT: base is a dangling symlink. Make its target, resolved inside the
      // root (relative to the link's directory, or to the root when absolute).
      char buf[4096];
      ssize_t n = ::readlinkat(pfd.get(), base.c_str(), buf, sizeof buf);
      if (n < 0) throw sys_error("create directory", "/" + rel);
      if (static_cast<size_t>(n) == sizeof buf) throw Error("/" + rel + ": symbolic link target too long");
      std::string target(buf, static_cast<size_t>(n));
      std::string joined = target[0] == '/' ? target : (parent.empty() ? "" : parent + "/") + target;
      open_dir_at_depth(clean_member_path(joined), created, depth + 1);
      fd = try_open_dir(rel);
      if (fd >= 0) return UniqueFd(fd);
    }
  }
  if (fd == -ENOTDIR) throw Error("/" + rel + ": a component of the path is not a directory");
  if (fd == -ELOOP) throw Error("/" + rel + ": too many levels of symbolic links");
  throw sys_error("resolve", "/" + rel, -fd);
}

static void grant_at(int dirfd, const char* name, const std::string& shown) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(st.st_mode)) return;
  mode_t m = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) {
    // fchmodat follows symlinks, but name is a directory (checked above, nobody else writes here).
    if ((m & 0700) != 0700 && ::fchmodat(dirfd, name, m | 0700, 0) != 0) throw sys_error("chmod", shown);
    int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw sys_error("open", shown);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      throw sys_error("opendir", shown);
    }
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") grant_at(::dirfd(d), n.c_str(), shown + "/" + n);
    }
    ::closedir(d);
  } else if (S_ISREG(st.st_mode)) {
    mode_t want = m | 0600 | ((m & 0111) ? 0100 : 0);
    if (want != m && ::fchmodat(dirfd, name, want, 0) != 0) throw sys_error("chmod", shown);
  }
}

void grant_owner_access(const std::string& root) {
  grant_at(AT_FDCWD, root.c_str(), root);
}

void remove_at(int dirfd, const std::string& name) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) return;
  if (errno != EISDIR && errno != EPERM) throw sys_error("remove", name);
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == EACCES) {
    // Our own directory with mode 0000/0555 from an image: make it traversable first. The
    // final component is a directory (unlinkat said EISDIR), and fchmodat on it cannot follow a
    // symlink because O_NOFOLLOW open above would have failed differently for one.
    struct stat st;
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      ::fchmodat(dirfd, name.c_str(), 0700, 0);
    fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  }
  if (fd < 0) throw sys_error("open directory to remove it", name);
  struct stat st;
  if (::fstat(fd, &st) == 0 && (st.st_mode & 0700) != 0700) ::fchmod(fd, (st.st_mode & 07777) | 0700);
  DIR* dir = ::fdopendir(fd);
  if (!dir) {
    ::close(fd);
    throw sys_error("opendir", name);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  for (const auto& n : names) remove_at(::dirfd(dir), n);
  ::closedir(dir);
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    throw sys_error("remove directory", name);
}

}  // namespace rbox::oci
