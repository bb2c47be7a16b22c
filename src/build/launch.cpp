// build::launch (launch.hpp). Process layout:
//   caller ── fork ──> C: unshare(NEWNS|NEWPID), fork ──> P (PID 1): mounts, pivot_root,
//                                                     filter, fork ──> Q: execve(command)
// P reaps everything and exits with Q's status; when P exits the kernel kills whatever Q left
// running (pid_namespaces(7)). C and P die with their parent (PR_SET_PDEATHSIG), so killing the
// build kills the whole tree. The children only make system calls on data prepared before fork.
#include "build/launch.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "container/mounts.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/subprocess.hpp"

namespace rbox::build {
namespace {

namespace sys = container::sys;

const std::vector<std::string> kDevices = {"null", "zero", "full", "random", "urandom", "tty"};

struct Child {
  int err_fd = -1;  // setup/exec failures are written here as one line
};

// Child side: report "step path: strerror" and exit 255.
[[noreturn]] void die(const Child& c, const char* step, const std::string& path, int err = errno) {
  char msg[1024];
  int n = std::snprintf(msg, sizeof msg, "%s %s: %s", step, path.c_str(), std::strerror(err));
  if (n > 0) {
    ssize_t rc = ::write(c.err_fd, msg, static_cast<size_t>(std::min(n, static_cast<int>(sizeof msg) - 1)));
    (void)rc;
  }
  ::_exit(255);
}

int open_in_root(int rootfd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how));
}

void remount_ro(const Child& c, const std::string& path) {
  unsigned long locked = 0;
  try {
    locked = sys::mount_flags(path);
  } catch (const Error&) {  // then the remount below reports what is wrong
  }
  if (::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | locked, nullptr) != 0)
    die(c, "remount read-only", path);
}

// Empty placeholder files in dir with the host's device nodes bound onto them.
void bind_host_devices(const Child& c, const std::string& dir, bool with_console) {
  auto bind_node = [&](const std::string& host, const std::string& name) {
    std::string dst = dir + "/" + name;
    int fd = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) die(c, "create", dst);
    if (fd >= 0) ::close(fd);
    if (::mount(host.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr) != 0)
      die(c, "bind", host + " on " + dst);
  };
  for (const auto& n : kDevices) bind_node("/dev/" + n, n);
  if (with_console) bind_node("/dev/null", "console");
}

void setup_rootfs(const Child& c, const LaunchSpec& s) {
  const std::string& root = s.rootfs;
  if (::mount(root.c_str(), root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) die(c, "bind", root);
  UniqueFd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) die(c, "open", root);
  auto target = [&](const std::string& rel, bool optional) -> int {
    int fd = open_in_root(rootfd.get(), rel, O_PATH);
    if (fd < 0 && !optional) die(c, "find mount point", root + "/" + rel);
    return fd;
  };
  {
    UniqueFd t(target("proc", false));
    if (::mount("proc", sys::fd_path(t.get()).c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) !=
        0)
      die(c, "mount proc on", root + "/proc");
  }
  {
    UniqueFd t(target("dev", false));
    if (::mount("tmpfs", sys::fd_path(t.get()).c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC,
                "mode=755,size=65536k") != 0)
      die(c, "mount tmpfs on", root + "/dev");
  }
  // /dev is our fresh tmpfs now: plain paths below it cannot be redirected by the image.
  const std::string dev = root + "/dev";
  bind_host_devices(c, dev, false);
  if (::mkdir((dev + "/pts").c_str(), 0755) == 0 &&
      ::mount("devpts", (dev + "/pts").c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") == 0) {
    if (::symlink("pts/ptmx", (dev + "/ptmx").c_str()) != 0) die(c, "symlink", dev + "/ptmx");
  }
  if (::mkdir((dev + "/shm").c_str(), 01777) != 0 ||
      ::mount("tmpfs", (dev + "/shm").c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
    die(c, "mount tmpfs on", dev + "/shm");
  const char* links[][2] = {{"/proc/self/fd", "fd"},
                            {"/proc/self/fd/0", "stdin"},
                            {"/proc/self/fd/1", "stdout"},
                            {"/proc/self/fd/2", "stderr"}};
  for (const auto& l : links)
    if (::symlink(l[0], (dev + "/" + l[1]).c_str()) != 0) die(c, "symlink", dev + "/" + l[1]);
  // /sys: sysfs itself cannot be mounted without a network namespace of our own; bind the host's
  // (best effort: nothing in a build should need it).
  if (int t = target("sys", true); t >= 0) {
    ::mount("/sys", sys::fd_path(t).c_str(), nullptr, MS_BIND | MS_REC, nullptr);
    ::close(t);
  }
  // A read-only root (%test) still gets writable scratch space, as `apptainer test` has its /tmp.
  if (!s.writable) {
    for (const char* rel : {"tmp", "var/tmp"}) {
      int t = target(rel, true);
      if (t < 0) continue;
      if (::mount("tmpfs", sys::fd_path(t).c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777") != 0)
        die(c, "mount tmpfs on", root + "/" + rel);
      ::close(t);
    }
  }
  for (const auto& b : s.binds) {
    int t = target(b.destination, b.optional);
    if (t < 0) continue;
    std::string p = sys::fd_path(t);
    if (::mount(b.source.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      die(c, "bind", b.source + " on " + b.destination);
    ::close(t);
    if (b.read_only) {
      int t2 = target(b.destination, false);
      remount_ro(c, sys::fd_path(t2));
      ::close(t2);
    }
  }
  if (::fchdir(rootfd.get()) != 0) die(c, "chdir", root);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) die(c, "pivot_root", root);
  if (::umount2(".", MNT_DETACH) != 0) die(c, "detach old root of", root);
  if (::chdir("/") != 0) die(c, "chdir", "/");
  if (!s.writable) remount_ro(c, "/");
}

// PID 1 of the new PID namespace.
[[noreturn]] void run_pid1(const Child& c, const LaunchSpec& s, int out_fd, const std::vector<char*>& argv,
                           const std::vector<char*>& envp) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die(c, "make private", "/");
  if (s.rootfs.empty()) {
    if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      die(c, "mount proc on", "/proc");
    for (const auto& d : s.host_dev_targets) bind_host_devices(c, d + "/dev", true);
  } else {
    setup_rootfs(c, s);
  }
  if (::chdir(s.cwd.c_str()) != 0) die(c, "chdir", s.cwd);
  if (s.filter && !s.filter->empty()) {
    if (int err = container::install_filter(*s.filter); err != 0)
      die(c, "install seccomp filter for", s.argv[0], err);
    if (const char* bad = container::verify_filter(s.mode)) {
      ssize_t rc = ::write(c.err_fd, bad, std::strlen(bad));
      (void)rc;
      ::_exit(255);
    }
  }
  pid_t q = ::fork();
  if (q < 0) die(c, "fork", s.argv[0]);
  if (q == 0) {
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (out_fd >= 0) {
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(out_fd, STDERR_FILENO);
    }
    ::execve(argv[0], argv.data(), envp.data());
    die(c, "run", s.argv[0]);
  }
  if (out_fd >= 0) ::close(out_fd);
  int status = 255;
  for (;;) {
    int ws = 0;
    pid_t w = ::waitpid(-1, &ws, 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (w == q) {
      status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      break;
    }
  }
  ::_exit(status);
}

}  // namespace

void pump_lines(int fd, const std::function<void(std::string_view line)>& on_line) {
  std::string pending;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    size_t start = 0, nl;
    while ((nl = pending.find('\n', start)) != std::string::npos) {
      on_line(std::string_view(pending).substr(start, nl - start));
      start = nl + 1;
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) on_line(pending);
}

int run_host_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     const std::function<void(std::string_view line)>& on_line) {
  if (argv.empty()) throw Error("internal: empty host command");
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int outp[2] = {-1, -1}, errp[2];
  if (::pipe2(errp, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd err_r(errp[0]), err_w(errp[1]);
  if (on_line && ::pipe2(outp, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd out_r(outp[0]), out_w(outp[1]);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw sys_error("fork");
  if (pid == 0) {
    Child ch{err_w.get()};
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(255);
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
    if (out_w) {
      ::dup2(out_w.get(), STDOUT_FILENO);
      ::dup2(out_w.get(), STDERR_FILENO);
    }
    ::execve(cargv[0], cargv.data(), cenv.data());
    die(ch, "run", argv[0]);
  }
  err_w.reset();
  out_w.reset();
  if (on_line) pump_lines(out_r.get(), on_line);
  std::string err;
  char buf[1024];
  for (ssize_t n; (n = ::read(err_r.get(), buf, sizeof buf)) > 0;) err.append(buf, static_cast<size_t>(n));
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0) {
    if (errno != EINTR) throw sys_error("waitpid");
  }
  if (!err.empty()) throw Error(err);
  return proc::decode_status(ws);
}

const std::vector<std::string>& host_device_names() {
  static const std::vector<std::string> names = [] {
    auto v = kDevices;
    v.push_back("console");
    return v;
  }();
  return names;
}

int launch(const LaunchSpec& spec) {
  if (spec.argv.empty() || spec.argv[0].empty() || spec.argv[0][0] != '/')
    throw Error("internal: launch needs an absolute command path");
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int errp[2], outp[2] = {-1, -1};
  if (::pipe2(errp, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd err_r(errp[0]), err_w(errp[1]);
  if (spec.on_line && ::pipe2(outp, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd out_r(outp[0]), out_w(outp[1]);

  const pid_t parent = ::getpid();
  pid_t c = ::fork();
  if (c < 0) throw sys_error("fork");
  if (c == 0) {
    Child ch{err_w.get()};
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(255);
    if (::unshare(CLONE_NEWNS | CLONE_NEWPID) != 0)
      die(ch, "unshare mount and PID namespaces for", spec.argv[0]);
    pid_t p = ::fork();
    if (p < 0) die(ch, "fork", spec.argv[0]);
    if (p == 0) {
      // getppid() is 0 here (the parent is outside the new PID namespace), so the usual
      // "parent already gone" check cannot be made; C outlives P unless killed itself.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      run_pid1(ch, spec, out_w.get(), argv, envp);
    }
    if (out_w) ::close(out_w.release());
    int ws = 0;
    while (::waitpid(p, &ws, 0) < 0) {
      if (errno != EINTR) ::_exit(255);
    }
    ::_exit(WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws));
  }
  err_w.reset();
  out_w.reset();
  if (spec.on_line) pump_lines(out_r.get(), spec.on_line);
  std::string err;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(err_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    err.append(buf, static_cast<size_t>(n));
  }
  int ws = 0;
  while (::waitpid(c, &ws, 0) < 0) {
    if (errno != EINTR) throw sys_error("waitpid");
  }
  int status = proc::decode_status(ws);
  if (!err.empty()) throw Error(err);
  return status;
}

}  // namespace rbox::build
