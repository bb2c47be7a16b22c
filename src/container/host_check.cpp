// Implementation of container/host_check.hpp. The namespace probe runs in a forked child so
// `rbox check` itself never changes namespaces; the child reports each step through a pipe and
// _exits (no exception crosses the fork).
#include "container/host_check.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "util/fs.hpp"
#include "util/strings.hpp"

namespace rbox::container {

namespace {

std::optional<long> read_number(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[64] = {};
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  return std::strtol(buf, nullptr, 10);
}

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/usr/local/bin/rbox";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

std::pair<int, int> parse_kernel_version(const std::string& release) {
  int major = 0, minor = 0;
  if (std::sscanf(release.c_str(), "%d.%d", &major, &minor) < 1) return {0, 0};
  return {major, minor};
}

std::pair<int, int> kernel_version() {
  struct utsname u {};
  if (::uname(&u) != 0) return {0, 0};
  return parse_kernel_version(u.release);
}

std::string apparmor_profile(const std::string& exe) {
  return "printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile rbox " + exe +
         " flags=(unconfined) {\\n  userns,\\n}\\n' | sudo tee /etc/apparmor.d/rbox && sudo apparmor_parser "
         "-r "
         "/etc/apparmor.d/rbox";
}

std::vector<CheckResult> check_sysctls() {
  std::vector<CheckResult> out;
  {
    CheckResult r{"user namespace limit", CheckStatus::kOk, "", ""};
    auto max = read_number("/proc/sys/user/max_user_namespaces");
    if (!max) {
      r.status = CheckStatus::kFail;
      r.detail = "/proc/sys/user/max_user_namespaces is missing: this kernel has no user namespaces";
      r.fix = "use a kernel built with CONFIG_USER_NS";
    } else if (*max == 0) {
      r.status = CheckStatus::kFail;
      r.detail = "user.max_user_namespaces is 0: user namespaces are disabled";
      r.fix =
          "ask an administrator to run: sysctl -w user.max_user_namespaces=15000 (and persist it in "
          "/etc/sysctl.d)";
    } else {
      r.detail = "user.max_user_namespaces = " + std::to_string(*max);
    }
    out.push_back(r);
  }
  if (auto clone = read_number("/proc/sys/kernel/unprivileged_userns_clone")) {
    CheckResult r{"unprivileged user namespaces", CheckStatus::kOk, "", ""};
    if (*clone == 0 && ::getuid() != 0) {
      r.status = CheckStatus::kFail;
      r.detail = "kernel.unprivileged_userns_clone is 0: only root may create user namespaces";
      r.fix = "ask an administrator to run: sysctl -w kernel.unprivileged_userns_clone=1";
    } else {
      r.detail = "kernel.unprivileged_userns_clone = " + std::to_string(*clone);
    }
    out.push_back(r);
  }
  if (auto aa = read_number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")) {
    CheckResult r{"AppArmor user namespace restriction", CheckStatus::kOk, "", ""};
    if (*aa != 0 && ::getuid() != 0) {
      r.status = CheckStatus::kFail;
      r.detail =
          "kernel.apparmor_restrict_unprivileged_userns is 1: AppArmor lets only profiled programs use user "
          "namespaces";
      r.fix = "ask an administrator to allow rbox: " + apparmor_profile(self_exe());
    } else {
      r.detail = "kernel.apparmor_restrict_unprivileged_userns = " + std::to_string(*aa);
    }
    out.push_back(r);
  }
  {
    CheckResult r{"kernel version", CheckStatus::kOk, "", ""};
    auto [major, minor] = kernel_version();
    std::string v = std::to_string(major) + "." + std::to_string(minor);
    if (major < 4 || (major == 4 && minor < 18)) {
      r.status = CheckStatus::kFail;
      r.detail = "Linux " + v + " cannot mount FUSE in a user namespace (needs 4.18)";
      r.fix = "upgrade the kernel, or use sandbox directories (rbox build --sandbox)";
    } else if (major < 5 || (major == 5 && minor < 11)) {
      r.status = CheckStatus::kWarn;
      r.detail = "Linux " + v + ": no overlayfs in a user namespace (needs 5.11)";
      r.fix = "upgrade the kernel to 5.11 or later";
    } else {
      r.detail = "Linux " + v;
    }
    out.push_back(r);
  }
  return out;
}

CheckResult check_dev_fuse() {
  CheckResult r{"/dev/fuse", CheckStatus::kOk, "", ""};
  struct stat st {};
  if (::stat("/dev/fuse", &st) != 0) {
    r.status = CheckStatus::kFail;
    r.detail = "/dev/fuse does not exist";
    r.fix =
        "ask an administrator to load the fuse module (modprobe fuse); SIF images are then extracted "
        "to a temporary directory instead (slower start)";
    return r;
  }
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    r.status = CheckStatus::kFail;
    r.detail = std::string("cannot open /dev/fuse: ") + std::strerror(err);
    r.fix =
        "ask an administrator to make it usable: chmod 0666 /dev/fuse (the default on most distributions)";
    return r;
  }
  ::close(fd);
  r.detail = "opens read-write";
  return r;
}

namespace {

// Runs in the probe child: one line per step, "name\tstatus\tdetail\tfix".
void report(int fd, const std::string& name, CheckStatus st, const std::string& detail,
            const std::string& fix = {}) {
  std::string line = name + "\t" + std::to_string(static_cast<int>(st)) + "\t" + detail + "\t" + fix + "\n";
  if (::write(fd, line.data(), line.size()) < 0) ::_exit(3);
}

[[noreturn]] void probe_child(int fd) {
  uid_t uid = ::getuid();
  gid_t gid = ::getgid();
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
    int err = errno;
    report(fd, "create a user namespace", CheckStatus::kFail, std::string("unshare: ") + std::strerror(err),
           explain_namespace_failure("unshare", err));
    ::_exit(1);
  }
  report(fd, "create a user namespace", CheckStatus::kOk, "user + mount namespaces created");
  auto put = [](const char* f, const std::string& s) {
    int w = ::open(f, O_WRONLY | O_CLOEXEC);
    if (w < 0) return errno;
    int err = ::write(w, s.data(), s.size()) == static_cast<ssize_t>(s.size()) ? 0 : errno;
    ::close(w);
    return err;
  };
  int err = put("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n");
  put("/proc/self/setgroups", "deny");
  if (!err) err = put("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
  if (err) {
    report(fd, "write the id maps", CheckStatus::kFail, std::strerror(err),
           explain_namespace_failure("uid_map", err));
    ::_exit(1);
  }
  report(fd, "write the id maps", CheckStatus::kOk, "uid " + std::to_string(uid) + " mapped to itself");
  if (::mount("rbox-check", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0) {
    err = errno;
    report(fd, "mount in the namespace", CheckStatus::kFail, std::string("tmpfs: ") + std::strerror(err),
           explain_namespace_failure("mount", err));
    ::_exit(1);
  }
  report(fd, "mount in the namespace", CheckStatus::kOk, "tmpfs mounted");
  for (const char* d : {"/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m", "/tmp/f"}) ::mkdir(d, 0755);
  if (::mount("overlay", "/tmp/m", "overlay", 0,
              "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w,userxattr") != 0) {
    err = errno;
    report(fd, "overlayfs in the namespace", CheckStatus::kFail, std::string("mount: ") + std::strerror(err),
           "upgrade to Linux 5.11 or later (overlayfs with userxattr in a user namespace)");
  } else {
    report(fd, "overlayfs in the namespace", CheckStatus::kOk, "overlay with userxattr mounted");
  }
  int fuse = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fuse < 0) {
    err = errno;
    report(fd, "FUSE in the namespace", CheckStatus::kFail,
           std::string("open /dev/fuse: ") + std::strerror(err),
           "chmod 0666 /dev/fuse (administrator); SIF images will be extracted instead");
  } else {
    std::string opts = "fd=" + std::to_string(fuse) + ",rootmode=40000,user_id=" + std::to_string(uid) +
                       ",group_id=" + std::to_string(gid);
    if (::mount("rbox-check", "/tmp/f", "fuse.rbox-check", MS_NOSUID | MS_NODEV | MS_RDONLY, opts.c_str()) !=
        0) {
      err = errno;
      report(fd, "FUSE in the namespace", CheckStatus::kFail, std::string("mount: ") + std::strerror(err),
             "Linux 4.18 or later is needed to mount FUSE in a user namespace; SIF images will be extracted "
             "instead");
    } else {
      ::umount2("/tmp/f", MNT_DETACH);
      report(fd, "FUSE in the namespace", CheckStatus::kOk, "FUSE filesystem mounted without fusermount");
    }
  }
  // A fresh procfs in a new PID namespace (--pid, --containall).
  if (::unshare(CLONE_NEWPID) == 0) {
    pid_t p = ::fork();
    if (p == 0) {
      ::_exit(::mount("proc", "/tmp/m", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == 0 ? 0 : errno);
    }
    int st = 0;
    ::waitpid(p, &st, 0);
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
    if (code == 0)
      report(fd, "PID namespace", CheckStatus::kOk, "fresh /proc mounted");
    else
      report(fd, "PID namespace", CheckStatus::kWarn, std::string("mount proc: ") + std::strerror(code),
             "--pid will bind the host's /proc (procfs is covered, e.g. inside another container)");
  }
  ::_exit(0);
}

}  // namespace

std::vector<CheckResult> check_namespaces() {
  std::vector<CheckResult> out;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return out;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    probe_child(fds[1]);
  }
  ::close(fds[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) text.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st;
  ::waitpid(pid, &st, 0);
  for (const auto& line : str::split_lines(text)) {
    auto f = str::split(line, '\t');
    if (f.size() < 4) continue;
    out.push_back({f[0], static_cast<CheckStatus>(std::atoi(f[1].c_str())), f[2], f[3]});
  }
  return out;
}

std::string explain_namespace_failure(const std::string& op, int err) {
  for (const auto& c : check_sysctls())
    if (c.status == CheckStatus::kFail) return c.detail + "; " + c.fix;
  if (op == "unshare" && err == ENOSPC)
    return "the user namespace limit is reached (user.max_user_namespaces)";
  if (op == "unshare" && err == EINVAL) return "this kernel does not support user namespaces";
  return "user namespaces seem to be blocked on this host (seccomp, SELinux or a container runtime); run "
         "'rbox check'";
}

}  // namespace rbox::container
