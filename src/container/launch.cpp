// Implementation of container/launch.hpp. The launcher is the container's supervisor: it holds
// the FUSE server threads, is a child subreaper (without a PID namespace) so orphans of the
// command come back to it, and leaves only when the last of them is gone — daemons the command
// left behind keep their root filesystem (ARCHITECTURE.md rule 7).
#include "container/launch.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>

#include "container/child.hpp"
#include "container/mounts.hpp"
#include "container/namespaces.hpp"
#include "container/rootfs.hpp"
#include "image/image.hpp"
#include "image/mount.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::container {

namespace {

// An empty host directory that the session tmpfs covers in rbox's namespace only. The host
// sees an empty directory, removed when the launcher ends.
class SessionDir {
 public:
  SessionDir() {
    std::string base;
    const char* xdg = std::getenv("XDG_RUNTIME_DIR");
    if (xdg && *xdg == '/' && ::access(xdg, W_OK | X_OK) == 0)
      base = xdg;
    else
      base = fs::temp_root();
    std::string tmpl = base + "/rbox-session-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw Error("cannot create a session directory in " + base + ": " + std::strerror(errno) +
                  "; set RBOX_TMPDIR to a writable directory");
    path_ = tmpl;
  }
  SessionDir(const SessionDir&) = delete;
  SessionDir& operator=(const SessionDir&) = delete;
  ~SessionDir() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }
  void mounted() { mounted_ = true; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// Restores the terminal's foreground process group to rbox's when an interactive shell in the
// container took it and died without giving it back.
class TerminalGuard {
 public:
  TerminalGuard() { foreground_ = ::isatty(STDIN_FILENO) && ::tcgetpgrp(STDIN_FILENO) == ::getpgrp(); }
  ~TerminalGuard() {
    if (!foreground_ || ::tcgetpgrp(STDIN_FILENO) == ::getpgrp()) return;
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, SIGTTOU);
    ::sigprocmask(SIG_BLOCK, &s, &old);
    ::tcsetpgrp(STDIN_FILENO, ::getpgrp());
    ::sigprocmask(SIG_SETMASK, &old, nullptr);
  }

 private:
  bool foreground_ = false;
};

// The launcher's children besides the command (orphans adopted as subreaper), from
// /proc/self/task/*/children.
std::vector<pid_t> adopted_children() {
  std::vector<pid_t> out;
  const std::string dir = "/proc/self/task";
  // Each thread (FUSE workers included) lists the children it forked or adopted.
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      try {
        for (const auto& w : str::split(str::trim(fs::read_file(dir + "/" + e->d_name + "/children")), ' '))
          if (!w.empty()) out.push_back(static_cast<pid_t>(std::atol(w.c_str())));
      } catch (const Error&) {
      }
    }
    ::closedir(d);
  }
  return out;
}

// The kernel sends SIGHUP and SIGCONT to a stopped process group that becomes orphaned; one
// adopted by rbox (a subreaper in the same session) never counts as orphaned, so a job the
// shell left stopped would keep rbox waiting forever. Do what the kernel would have done.
void wake_stopped_orphans() {
  for (pid_t p : adopted_children()) {
    std::string stat;
    try {
      stat = fs::read_file("/proc/" + std::to_string(p) + "/stat");
    } catch (const Error&) {
      continue;
    }
    auto close = stat.rfind(')');
    if (close == std::string::npos || close + 2 >= stat.size()) continue;
    char state = stat[close + 2];
    if (state == 'T' || state == 't') {
      ::kill(p, SIGHUP);
      ::kill(p, SIGCONT);
    }
  }
}

struct Outcome {
  int status = exit_code::kRuntimeFailure;
  std::string report;
};

// Waits for the command and every process it left behind; forwards signals sent to rbox.
Outcome supervise(pid_t child, int report_fd, bool pid_namespace) {
  sigset_t set = forwarded_signals();
  int sfd = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) throw sys_error("signalfd");
  UniqueFd sig_fd(sfd);
  UniqueFd report(report_fd);
  Outcome out;
  bool child_done = false, woken = false;
  for (;;) {
    // Reap: the command, then (subreaper) whatever it left behind.
    for (;;) {
      int st = 0;
      pid_t p = ::waitpid(-1, &st, WNOHANG);
      if (p > 0) {
        if (p == child) {
          child_done = true;
          out.status = exit_status(st);
        }
        continue;
      }
      if (p < 0 && errno == ECHILD && child_done && !report) return out;
      if (p == 0 && child_done && !woken && !pid_namespace) {  // orphans remain
        woken = true;
        wake_stopped_orphans();
      }
      break;
    }
    struct pollfd fds[2] = {{sig_fd.get(), POLLIN, 0}, {report.get(), POLLIN, 0}};
    int n = ::poll(fds, report ? 2 : 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw sys_error("poll");
    }
    if (report && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t r = ::read(report.get(), buf, sizeof buf);
      if (r > 0)
        out.report.append(buf, static_cast<size_t>(r));
      else if (r == 0 || (errno != EINTR && errno != EAGAIN))
        report.reset();
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si {};
      while (::read(sig_fd.get(), &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGCHLD) continue;
        // Signals from the terminal (SI_KERNEL) already reached the command's process group;
        // forward only those someone sent to rbox (kill, a batch system, a parent shell).
        if (si.ssi_code > 0) continue;
        if (!child_done) {
          ::kill(child, sig);
        } else if (!pid_namespace && sig != SIGWINCH) {
          for (pid_t p : adopted_children()) ::kill(p, sig);
        }
      }
    }
  }
}

}  // namespace

namespace {
int launch(const Plan& plan);
}  // namespace

int run_container(const Plan& plan) {
  try {
    return launch(plan);
  } catch (const Error& e) {
    // Anything that stops the container from starting is a runtime failure (255), unless a
    // more specific code was chosen (host checks: 253).
    if (e.exit_code() == exit_code::kFailure) throw Error(e.message(), exit_code::kRuntimeFailure);
    throw;
  }
}

namespace {

int launch(const Plan& plan) {
  for (const auto& w : plan.warnings) log::warn(w);
  TerminalGuard terminal;
  // Signals are blocked before any thread exists, so the FUSE workers inherit the mask and
  // the launcher alone receives them (through signalfd). SIGCHLD must not be ignored.
  ::signal(SIGCHLD, SIG_DFL);
  // They stay blocked until rbox exits: one arriving after the command ended must not kill
  // rbox before it reports the command's status.
  sigset_t forwarded = forwarded_signals(), original;
  ::sigprocmask(SIG_BLOCK, &forwarded, &original);

  const ImageInfo& img = plan.root.image;
  std::optional<image::Location> location;
  std::unique_ptr<image::Mount> extracted;  // --unsquash: before any namespace, on the host
  std::string lower = img.path;
  if (img.kind == ImageKind::kSif) {
    location = image::locate(img.path);
    if (location->format == image::Format::kSandbox) {
      location.reset();
    } else if (plan.root.unsquash) {
      image::MountOptions mo;
      mo.unsquash = true;
      extracted = std::make_unique<image::Mount>(
          image::SquashfsSource{location->path, location->offset, location->size}, mo);
      lower = extracted->root();
    }
  }

  std::optional<IdMapHelper> helper = IdMapHelper::start(plan.ids);
  SessionDir session_dir;
  SessionLayout session{session_dir.path(), lower};

  enter_namespaces(plan.ns);
  std::pair<bool, bool> mapped{false, false};
  if (helper) {
    mapped = helper->map();
    if (!mapped.first || !mapped.second)
      log::warn("newuidmap/newgidmap failed; --fakeroot maps only your own id (other ids are emulated)");
  }
  write_id_maps(plan.ids, mapped.first, mapped.second);
  // Not dumpable: a container process of the same user must not reach the host's root
  // through /proc/<rbox>/root (ptrace access check). Only after the maps: a non-dumpable
  // process's /proc/self files belong to the host's root.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Receive host mount events, never send any back (mount_namespaces(7)).
  sys::mount("", "/", nullptr, MS_REC | MS_SLAVE);
  if (plan.ns.uts && !plan.ns.hostname.empty()) set_hostname(plan.ns.hostname);
  if (plan.ns.net) bring_up_loopback();

  prepare_session(session, plan.root.tmpfs_size_mib);
  session_dir.mounted();
  std::unique_ptr<image::Mount> served;  // destroyed before the session directory
  if (location && !extracted) {
    image::MountOptions mo;
    mo.mountpoint = session.image_mount();
    mo.unsquash = false;
    try {
      served = std::make_unique<image::Mount>(
          image::SquashfsSource{location->path, location->offset, location->size}, mo);
    } catch (const Error& e) {
      throw e.with_context("mount " + img.path);
    }
    session.lower = served->root();
    log::debug("image " + img.path + " mounted (" + image::mount_method_name(served->method()) + ") at " +
               session.lower);
  }

  // The child would walk the image through FUSE for every mount target and environment script;
  // the reader answers the same questions in-process (start-up time, FUSE.md §3.4).
  ImageFacts facts;
  if (served)
    if (auto reader = served->reader()) facts = learn_image_facts(plan, *reader);

  if (!plan.ns.pid) ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw sys_error("pipe");
  ChildContext ctx;
  ctx.plan = &plan;
  ctx.session = session;
  ctx.report_fd = pipefd[1];
  ctx.original_mask = original;
  ctx.launcher = ::getpid();
  ctx.facts = &facts;
  pid_t child = ::fork();
  if (child < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    throw sys_error("fork");
  }
  if (child == 0) {
    ::close(pipefd[0]);
    container_child(ctx);  // never returns
  }
  ::close(pipefd[1]);
  Outcome out = supervise(child, pipefd[0], plan.ns.pid);
  // The command's status means little if the image vanished under it (ENOTCONN on every
  // access): say so with a code of its own.
  const bool server_died = served && served->server_stopped();
  served.reset();
  if (server_died) {
    log::error("the image server for " + img.path +
               " stopped while the command ran (FUSE connection ended); the command's exit status " +
               std::to_string(out.status) + " is not reliable");
    return exit_code::kImageServerDied;
  }
  int code = 0;
  std::string message;
  if (parse_report(out.report, &code, &message)) {
    log::error(message);
    return code;
  }
  return out.status;
}

}  // namespace

}  // namespace rbox::container
