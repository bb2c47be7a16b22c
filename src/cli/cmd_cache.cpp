// rbox cache list|clean: the content-addressed blob cache under $RBOX_CACHEDIR.
#include "cli/app.hpp"

namespace rbox::cli {

void register_cache(CLI::App& app, Context& ctx) {
  auto* cache = add_command(app, "cache", "Inspect or clean the blob and image cache",
                            {"rbox cache list", "rbox cache clean --days 30"});
  cache->require_subcommand(1);
  auto* list =
      add_command(*cache, "list", "List cached blobs and images", {"rbox cache list", "rbox -v cache list"});
  auto* clean = add_command(*cache, "clean", "Remove cached entries",
                            {"rbox cache clean", "rbox cache clean --days 7"});
  on_run(list, ctx, [] { return not_implemented("cache list"); });
  on_run(clean, ctx, [] { return not_implemented("cache clean"); });
}

}  // namespace rbox::cli
