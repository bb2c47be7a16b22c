// The container side of a launch, run in the child the launcher forks: own mount namespace,
// root built and pivoted into, working directory, environment, action, then exec — or, with a
// PID namespace, a small init that forks the command, reaps everything and forwards signals.
// Internal to container/ (launch.cpp is the only caller). Nothing here returns into the
// launcher's code: every path ends in exec or _exit, and failures travel to the launcher as a
// report on a pipe (never as an exception across fork).
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "container/plan.hpp"
#include "container/rootfs.hpp"

namespace rbox::container {

struct ChildContext {
  const Plan* plan = nullptr;
  SessionLayout session;
  int report_fd = -1;      // write end; close-on-exec
  sigset_t original_mask;  // restored just before exec
  pid_t launcher = 0;
  const ImageFacts* facts = nullptr;  // what the launcher read from the image in-process
};

[[noreturn]] void container_child(const ChildContext& ctx) noexcept;

// Report format on the pipe: "<exit code>\n<one-line message>". Parsed by the launcher.
void write_report(int fd, int code, const std::string& message) noexcept;
bool parse_report(const std::string& text, int* code, std::string* message);

// The signals the launcher and the init hold and forward.
sigset_t forwarded_signals();  // INT TERM HUP QUIT WINCH USR1 USR2 (+ CHLD for waiting)

// waitpid status → exit code (128+N for signal N).
int exit_status(int wstatus);

// Reads /.singularity.d/env/*.sh (or /environment) of the current root.
ImageEnvironment read_image_environment();

}  // namespace rbox::container
