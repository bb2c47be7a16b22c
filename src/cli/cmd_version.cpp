// rbox version: the version of rbox and what it was built with.
#include <iostream>

#include "cli/app.hpp"

namespace rbox::cli {

void register_version(CLI::App& app, Context& ctx) {
  auto* sub = add_command(app, "version", "Show the version of rbox", {"rbox version", "rbox --version"});
  on_run(sub, ctx, [] {
    std::cout << "rbox " << RBOX_VERSION
#ifdef RBOX_STATIC
              << " (static)"
#endif
              << "\n";
    return 0;
  });
}

}  // namespace rbox::cli
