// The container's environment, computed the way Apptainer's action script does it
// (APPTAINER.md 4.3/4.4): host variables filtered; APPTAINERENV_/SINGULARITYENV_/RBOXENV_,
// --env-file and --env injected right after 99-base.sh; /.singularity.d/env/*.sh sourced in
// order; host and runtime variables restored last when not already set. Pure functions: the
// native evaluation (no /bin/sh) and the variables handed to runtime/action.sh both come from
// one EnvPlan, so the two paths agree. Nothing here reads files or the process environment.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "container/env_script.hpp"

namespace rbox::container {

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct EnvVar {
  std::string name;
  std::string value;
  bool operator==(const EnvVar&) const = default;
};

struct EnvInputs {
  std::vector<std::string> host_environ;  // "K=V" as in environ
  bool cleanenv = false;
  std::vector<EnvVar> env_file_vars;  // --env-file contents, in file order
  std::vector<EnvVar> cli_envs;       // --env K=V, in order
  std::string home;                   // HOME inside the container
  std::string pwd;                    // PWD inside the container
  std::vector<EnvVar> runtime;        // APPTAINER_CONTAINER … set by rbox
  std::string appname;                // --app
  std::string shell;                  // --shell
  bool no_eval = false;
};

struct EnvPlan {
  std::vector<EnvVar> keep;     // visible while the image's env files are sourced
  std::vector<EnvVar> inject;   // APPTAINERENV_… values, applied after 99-base.sh
  std::vector<EnvVar> restore;  // set at the end unless already set (empty → unset)
  bool no_eval = false;
  std::vector<std::string> warnings;
};

// Parses "K=V" (for --env); throws rbox::Error when there is no '=' or K is not a name.
EnvVar parse_env_assignment(const std::string& text, const std::string& where);

// Evaluates an --env-file (simple sh: K=V, export K=V, comments) with the host environment
// visible, as Apptainer does. Throws rbox::Error naming file:line when it needs a real shell.
std::vector<EnvVar> evaluate_env_file(const std::string& path, const std::string& text,
                                      const std::vector<std::string>& host_environ);

EnvPlan plan_environment(const EnvInputs& in);

struct EnvFile {
  std::string name;  // basename, e.g. "90-environment.sh"
  std::string text;
};

struct ImageEnvironment {
  bool has_env_dir = false;                // /.singularity.d/env exists
  std::vector<EnvFile> files;              // its *.sh files, sorted by name
  std::optional<std::string> legacy_file;  // /environment when there is no env dir
};

struct NativeEnvironment {
  bool supported = true;
  std::string reason;                // why /bin/sh is needed
  std::string failed_file;           // the env file that needs it ("" for an --env value)
  std::vector<std::string> environ;  // "K=V", sorted by name
};

// Runs the action script's environment steps without a shell.
NativeEnvironment evaluate_natively(const EnvPlan& plan, const ImageEnvironment& image,
                                    const FileTest& file_test);

// The environment for `/bin/sh -c "$(runtime/action.sh)"`: keep variables plus the inject and
// restore steps as sh snippets (RBOX_ENV_INJECT_SH*, RBOX_ENV_RESTORE_SH*) and RBOX_ACTION.
std::vector<std::string> shell_environment(const EnvPlan& plan, const std::string& action);

// Escapes \ and " so that "…" around the result gives back s with $VAR expansions active
// (Apptainer evaluates --env values unless --no-eval).
std::string dq_escape(const std::string& s);

}  // namespace rbox::container
