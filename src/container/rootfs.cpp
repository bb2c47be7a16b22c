// Implementation of container/rootfs.hpp. Mount points the image lacks are created in a tmpfs
// layer *below* any upper directory (lowerdir=…:mp:image), so they never pollute a user's
// --overlay directory and need no write permission on the image's directories (with a
// uid→uid map, the image's root-owned directories are not writable even through overlayfs).
#include "container/rootfs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "container/mounts.hpp"
#include "container/passwd.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::container {

using sys::Resolved;

namespace {

UniqueFd open_dir(const std::string& path) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw sys_error("open", path);
  return UniqueFd(fd);
}

bool is_dir_mount(const MountEntry& e) {
  return !e.file && e.kind != MountKind::kPasswd && e.kind != MountKind::kGroup && e.kind != MountKind::kFile;
}

// An earlier mount whose content comes from elsewhere covers this target: its mount point must
// already exist in that content (we never create directories on the host).
bool under_earlier_mount(const Plan& plan, size_t i) {
  for (size_t j = 0; j < i; ++j) {
    const auto& e = plan.mounts[j];
    if (is_dir_mount(e) && plan.mounts[i].target != e.target && path_within(plan.mounts[i].target, e.target))
      return true;
  }
  return false;
}

std::string read_fd(int fd, const std::string& what) {
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("read", what);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16u << 20)) throw Error(what + ": larger than 16 MiB");
  }
  return out;
}

// The image's /etc/passwd or /etc/group, or nullopt when it has none (Apptainer then leaves
// the file alone).
std::optional<std::string> image_file(int image_rootfd, const std::string& path) {
  try {
    Resolved r = sys::resolve_in_root(image_rootfd, path);
    if (!r.missing.empty() || r.last_is_dir) return std::nullopt;
    UniqueFd fd = sys::open_in_root(image_rootfd, r.canonical(), O_RDONLY);
    return read_fd(fd.get(), path + " in the image");
  } catch (const Error& e) {
    log::debug(e.message());
    return std::nullopt;
  }
}

void write_session_file(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) throw sys_error("create", path);
  UniqueFd f(fd);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("write", path);
    }
    off += static_cast<size_t>(n);
  }
}

// --contain's /dev: a tmpfs with the harmless host devices bound in, a private devpts and shm.
void mount_minimal_dev(const std::string& dev, bool ipc) {
  sys::mount("rbox-dev", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=256k");
  for (const char* n : {"null", "zero", "full", "random", "urandom", "tty"}) {
    std::string p = dev + "/" + n;
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) throw sys_error("create", p);
    ::close(fd);
    try {
      sys::bind(std::string("/dev/") + n, p, false);
    } catch (const Error& e) {
      log::verbose(e.message());
      ::unlink(p.c_str());
    }
  }
  const std::pair<const char*, const char*> links[] = {{"fd", "/proc/self/fd"},
                                                       {"stdin", "/proc/self/fd/0"},
                                                       {"stdout", "/proc/self/fd/1"},
                                                       {"stderr", "/proc/self/fd/2"},
                                                       {"ptmx", "pts/ptmx"}};
  for (const auto& [name, target] : links)
    if (::symlink(target, (dev + "/" + name).c_str()) != 0) throw sys_error("symlink", dev + "/" + name);
  for (const char* d : {"pts", "shm", "mqueue"})
    if (::mkdir((dev + "/" + d).c_str(), 0755) != 0) throw sys_error("mkdir", dev + "/" + d);
  try {
    sys::mount("devpts", dev + "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=0620");
  } catch (const Error& e) {
    log::verbose(e.message() + "; binding the host's /dev/pts instead");
    sys::bind("/dev/pts", dev + "/pts", false);
  }
  sys::mount("shm", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  if (ipc) {
    try {
      sys::mount("mqueue", dev + "/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC);
    } catch (const Error& e) {
      log::verbose(e.message());
    }
  }
  sys::make_read_only(dev, false);
}

// Kernel settings under /proc are checked against uid 0 of the host, not against capabilities
// (sysctl_perm): real root inside the container could otherwise set the host's hostname
// through /proc/sys/kernel/hostname. These stay read-only, as bwrap does.
void protect_proc(const std::string& proc) {
  for (const char* entry : {"sys", "sysrq-trigger", "irq", "bus"}) {
    std::string p = proc + "/" + entry;
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    sys::bind(p, p, true);
    sys::make_read_only(p, true);
  }
}

void mount_proc(const std::string& target, bool pid_ns, bool host_root) {
  bool fresh = false;
  if (pid_ns) {
    try {
      sys::mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
      fresh = true;
    } catch (const Error& e) {
      // A fresh procfs needs an uncovered procfs in the namespace (fails nested in Docker).
      log::warn(e.message() + "; binding the host's /proc instead (ps shows host processes)");
    }
  }
  if (!fresh) sys::bind("/proc", target, true);
  if (host_root) protect_proc(target);  // other users fail the owner check anyway
}

std::string overlay_options(const Plan& plan, const SessionLayout& s, bool* read_only) {
  std::vector<std::string> lowers;
  std::string upper, work;
  for (const auto& [dir, ro] : plan.root.overlays) {
    std::string up = dir + "/upper";
    bool has_upper = fs::is_dir(up);
    if (ro) {
      lowers.push_back(has_upper ? up : dir);
    } else {
      // Apptainer's overlay directory layout: DIR/upper and DIR/work on the same filesystem.
      fs::mkdir_p(up, 0755);
      fs::mkdir_p(dir + "/work", 0700);
      upper = up;
      work = dir + "/work";
    }
  }
  if (upper.empty() && plan.root.writable_tmpfs) {
    upper = s.upper();
    work = s.work();
  }
  // ro overlays listed first are topmost, as with Apptainer's repeated -o.
  std::string opt = "lowerdir=";
  for (const auto& l : lowers) opt += sys::overlay_escape(l) + ":";
  opt += sys::overlay_escape(s.mount_points()) + ":" + sys::overlay_escape(s.lower);
  if (!upper.empty())
    opt += ",upperdir=" + sys::overlay_escape(upper) + ",workdir=" + sys::overlay_escape(work);
  opt += ",userxattr";
  *read_only = upper.empty();
  return opt;
}

// Without overlayfs (Linux < 5.11): the root is a tmpfs holding, for every directory on the
// way to a missing mount point, a copy of its entries — directories and files bound from the
// image, symlinks copied — and the missing mount points themselves. Everything else is the
// image's, bound read-only-as-served. The tmpfs is made read-only at the end.
void build_skeleton(int image_fd, const SessionLayout& s,
                    const std::vector<std::pair<Resolved, bool>>& needed) {
  const std::string root = s.new_root();
  std::set<std::string> split = {""};  // relative paths of directories to rebuild in the tmpfs
  for (const auto& [r, file] : needed) {
    std::string rel;
    for (const auto& c : r.existing) {
      rel += (rel.empty() ? "" : "/") + c;
      split.insert(rel);
    }
  }
  struct stat st {};
  ::fstat(image_fd, &st);
  char mode[16];
  std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(st.st_mode & 07777));
  sys::mount("rbox-root", root, "tmpfs", MS_NOSUID | MS_NODEV, std::string("size=1m,mode=") + mode);
  size_t binds = 0;
  for (const auto& dir : split) {  // std::set order: a parent before its children
    std::string src_dir = s.lower + (dir.empty() ? "" : "/" + dir);
    DIR* d = ::opendir(src_dir.c_str());
    if (!d) throw sys_error("opendir", src_dir);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.emplace_back(e->d_name);
    ::closedir(d);
    for (const auto& n : names) {
      std::string rel = dir.empty() ? n : dir + "/" + n;
      std::string from = s.lower + "/" + rel, to = root + "/" + rel;
      struct stat es {};
      if (::lstat(from.c_str(), &es) != 0) continue;
      if (S_ISDIR(es.st_mode)) {
        if (::mkdir(to.c_str(), es.st_mode & 07777) != 0 && errno != EEXIST) throw sys_error("mkdir", to);
        ::chmod(to.c_str(), es.st_mode & 07777);
        if (!split.count(rel)) {
          sys::bind(from, to, true);
          ++binds;
        }
      } else if (S_ISLNK(es.st_mode)) {
        char buf[4096];
        ssize_t n2 = ::readlink(from.c_str(), buf, sizeof buf - 1);
        if (n2 < 0) throw sys_error("readlink", from);
        if (::symlink(std::string(buf, static_cast<size_t>(n2)).c_str(), to.c_str()) != 0)
          throw sys_error("symlink", to);
      } else if (S_ISREG(es.st_mode)) {
        int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, es.st_mode & 07777);
        if (fd < 0) throw sys_error("create", to);
        ::close(fd);
        sys::bind(from, to, false);
        ++binds;
      }  // device nodes, fifos and sockets: unusable on a nodev mount anyway
    }
  }
  for (const auto& [r, file] : needed) {
    UniqueFd rootfd = open_dir(root);
    sys::create_mount_point(rootfd.get(), image_fd, r, file);
  }
  // The skeleton and every image entry bound into it (a sandbox's would be writable).
  sys::make_read_only(root, true);
  log::verbose("root built from a tmpfs skeleton: " + std::to_string(split.size()) + " directories, " +
               std::to_string(binds) + " binds");
}

}  // namespace

void prepare_session(const SessionLayout& s, unsigned size_mib) {
  std::string size = "size=" + std::to_string(size_mib) + "m";
  sys::mount("rbox-session", s.dir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=64k");
  for (const auto& d : {s.image_mount(), s.new_root(), s.data()})
    if (::mkdir(d.c_str(), 0700) != 0) throw sys_error("mkdir", d);
  sys::mount("rbox-data", s.data(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700," + size);
  for (const auto& d : {s.mount_points(), s.upper(), s.work(), s.files()})
    if (::mkdir(d.c_str(), 0700) != 0) throw sys_error("mkdir", d);
  // The mount-point layer's root becomes the container's "/": keep it traversable.
  ::chmod(s.mount_points().c_str(), 0755);
  ::chmod(s.upper().c_str(), 0755);
  ::chmod(s.files().c_str(), 0755);
}

void build_root(const Plan& plan, const SessionLayout& s, const ImageFacts* facts) {
  UniqueFd image = open_dir(s.lower);
  const std::string root = s.new_root();
  // Where each target landed when the mount points were made: the merged root shows the same
  // paths, so the second walk (through overlayfs and FUSE) is skipped for them.
  std::vector<std::optional<Resolved>> known(plan.mounts.size());

  if (plan.root.writable_sandbox) {
    sys::bind(s.lower, root, true);
    sys::make_nosuid_nodev(root);
  } else {
    UniqueFd mp = open_dir(s.mount_points());
    struct stat st {};
    if (::fstat(image.get(), &st) == 0) ::chmod(s.mount_points().c_str(), st.st_mode & 07777);
    std::vector<std::pair<Resolved, bool>> needed;  // mount points the image lacks, file?
    for (size_t i = 0; i < plan.mounts.size(); ++i) {
      const auto& e = plan.mounts[i];
      if (under_earlier_mount(plan, i)) continue;
      try {
        const ImageFacts::Target* fact = facts && i < facts->targets.size() ? &facts->targets[i] : nullptr;
        if (fact && fact->known && !fact->error.empty()) throw Error(fact->error);
        Resolved r = fact && fact->known ? fact->resolved : sys::resolve_in_root(image.get(), e.target);
        if (plan.root.overlays.empty()) {  // a user's layer could change what a path means
          Resolved done = r;
          done.existing.insert(done.existing.end(), r.missing.begin(), r.missing.end());
          done.missing.clear();
          if (!r.missing.empty()) done.last_is_dir = is_dir_mount(e);
          known[i] = std::move(done);
        }
        if (r.missing.empty()) continue;
        sys::create_mount_point(mp.get(), image.get(), r, !is_dir_mount(e));
        needed.emplace_back(std::move(r), !is_dir_mount(e));
      } catch (const Error& err) {
        if (!e.optional)
          throw Error(e.origin + ": cannot create mount point " + e.target + ": " + err.message());
        log::verbose(e.origin + ": skipped: " + err.message());
      }
    }
    bool read_only = true;
    std::string opts = overlay_options(plan, s, &read_only);
    const char* forced = std::getenv("RBOX_NO_OVERLAY");  // tests: exercise the fallback
    bool overlay = !(forced && *forced == '1');
    if (overlay) {
      try {
        sys::mount("overlay", root, "overlay", MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0), opts);
      } catch (const Error& err) {
        if (!read_only || !plan.root.overlays.empty())
          throw Error(err.message() +
                      "; --writable-tmpfs and --overlay need overlayfs in a user namespace (Linux 5.11 or "
                      "later); run 'rbox check' for details");
        log::verbose(err.message() + "; building the root from a tmpfs skeleton instead");
        overlay = false;
      }
    } else if (!read_only || !plan.root.overlays.empty()) {
      throw Error("RBOX_NO_OVERLAY=1 cannot be combined with --writable-tmpfs or --overlay");
    }
    if (!overlay) build_skeleton(image.get(), s, needed);
  }

  UniqueFd newroot = open_dir(root);
  int generated = 0;
  for (size_t i = 0; i < plan.mounts.size(); ++i) {
    const auto& e = plan.mounts[i];
    Resolved r;
    try {
      r = known[i] ? *known[i] : sys::resolve_in_root(newroot.get(), e.target);
    } catch (const Error& err) {
      if (e.optional) {
        log::verbose(e.origin + ": skipped: " + err.message());
        continue;
      }
      throw Error(e.origin + ": " + err.message());
    }
    if (!r.missing.empty() || (r.last_is_dir != is_dir_mount(e))) {
      std::string why = !r.missing.empty()
                            ? e.target + " does not exist in the container"
                            : e.target + (r.last_is_dir ? " is a directory" : " is not a directory");
      if (e.optional)
        log::verbose(e.origin + ": skipped: " + why);
      else
        log::warn("skipping " + e.origin + ": " + why);
      continue;
    }
    std::string target = root + r.canonical();
    try {
      switch (e.kind) {
        case MountKind::kBind: {
          sys::bind(e.source, target, !e.file);
          if (e.read_only) sys::make_read_only(target, !e.file);
          break;
        }
        case MountKind::kProc:
          mount_proc(target, plan.ns.pid, plan.ids.host_uid == 0);
          break;
        case MountKind::kSys:
          // Read-only for real root: sysfs attributes are root-owned files, and root in the
          // container is the host's uid 0 (a writable /sys would reach the host kernel).
          sys::bind("/sys", target, true);
          if (plan.ids.host_uid == 0) sys::make_read_only(target, true);
          break;
        case MountKind::kDev:
          sys::bind("/dev", target, true);
          break;
        case MountKind::kDevMinimal:
          mount_minimal_dev(target, plan.ns.ipc);
          break;
        case MountKind::kSessionDir: {
          std::string dir = s.files() + "/dir" + std::to_string(generated++);
          if (::mkdir(dir.c_str(), 0700) != 0) throw sys_error("mkdir", dir);
          ::chmod(dir.c_str(), e.mode);
          sys::bind(dir, target, false);
          break;
        }
        case MountKind::kPasswd:
        case MountKind::kGroup: {
          bool passwd = e.kind == MountKind::kPasswd;
          const ImageFacts::File* known = facts ? (passwd ? &facts->passwd : &facts->group) : nullptr;
          auto text = known && known->known ? known->text
                                            : image_file(image.get(), passwd ? "/etc/passwd" : "/etc/group");
          if (!text) {
            log::verbose(e.target + " does not exist in the image; not adding the user to it");
            break;
          }
          std::string content =
              passwd ? render_passwd(*text, plan.user) : render_group(*text, plan.user.name, plan.groups);
          std::string file = s.files() + "/" + (passwd ? "passwd" : "group");
          write_session_file(file, content);
          sys::bind(file, target, false);
          sys::make_read_only(target, false);
          break;
        }
        case MountKind::kFile: {
          std::string file = s.files() + "/file" + std::to_string(generated++);
          write_session_file(file, e.source);
          sys::bind(file, target, false);
          sys::make_read_only(target, false);
          break;
        }
      }
    } catch (const Error& err) {
      if (!e.optional) throw Error(e.origin + ": " + err.message());
      log::verbose(e.origin + ": skipped: " + err.message());
    }
  }
}

}  // namespace rbox::container
