// Implementation of container/child.hpp. Order matters: the mount namespace and root first,
// then the directory and environment (they read the image through the new root), then
// PR_SET_NO_NEW_PRIVS, the fake-root filter and the original signal mask right before exec.
#include "container/child.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "container/action.hpp"
#include "container/environment.hpp"
#include "container/fakeroot.hpp"
#include "container/mounts.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::container {

sigset_t forwarded_signals() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH, SIGUSR1, SIGUSR2, SIGCHLD}) sigaddset(&s, sig);
  return s;
}

int exit_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return exit_code::kSignalBase + WTERMSIG(st);
  return exit_code::kRuntimeFailure;
}

void write_report(int fd, int code, const std::string& message) noexcept {
  if (fd < 0) return;
  std::string text = std::to_string(code) + "\n" + message;
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

bool parse_report(const std::string& text, int* code, std::string* message) {
  auto nl = text.find('\n');
  if (text.empty() || nl == std::string::npos) return false;
  *code = std::atoi(text.substr(0, nl).c_str());
  *message = text.substr(nl + 1);
  return true;
}

namespace {

std::string read_small_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw sys_error("open", path);
  std::string out;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

bool file_test(char op, const std::string& path) {
  struct stat st {};
  if (op == 'L') return ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
  if (::stat(path.c_str(), &st) != 0) return false;
  switch (op) {
    case 'd':
      return S_ISDIR(st.st_mode);
    case 'f':
      return S_ISREG(st.st_mode);
    case 'e':
      return true;
    case 's':
      return st.st_size > 0;
    case 'x':
      return ::access(path.c_str(), X_OK) == 0;
    case 'r':
      return ::access(path.c_str(), R_OK) == 0;
    case 'w':
      return ::access(path.c_str(), W_OK) == 0;
  }
  return false;
}

bool executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

struct ExecSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;
  int exit_without_exec = -1;
};

void set_env(std::vector<std::string>& env, const std::string& kv) {
  std::string name = kv.substr(0, kv.find('=') + 1);
  for (auto& e : env)
    if (str::starts_with(e, name)) {
      e = kv;
      return;
    }
  env.push_back(kv);
}

ExecSpec prepare_exec(const Plan& plan, const std::string& cwd, const ImageFacts* facts) {
  ImageEnvironment image = facts && facts->environment ? *facts->environment : read_image_environment();
  NativeEnvironment native = evaluate_natively(plan.env, image, file_test);
  std::string action(action_name(plan.action));
  if (!native.supported) {
    if (executable("/bin/sh")) {
      log::debug("environment needs /bin/sh (" + native.reason + "); running runtime/action.sh");
      ExecSpec spec{shell_action_argv(plan.action, plan.args), shell_environment(plan.env, action), -1};
      set_env(spec.env, "PWD=" + cwd);
      return spec;
    }
    // No shell to evaluate it: skip what needs one, say so, and keep going (exec still works).
    for (int tries = 0; !native.supported && tries < 64; ++tries) {
      log::warn(native.reason + "; the image has no /bin/sh to evaluate it, so it is skipped");
      if (native.failed_file.empty()) {
        EnvPlan p = plan.env;
        p.no_eval = true;
        native = evaluate_natively(p, image, file_test);
        continue;
      }
      std::string failed = native.failed_file;
      auto& files = image.files;
      files.erase(std::remove_if(files.begin(), files.end(),
                                 [&](const EnvFile& f) { return "/.singularity.d/env/" + f.name == failed; }),
                  files.end());
      if (failed == "/environment") image.legacy_file.reset();
      native = evaluate_natively(plan.env, image, file_test);
    }
  }
  ExecSpec spec;
  spec.env = native.environ;
  set_env(spec.env, "PWD=" + cwd);
  ActionCommand ac =
      resolve_action(plan.action, plan.args, plan.app, env_lookup(spec.env, "SINGULARITY_SHELL"), executable);
  for (const auto& kv : ac.env) set_env(spec.env, kv);
  if (!ac.note.empty()) log::info(ac.note);
  if (!ac.error.empty()) log::error(ac.error);
  if (ac.argv.empty()) {
    spec.exit_without_exec = ac.status;
    return spec;
  }
  spec.argv = std::move(ac.argv);
  return spec;
}

std::string enter_cwd(const Plan& plan) {
  if (::chdir(plan.cwd.c_str()) == 0) return plan.cwd;
  int err = errno;
  if (plan.cwd_required)
    throw Error("--pwd " + plan.cwd + ": cannot enter it in the container: " + std::strerror(err));
  log::verbose("cannot enter " + plan.cwd + " in the container (" + std::strerror(err) + "); starting in " +
               plan.home);
  if (::chdir(plan.home.c_str()) == 0) return plan.home;
  if (::chdir("/") != 0) throw sys_error("chdir", "/");
  return "/";
}

[[noreturn]] void final_exec(const ChildContext& ctx, const ExecSpec& spec) noexcept {
  try {
    // No privilege can be gained from here on: setuid bits and file capabilities are ignored.
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw sys_error("prctl(PR_SET_NO_NEW_PRIVS)");
    if (ctx.plan->ids.fakeroot && !ctx.plan->ids.subuid) install_fakeroot_filter();
    ::sigprocmask(SIG_SETMASK, &ctx.original_mask, nullptr);
    std::string tried;
    const ImageFacts* facts = ctx.facts;
    bool known = facts && !spec.argv.empty() && !facts->command.empty() && facts->command == spec.argv[0];
    exec_command(spec.argv, spec.env, tried, known ? &facts->command_absent_in : nullptr);
    int err = errno;
    if (err == ENOENT) {
      std::string where = spec.argv[0].find('/') == std::string::npos
                              ? " (searched PATH=" + env_lookup(spec.env, "PATH") + ")"
                              : "";
      write_report(ctx.report_fd, exit_code::kNotFound,
                   spec.argv[0] + ": command not found in the container" + where);
      ::_exit(exit_code::kNotFound);
    }
    write_report(ctx.report_fd, exit_code::kCannotExecute, tried + ": cannot execute: " + std::strerror(err));
    ::_exit(exit_code::kCannotExecute);
  } catch (const Error& e) {
    write_report(ctx.report_fd, e.exit_code() > 1 ? e.exit_code() : exit_code::kRuntimeFailure, e.message());
  } catch (...) {
    write_report(ctx.report_fd, exit_code::kRuntimeFailure, "unexpected error before exec");
  }
  ::_exit(exit_code::kRuntimeFailure);
}

void write_self(const char* file, const std::string& text) {
  int fd = ::open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw sys_error("open", file);
  ssize_t n = ::write(fd, text.data(), text.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size()))
    throw Error(std::string("write ") + file + ": " + std::strerror(err));
}

// Root in the container (real root, or --fakeroot) holds every capability of rbox's user
// namespace, enough to remount a read-only bind read-write or unmount what hides the image.
// A nested user namespace with its own copy of the mount table makes the kernel lock every
// mount as it is (MNT_LOCKED, locked flags; mount_namespaces(7) "Restrictions on mount
// namespaces"), while the ids stay the same (identity map).
void lock_mounts(uid_t uid, gid_t gid) {
  if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) throw sys_error("unshare(CLONE_NEWUSER | CLONE_NEWNS)");
  write_self("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1\n");
  write_self("/proc/self/setgroups", "deny");
  write_self("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
}

// PID 1 of the container's PID namespace: forwards signals sent to it (not the terminal's,
// which reach the command's process group directly) and reaps every orphan. Returns the
// command's status once the command exits; the kernel then ends the rest of the namespace.
int run_init(pid_t command) {
  sigset_t set = forwarded_signals();
  for (;;) {
    siginfo_t si{};
    int sig = ::sigwaitinfo(&set, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int st;
      pid_t p;
      while ((p = ::waitpid(-1, &st, WNOHANG)) > 0)
        if (p == command) return exit_status(st);
      continue;
    }
    if (si.si_code <= 0) ::kill(command, sig);  // SI_USER, SI_QUEUE, SI_TKILL: sent by someone
  }
}

}  // namespace

ImageEnvironment read_image_environment() {
  ImageEnvironment out;
  DIR* d = ::opendir("/.singularity.d/env");
  if (d) {
    out.has_env_dir = true;
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 3 && str::ends_with(n, ".sh")) names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string path = "/.singularity.d/env/" + n;
      struct stat st {};
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      try {
        out.files.push_back({n, read_small_file(path)});
      } catch (const Error& e) {
        log::verbose(e.message());
      }
    }
  } else {
    struct stat st {};
    if (::stat("/environment", &st) == 0 && S_ISREG(st.st_mode)) {
      try {
        out.legacy_file = read_small_file("/environment");
      } catch (const Error& e) {
        log::verbose(e.message());
      }
    }
  }
  return out;
}

void container_child(const ChildContext& ctx) noexcept {
  const Plan& plan = *ctx.plan;
  try {
    // If rbox dies, so does the container: its image server is gone.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != ctx.launcher) ::_exit(exit_code::kRuntimeFailure);
    // A mount namespace of its own: pivot_root moves the root of every process sharing the
    // namespace, and the launcher must keep the host's.
    // With --pid the namespace is created here, not in the launcher: after unshare(CLONE_NEWPID)
    // a process can no longer start threads (clone(CLONE_THREAD) fails with EINVAL), and the
    // launcher's FUSE server adds workers as it goes. This process then only relays: its
    // child is PID 1 of the new namespace and does the rest.
    if (::unshare(CLONE_NEWNS | (plan.ns.pid ? CLONE_NEWPID : 0)) != 0)
      throw sys_error(plan.ns.pid ? "unshare(CLONE_NEWNS | CLONE_NEWPID)" : "unshare(CLONE_NEWNS)");
    if (plan.ns.pid) {
      pid_t init = ::fork();
      if (init < 0) throw sys_error("fork");
      if (init > 0) {
        ::close(ctx.report_fd);
        ::_exit(run_init(init));
      }
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    }
    // Unbindable: recursive binds of its host parent (usually /tmp) leave the session out, so
    // the container never sees its own image mount and root. Set here, after the copy: a
    // namespace copy does not keep the flag (seen on Linux 6.18).
    sys::mount("", ctx.session.dir, nullptr, MS_UNBINDABLE);
    build_root(plan, ctx.session, ctx.facts);
    sys::pivot_into(ctx.session.new_root());
    // The launcher is not dumpable (its /proc/PID/root is the host's root); from here on this
    // process only sees the container, and the id-map files below must be ours to write.
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    if (plan.ids.uid == 0 && !plan.ids.subuid) lock_mounts(plan.ids.uid, plan.ids.gid);
    std::string cwd = enter_cwd(plan);
    ExecSpec spec = prepare_exec(plan, cwd, ctx.facts);
    if (spec.exit_without_exec >= 0) ::_exit(spec.exit_without_exec);
    if (plan.ns.pid && plan.ns.init) {
      pid_t command = ::fork();
      if (command < 0) throw sys_error("fork");
      if (command == 0) final_exec(ctx, spec);
      ::close(ctx.report_fd);
      ::prctl(PR_SET_NAME, "rbox-init", 0, 0, 0);
      ::_exit(run_init(command));
    }
    final_exec(ctx, spec);
  } catch (const Error& e) {
    write_report(ctx.report_fd, e.exit_code() > 1 ? e.exit_code() : exit_code::kRuntimeFailure, e.message());
  } catch (const std::exception& e) {
    write_report(ctx.report_fd, exit_code::kRuntimeFailure, e.what());
  } catch (...) {
    write_report(ctx.report_fd, exit_code::kRuntimeFailure,
                 "unexpected error while setting up the container");
  }
  ::_exit(exit_code::kRuntimeFailure);
}

}  // namespace rbox::container
