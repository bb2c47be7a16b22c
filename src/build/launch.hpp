// The build's own minimal launcher: runs one command as (fake) root in a fresh mount and PID
// namespace — chrooted (pivot_root) into a root filesystem being built, with /dev, /proc, /sys,
// the staged resolv.conf/hosts and -B binds, or on the host tree for debootstrap — behind the
// seccomp filter of container/fakeroot.hpp. To be folded into container/ once its launcher can
// run a writable directory as fake root. Must be called from a single-threaded process that is
// already inside the build's user namespace (or real root); never creates a user namespace.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "container/fakeroot.hpp"

namespace rbox::build {

struct LaunchBind {
  std::string source;       // host path
  std::string destination;  // path inside the root (resolved inside it)
  bool read_only = false;
  bool optional = false;  // skip silently when the destination does not resolve
};

struct LaunchSpec {
  // Root filesystem to pivot into; "" runs on the host tree (only /proc is replaced).
  std::string rootfs;
  std::vector<std::string> argv;  // argv[0] is an absolute path
  std::vector<std::string> env;   // the complete environment
  std::string cwd = "/";
  bool writable = true;  // false: the root is remounted read-only (%test)
  std::vector<LaunchBind> binds;
  // Host-tree mode: directories DIR whose DIR/dev gets the host's null, zero, full, random,
  // urandom and tty bound onto placeholder files, plus /dev/null on console (FAKEROOT.md §2).
  std::vector<std::string> host_dev_targets;
  container::FakerootMode mode = container::FakerootMode::kRootMapped;
  const container::SeccompProgram* filter = nullptr;  // nullptr or empty: none
  // Each line of the command's merged stdout/stderr (without the newline). Empty: inherit the
  // caller's stdout/stderr. stdin is always /dev/null.
  std::function<void(std::string_view line)> on_line;
};

// Runs the command and returns its exit status (128+N when killed by signal N). Throws
// rbox::Error when the sandbox could not be set up (the message names the step).
int launch(const LaunchSpec& spec);

// Runs a host program (no namespaces, same filesystem view) with env, streaming its merged
// output to on_line when set; it dies with the caller (PR_SET_PDEATHSIG). Returns its status.
int run_host_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     const std::function<void(std::string_view line)>& on_line);

// Reads fd to its end, calling on_line for every line (without the newline).
void pump_lines(int fd, const std::function<void(std::string_view line)>& on_line);

// The names launch() places in /dev (for clean-up of debootstrap placeholders).
const std::vector<std::string>& host_device_names();

}  // namespace rbox::build
