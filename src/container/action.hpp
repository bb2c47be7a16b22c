// What an action runs inside the container — exec: the command; run: the runscript, then
// /apptainer, then /bin/sh; shell: $SINGULARITY_SHELL, /bin/bash --norc, /bin/sh; test:
// /.singularity.d/test — decided natively (pure, given an "is executable" probe), plus the argv
// for the shell path (runtime/action.sh) and the final execve with PATH search.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "container/options.hpp"

namespace rbox::container {

struct ActionCommand {
  std::vector<std::string> argv;  // empty: do not exec, exit with `status`
  std::vector<std::string> env;   // extra K=V (SHELL for shell)
  std::string note;               // informational line for stderr ("no runscript …")
  std::string error;              // error line for stderr
  int status = 0;
};

// exe(path): the path exists in the container and is executable.
ActionCommand resolve_action(Action action, const std::vector<std::string>& args, const std::string& app,
                             const std::string& singularity_shell,
                             const std::function<bool(const std::string&)>& exe);

// argv for the shell path: /bin/sh -c "<runtime/action.sh>" /.singularity.d/actions/ACTION ARGS…
std::vector<std::string> shell_action_argv(Action action, const std::vector<std::string>& args);

// The value of NAME in env ("K=V" list), or "".
std::string env_lookup(const std::vector<std::string>& env, const std::string& name);

// Replaces the process with argv[0] (searched in env's PATH when it has no '/'); a file without
// a #! line is run by /bin/sh, as execvp does. Returns only on failure, with errno set and
// `tried` naming the path that failed best. Async-signal-safe apart from allocation.
// absent_in: directories known to hold no entry named argv[0] (the image's reader said so);
// the search skips them as if execve had failed with ENOENT there.
void exec_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  std::string& tried, const std::vector<std::string>* absent_in = nullptr);

}  // namespace rbox::container
