// What the user asked for when running a container (exec/run/shell/test flags), as plain data.
// Filled by cli/, read by container::make_plan. No I/O and no policy here: defaults and
// precedence live in plan.cpp.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rbox::container {

enum class Action { kExec, kRun, kShell, kTest };

std::string_view action_name(Action a);  // "exec", "run", "shell", "test"

// --writable-tmpfs size cap. Apptainer's default ("sessiondir max size") is 64 MiB, which a
// pip install overruns; tmpfs only uses memory for what is written.
inline constexpr unsigned kDefaultTmpfsSizeMib = 1024;

struct LaunchOptions {
  Action action = Action::kExec;
  std::string image;              // path, docker://…, instance://…
  std::vector<std::string> args;  // command (exec) or arguments (run/shell/test)

  std::vector<std::string> binds;   // -B values, each possibly a comma list
  std::vector<std::string> mounts;  // --mount values
  std::string home;                 // -H src[:dst]
  bool no_home = false;
  bool contain = false;
  bool containall = false;
  bool cleanenv = false;
  std::vector<std::string> envs;       // --env K=V (each may be a comma list? no: one K=V)
  std::vector<std::string> env_files;  // --env-file paths
  std::string pwd;
  bool writable = false;
  bool writable_tmpfs = false;
  unsigned tmpfs_size_mib = kDefaultTmpfsSizeMib;
  std::vector<std::string> overlays;  // -o DIR[:ro]
  bool fakeroot = false;
  bool ignore_subuid = false;
  bool pid = false;
  bool ipc = false;
  bool net = false;
  bool uts = false;
  std::string hostname;
  std::vector<std::string> no_mount;  // --no-mount items (comma lists allowed)
  std::string app;
  std::string shell;    // shell --shell
  std::string workdir;  // -W
  bool no_init = false;
  bool no_eval = false;
  bool unsquash = false;
  bool userns = false;  // -u: accepted, always on
};

}  // namespace rbox::container
