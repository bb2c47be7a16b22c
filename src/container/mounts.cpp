// Implementation of container/mounts.hpp. Path walking uses O_PATH|O_NOFOLLOW descriptors one
// component at a time, so a symlink inside an image can never point a mount or a mkdir at a
// host path: symlinks are read and re-resolved against the container root.
#include "container/mounts.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::container::sys {

void mount(const std::string& source, const std::string& target, const char* fstype, unsigned long flags,
           const std::string& data) {
  if (::mount(source.c_str(), target.c_str(), fstype, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    int err = errno;
    std::string what =
        (flags & MS_BIND) ? "bind " + source : std::string(fstype ? fstype : "") + " " + source;
    if (flags & MS_REMOUNT) what = "remount";
    throw Error("mount " + what + " on " + target + ": " + std::strerror(err));
  }
}

void bind(const std::string& source, const std::string& target, bool recursive) {
  mount(source, target, nullptr, MS_BIND | (recursive ? MS_REC : 0));
}

// The flags a remount must repeat: inside a user namespace the kernel refuses a remount that
// would clear a flag it locked (nosuid, nodev, noexec, atime settings, ro) — EPERM otherwise.
unsigned long mount_flags(const std::string& target) {
  struct statvfs sv {};
  if (::statvfs(target.c_str(), &sv) != 0) throw sys_error("statvfs", target);
  unsigned long f = 0;
  if (sv.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

void make_read_only(const std::string& target, bool recursive) {
  // mount_setattr (5.12) changes a whole tree at once and only the attributes named.
  struct mount_attr attr {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, target.c_str(), recursive ? AT_RECURSIVE : 0, &attr,
                sizeof attr) == 0)
    return;
  if (errno != ENOSYS && errno != EINVAL)
    throw Error("make " + target + " read-only: mount_setattr: " + std::strerror(errno));
  mount("", target, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | mount_flags(target));
}

void make_nosuid_nodev(const std::string& target) {
  mount("", target, nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | mount_flags(target));
}

std::string fd_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

std::string Resolved::canonical() const {
  return "/" + str::join(existing, "/");
}

std::string Resolved::full() const {
  std::vector<std::string> all = existing;
  all.insert(all.end(), missing.begin(), missing.end());
  return "/" + str::join(all, "/");
}

namespace {

// Walks a path like openat2(RESOLVE_IN_ROOT) over any tree: Walker supplies root(),
// lookup(dir, name) -> optional<mode_t> (lstat), then for that same name enter(dir, name) -> Node
// (a directory), file(dir, name) -> Node (anything else) or readlink(dir, name). Nodes are kept
// per existing component so ".." is a pop; *last receives the final one when nothing is missing.
template <class Walker>
Resolved walk_in_root(Walker& w, const std::string& path, typename Walker::Node* last = nullptr) {
  using Node = typename Walker::Node;
  Resolved r;
  std::deque<std::string> todo;
  for (auto& c : str::split(path, '/'))
    if (!c.empty() && c != ".") todo.push_back(c);
  std::vector<Node> nodes;  // nodes[i] = directory at existing[0..i)
  nodes.push_back(w.root());
  int links = 0;
  while (!todo.empty()) {
    std::string c = todo.front();
    todo.pop_front();
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!r.existing.empty()) {
        r.existing.pop_back();
        r.modes.pop_back();
        nodes.pop_back();
      }
      continue;
    }
    std::optional<mode_t> mode = w.lookup(nodes.back(), c, r.canonical());
    if (!mode) {
      // The rest is created as plain directories: ".." there just drops the previous one.
      r.missing.push_back(c);
      for (auto& rest : todo) {
        if (rest == "..") {
          if (!r.missing.empty()) r.missing.pop_back();
        } else if (!rest.empty() && rest != ".") {
          r.missing.push_back(rest);
        }
      }
      if (r.missing.empty()) r.last_is_dir = true;
      return r;
    }
    if (S_ISLNK(*mode)) {
      if (++links > 40)
        throw Error("resolve " + path + " in the container: too many levels of symbolic links");
      std::string target = w.readlink(nodes.back(), c, r.canonical());
      if (!target.empty() && target[0] == '/') {
        r.existing.clear();
        r.modes.clear();
        nodes.resize(1);
      }
      auto parts = str::split(target, '/');
      for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        if (!it->empty() && *it != ".") todo.push_front(*it);
      continue;
    }
    if (S_ISDIR(*mode)) {
      nodes.push_back(w.enter(nodes.back(), c, r.canonical()));
      r.existing.push_back(c);
      r.modes.push_back(*mode & 07777);
      r.last_is_dir = true;
      continue;
    }
    // A file (or device, socket, fifo): must be the last component.
    bool more = false;
    for (auto& rest : todo) more = more || (!rest.empty() && rest != ".");
    if (more)
      throw Error("resolve " + path + " in the container: " + r.canonical() + "/" + c +
                  " is not a directory");
    r.existing.push_back(c);
    r.modes.push_back(*mode & 07777);
    r.last_is_dir = false;
    nodes.push_back(w.file(nodes.back(), c));
  }
  if (last) *last = std::move(nodes.back());
  return r;
}

// The kernel's view through directory fds (O_PATH, never following a final symlink).
struct FdWalker {
  using Node = UniqueFd;
  int rootfd;
  Node root() const {
    UniqueFd fd(::fcntl(rootfd, F_DUPFD_CLOEXEC, 3));
    if (!fd) throw sys_error("dup");
    return fd;
  }
  std::optional<mode_t> lookup(const Node& dir, const std::string& c, const std::string& where) const {
    struct stat st {};
    if (::fstatat(dir.get(), c.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) return st.st_mode;
    if (errno != ENOENT) throw sys_error("stat", where + "/" + c);
    return std::nullopt;
  }
  Node enter(const Node& dir, const std::string& c, const std::string& where) const {
    UniqueFd fd(::openat(dir.get(), c.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw sys_error("open", where + "/" + c);
    return fd;
  }
  std::string readlink(const Node& dir, const std::string& c, const std::string& where) const {
    char buf[4096];
    ssize_t n = ::readlinkat(dir.get(), c.c_str(), buf, sizeof buf - 1);
    if (n < 0) throw sys_error("readlink", where + "/" + c);
    return std::string(buf, static_cast<size_t>(n));
  }
  Node file(const Node&, const std::string&) const { return Node{}; }  // files are not opened
};

// A TreeView: every call after lookup() concerns the name just looked up, so its handle is kept.
struct ViewWalker {
  using Node = TreeView::Node;
  TreeView& view;
  Node found = 0;
  Node root() { return view.root(); }
  std::optional<mode_t> lookup(Node dir, const std::string& c, const std::string&) {
    return view.lookup(dir, c, &found);
  }
  Node enter(Node, const std::string&, const std::string&) const { return found; }
  Node file(Node, const std::string&) const { return found; }
  std::string readlink(Node, const std::string&, const std::string&) { return view.readlink(found); }
};

}  // namespace

Resolved resolve_in_root(int rootfd, const std::string& path) {
  FdWalker w{rootfd};
  return walk_in_root(w, path);
}

Resolved resolve_in_view(TreeView& view, const std::string& path, TreeView::Node* last) {
  ViewWalker w{view};
  return walk_in_root(w, path, last);
}

UniqueFd open_in_root(int rootfd, const std::string& path, int flags) {
  Resolved r = resolve_in_root(rootfd, path);
  if (!r.missing.empty()) {
    errno = ENOENT;
    throw sys_error("open", path);
  }
  if (r.existing.empty()) {
    int fd = ::fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw sys_error("dup", path);
    return UniqueFd(fd);
  }
  std::string rel = str::join(r.existing, "/");
  // Every component is a resolved directory or the final non-symlink entry: no following.
  int fd = ::openat(rootfd, rel.c_str(), flags | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) throw sys_error("open", path);
  return UniqueFd(fd);
}

void create_mount_point(int layer_rootfd, int image_rootfd, const Resolved& r, bool file) {
  if (r.missing.empty()) return;
  std::string rel;
  for (size_t i = 0; i < r.existing.size(); ++i) {
    rel += (rel.empty() ? "" : "/") + r.existing[i];
    struct stat st {};
    mode_t mode = 0755;
    if (i < r.modes.size())
      mode = r.modes[i];
    else if (::fstatat(image_rootfd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
      mode = st.st_mode & 07777;
    if (::mkdirat(layer_rootfd, rel.c_str(), 0700) != 0 && errno != EEXIST) throw sys_error("mkdir", rel);
    ::fchmodat(layer_rootfd, rel.c_str(), mode, 0);
  }
  for (size_t i = 0; i < r.missing.size(); ++i) {
    rel += (rel.empty() ? "" : "/") + r.missing[i];
    bool last = i + 1 == r.missing.size();
    if (last && file) {
      int fd = ::openat(layer_rootfd, rel.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd < 0) throw sys_error("create", rel);
      ::close(fd);
    } else if (::mkdirat(layer_rootfd, rel.c_str(), 0755) != 0 && errno != EEXIST) {
      throw sys_error("mkdir", rel);
    }
  }
}

void pivot_into(const std::string& new_root) {
  if (::chdir(new_root.c_str()) != 0) throw sys_error("chdir", new_root);
  // pivot_root(".", ".") stacks the old root on top of the new one; detaching "." then drops
  // it. The old root must not propagate the unmount back (the namespace is rslave already).
  if (::syscall(SYS_pivot_root, ".", ".") != 0) throw sys_error("pivot_root", new_root);
  if (::umount2(".", MNT_DETACH) != 0) throw sys_error("detach the old root");
  if (::chdir("/") != 0) throw sys_error("chdir", "/");
}

std::string overlay_escape(const std::string& path) {
  std::string out;
  for (char c : path) {
    if (c == ',' || c == ':' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace rbox::container::sys
