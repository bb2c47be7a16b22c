// A tiny, side-effect-free evaluator for the POSIX sh subset found in /.singularity.d/env/*.sh:
// assignments, export, unset, `:`, if/elif/else/fi over test/[ conditions, && || ; lists and
// $VAR ${VAR:-w} ${VAR:+w} expansions. It lets rbox set a container's environment without
// starting /bin/sh (faster start-up; images without a shell). Anything else — command
// substitution, pipes, redirections, other commands — makes it give up, and the caller falls back
// to the real shell (runtime/action.sh). It never runs a program or touches files itself.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rbox::container {

struct ShellVar {
  std::optional<std::string> value;  // nullopt: declared (e.g. `export X`) but unset
  bool exported = false;
};
using ShellVars = std::map<std::string, ShellVar>;

// Answers `[ -d PATH ]` style file tests inside the container (op is 'd', 'f', 'e', 'x', 'r',
// 's', 'L', 'h'). Empty: such tests make the script unsupported.
using FileTest = std::function<bool(char op, const std::string& path)>;

struct ScriptOutcome {
  bool supported = true;
  std::string reason;  // why not, e.g. "line 12: command 'echo' is not supported"
};

// Evaluates text on vars. When unsupported, vars is left unchanged.
ScriptOutcome run_env_script(std::string_view text, ShellVars& vars, const FileTest& file_test = {});

// Expands text as the inside of a double-quoted string ("$HOME/x", "${A:-b}"). nullopt when it
// needs a real shell (command substitution, special parameters).
std::optional<std::string> expand_double_quoted(std::string_view text, const ShellVars& vars);

// True for a valid sh variable name.
bool is_shell_name(std::string_view s);

}  // namespace rbox::container
