// rbox instance start|stop|list|run: detachable containers that outlive the SSH session.
#include "cli/app.hpp"

namespace rbox::cli {

void register_instance(CLI::App& app, Context& ctx) {
  auto* inst = add_command(app, "instance", "Manage background container instances",
                           {"rbox instance start env.sif dev", "rbox instance list"});
  inst->require_subcommand(1);
  auto* start = add_command(*inst, "start", "Start a named instance of an image (runs its startscript)",
                            {"rbox instance start env.sif dev", "rbox instance start -B /data env.sif dev2"});
  auto* stop = add_command(*inst, "stop", "Stop a named instance (SIGINT, then SIGKILL after --timeout)",
                           {"rbox instance stop dev", "rbox instance stop --all"});
  auto* list = add_command(*inst, "list", "List running instances",
                           {"rbox instance list", "rbox instance list --json"});
  auto* run = add_command(*inst, "run", "Start a named instance that runs the runscript",
                          {"rbox instance run env.sif dev", "rbox instance run env.sif dev -- --port 8080"});
  on_run(start, ctx, [] { return not_implemented("instance start"); });
  on_run(stop, ctx, [] { return not_implemented("instance stop"); });
  on_run(list, ctx, [] { return not_implemented("instance list"); });
  on_run(run, ctx, [] { return not_implemented("instance run"); });
}

}  // namespace rbox::cli
