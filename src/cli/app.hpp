// Shared pieces of the command tree: every verb file registers its subcommand here and sets the
// action to run after parsing. Nothing outside cli/ includes this.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace rbox::cli {

// The action chosen by the parsed subcommand; returns the process exit code.
using Action = std::function<int()>;

struct Context {
  Action action;
};

// Creates a subcommand with a one-line summary and examples shown under "Examples:".
CLI::App* add_command(CLI::App& parent, const std::string& name, const std::string& summary,
                      const std::vector<std::string>& examples);

// Sets the action of sub to fn when sub is the command that was parsed.
void on_run(CLI::App* sub, Context& ctx, Action fn);

// For commands whose implementation has not landed: "rbox: 'X' is not implemented yet", exit 2.
int not_implemented(const std::string& what);

// rbox inspect IMAGE (cli/inspect_image.cpp); the --deffile branch lives in cmd_inspect.cpp.
int inspect_image(const std::string& target, bool json);

// One registration function per verb file.
void register_build(CLI::App& app, Context& ctx);
void register_actions(CLI::App& app, Context& ctx);  // exec run shell test
void register_inspect(CLI::App& app, Context& ctx);
void register_pull(CLI::App& app, Context& ctx);
void register_instance(CLI::App& app, Context& ctx);
void register_check(CLI::App& app, Context& ctx);
void register_version(CLI::App& app, Context& ctx);
void register_sif(CLI::App& app, Context& ctx);
void register_cache(CLI::App& app, Context& ctx);
void register_registry(CLI::App& app, Context& ctx);

}  // namespace rbox::cli
