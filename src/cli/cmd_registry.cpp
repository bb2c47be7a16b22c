// rbox registry login|logout: credentials in the docker-format auth file.
#include "cli/app.hpp"

namespace rbox::cli {

void register_registry(CLI::App& app, Context& ctx) {
  auto* reg = add_command(app, "registry", "Log in to or out of a container registry",
                          {"rbox registry login --username me docker://registry.example.org",
                           "rbox registry logout docker://registry.example.org"});
  reg->require_subcommand(1);
  auto* login = add_command(*reg, "login", "Store credentials for a registry",
                            {"rbox registry login -u me --password-stdin docker://ghcr.io",
                             "rbox registry login -u me docker://localhost:5000"});
  auto* logout =
      add_command(*reg, "logout", "Remove stored credentials for a registry",
                  {"rbox registry logout docker://ghcr.io", "rbox registry logout docker://localhost:5000"});
  on_run(login, ctx, [] { return not_implemented("registry login"); });
  on_run(logout, ctx, [] { return not_implemented("registry logout"); });
}

}  // namespace rbox::cli
