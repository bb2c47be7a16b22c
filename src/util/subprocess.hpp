// Running host programs (debootstrap, getent, newuidmap …) with posix_spawn. Not for running
// anything inside a container: that is container/'s job.
#pragma once

#include <string>
#include <vector>

namespace rbox::proc {

struct Result {
  int status = -1;     // exit code, or 128+signal
  std::string output;  // stdout (when captured)
};

struct Options {
  bool capture_stdout = false;
  bool quiet_stderr = false;     // stderr to /dev/null
  std::vector<std::string> env;  // empty: inherit
  std::string cwd;               // empty: inherit
};

// Runs argv[0] (searched in PATH) and waits. Throws rbox::Error if it cannot be started.
Result run(const std::vector<std::string>& argv, const Options& opts = {});
// Full path of a program in PATH, or "".
std::string which(const std::string& program);
// Decodes a waitpid status: exit code, or 128+signal.
int decode_status(int wstatus);

}  // namespace rbox::proc
