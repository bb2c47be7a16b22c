// mount_probe: mounts a SquashFS image (SIF or bare) through image::Mount inside a fresh user +
// mount namespace and runs one command in it, for tests and benchmarks until `rbox exec` exists.
// Test tool only: no container isolation beyond the namespaces it needs; never installed.
//
//   mount_probe [options] IMAGE [--] CMD [ARGS...]
//     --offset N / --size N   SquashFS location in a non-SIF file (default: SIF partition, or 0)
//     --chroot                run CMD chrooted into the image (default: with cwd = the image root)
//     --unsquash              extract instead of mounting; --no-fallback: fail if FUSE is unusable
//     --no-kernel             never use the kernel's squashfs (real root)
//     --image-owners          report the image's uid/gid instead of the caller's
//     --userns                create a user namespace even as root (root then uses FUSE too)
//     --mountpoint DIR        mount there instead of a private temporary directory
//     --print-root            print the image root path (with the cwd mode, CMD runs there)
//     --verbose               timings and FUSE counters on stderr
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "image/image.hpp"
#include "image/mount.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

using Clock = std::chrono::steady_clock;
using rbox::Error;

namespace {

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void write_proc(const char* path, const std::string& text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    int err = errno;
    if (fd >= 0) close(fd);
    throw rbox::sys_error("write", path, err);
  }
  close(fd);
}

// unshare(CLONE_NEWUSER | CLONE_NEWNS) with the caller mapped to 0 (single-id map), before any
// thread exists; then keep mounts private to this namespace.
void enter_namespaces(bool userns) {
  if (userns) {
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
      throw rbox::sys_error("unshare(CLONE_NEWUSER|CLONE_NEWNS)");
    write_proc("/proc/self/setgroups", "deny");
    write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1");
    write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
  } else if (unshare(CLONE_NEWNS) != 0) {
    throw rbox::sys_error("unshare(CLONE_NEWNS)");
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    throw rbox::sys_error("mount --make-rprivate /");
}

// vfork: the server threads keep running in this process while the child execs from the mount;
// the child only changes directory and execs (FUSE.md §6 "fork and threads"). A separate
// function so that no caller variable lives across the shared-stack child.
__attribute__((noinline)) pid_t spawn_payload(const char* root, bool chroot_mode, char* const* argv) {
  pid_t pid = vfork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (chroot_mode ? (chroot(root) != 0 || chdir("/") != 0) : chdir(root) != 0) _exit(125);
    execvp(argv[0], argv);
    _exit(errno == ENOENT ? 127 : 126);
  }
  return pid;
}

[[noreturn]] void usage() {
  fprintf(stderr,
          "usage: mount_probe [--offset N] [--size N] [--chroot] [--unsquash] [--no-fallback] [--no-kernel]\n"
          "                   [--image-owners] [--userns] [--mountpoint DIR] [--print-root] [--verbose]\n"
          "                   IMAGE [--] CMD [ARGS...]\n");
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const auto t_start = Clock::now();
  rbox::image::SquashfsSource src;
  rbox::image::MountOptions opts;
  bool chroot_mode = false, verbose = false, force_userns = false, print_root = false, have_offset = false;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--offset") {
      src.offset = std::stoull(next());
      have_offset = true;
    } else if (a == "--size") {
      src.size = std::stoull(next());
    } else if (a == "--chroot") {
      chroot_mode = true;
    } else if (a == "--unsquash") {
      opts.unsquash = true;
    } else if (a == "--no-fallback") {
      opts.allow_extract_fallback = false;
    } else if (a == "--no-kernel") {
      opts.allow_kernel_mount = false;
    } else if (a == "--image-owners") {
      opts.owners = rbox::image::fuse::OwnerPolicy::image();
    } else if (a == "--userns") {
      force_userns = true;
    } else if (a == "--mountpoint") {
      opts.mountpoint = next();
    } else if (a == "--print-root") {
      print_root = true;
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--help" || a == "-h") {
      usage();
    } else {
      break;
    }
  }
  if (i >= argc) usage();
  src.path = argv[i++];
  if (i < argc && std::string(argv[i]) == "--") ++i;
  std::vector<char*> cmd(argv + i, argv + argc);
  cmd.push_back(nullptr);
  if (verbose) rbox::log::set_level(rbox::log::Level::kVerbose);

  try {
    if (!have_offset) {  // a SIF's primary partition, a bare SquashFS (maybe behind a launch line)
      rbox::image::Location loc = rbox::image::locate(src.path);
      if (loc.format == rbox::image::Format::kSandbox)
        throw Error(src.path + ": a directory, not an image file");
      src.offset = loc.offset;
      src.size = loc.size;
    }
    const bool userns = force_userns || geteuid() != 0;
    enter_namespaces(userns);
    const double t_ns = ms_since(t_start);

    auto t0 = Clock::now();
    rbox::image::Mount m(src, opts);
    const double t_mount = ms_since(t0);
    if (print_root) printf("%s\n", m.root().c_str()), fflush(stdout);

    int status = 0;
    double t_run = 0;
    if (cmd.size() > 1) {
      t0 = Clock::now();
      pid_t pid = spawn_payload(m.root().c_str(), chroot_mode, cmd.data());
      if (pid < 0) throw rbox::sys_error("vfork");
      status = rbox::image::wait_child(pid);
      t_run = ms_since(t0);
    }
    t0 = Clock::now();
    m.unmount();  // with --verbose, Mount reports the FUSE counters itself
    const double t_umount = ms_since(t0);
    if (verbose) {
      fprintf(stderr,
              "mount_probe: method=%s namespaces=%.3f ms mount=%.3f ms run=%.3f ms unmount=%.3f ms "
              "total=%.3f ms\n",
              rbox::image::mount_method_name(m.method()), t_ns, t_mount, t_run, t_umount, ms_since(t_start));
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
  } catch (const Error& e) {
    fprintf(stderr, "mount_probe: error: %s\n", e.what());
    return e.exit_code() == 1 ? 255 : e.exit_code();
  } catch (const std::exception& e) {
    fprintf(stderr, "mount_probe: error: %s\n", e.what());
    return 255;
  }
}
