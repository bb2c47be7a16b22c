// rbox sif list|info|dump|header: the SIF container file, as the reference siftool shows it.
#include "cli/app.hpp"

namespace rbox::cli {

void register_sif(CLI::App& app, Context& ctx) {
  auto* sif = add_command(app, "sif", "Inspect the objects of a SIF file (like siftool)",
                          {"rbox sif list env.sif", "rbox sif dump 3 env.sif > rootfs.squashfs"});
  sif->require_subcommand(1);
  auto* list = add_command(*sif, "list", "List the data objects",
                           {"rbox sif list env.sif", "rbox sif list busybox.sif"});
  auto* info = add_command(*sif, "info", "Show one data object",
                           {"rbox sif info 1 env.sif", "rbox sif info 4 env.sif"});
  auto* dump = add_command(*sif, "dump", "Write one data object to standard output",
                           {"rbox sif dump 1 env.sif", "rbox sif dump 4 env.sif > part.squashfs"});
  auto* header = add_command(*sif, "header", "Show the global header",
                             {"rbox sif header env.sif", "rbox sif header busybox.sif"});
  on_run(list, ctx, [] { return not_implemented("sif list"); });
  on_run(info, ctx, [] { return not_implemented("sif info"); });
  on_run(dump, ctx, [] { return not_implemented("sif dump"); });
  on_run(header, ctx, [] { return not_implemented("sif header"); });
}

}  // namespace rbox::cli
