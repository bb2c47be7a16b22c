// rbox check: run every step rbox needs on this host and report which one fails.
#include "cli/app.hpp"

namespace rbox::cli {

void register_check(CLI::App& app, Context& ctx) {
  auto* sub =
      add_command(app, "check", "Check that this host allows rootless containers (user namespaces, FUSE, …)",
                  {"rbox check", "rbox --verbose check"});
  on_run(sub, ctx, [] { return not_implemented("check"); });
}

}  // namespace rbox::cli
