// rbox inspect: show a parsed definition file (--deffile) or an image's metadata.
#include "cli/app.hpp"

namespace rbox::cli {

void register_inspect(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string target;
    bool deffile = false, json = false, all_stages = false, warn_unused = false;
    std::vector<std::string> build_args, build_arg_files;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = add_command(app, "inspect", "Show the metadata of an image, or a parsed definition file",
                          {"rbox inspect env.sif", "rbox inspect --deffile env.def --json"});
  sub->add_option("target", o->target, "SIF file or sandbox directory; definition file with --deffile")
      ->required();
  sub->add_flag("--deffile", o->deffile, "Treat the target as a definition file and show how rbox parses it");
  sub->add_flag("-j,--json", o->json, "Print JSON (Apptainer's Definition shape for --deffile)");
  sub->add_flag("--all-stages", o->all_stages,
                "With --deffile --json: an array with one Definition per stage");
  sub->add_option("--build-arg", o->build_args, "Value for a {{ var }} (KEY=VALUE)");
  sub->add_option("--build-arg-file", o->build_arg_files, "File of KEY=VALUE lines for {{ var }}");
  sub->add_flag("--warn-unused-build-args", o->warn_unused, "Warn instead of failing on unused build args");
  on_run(sub, ctx, [o] {
    if (!o->deffile) return inspect_image(o->target, o->json);
    return not_implemented("inspect --deffile");
  });
}

}  // namespace rbox::cli
