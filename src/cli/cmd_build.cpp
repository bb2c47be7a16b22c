// rbox build: turn a definition file (or another image) into a SIF or a sandbox directory.
#include "cli/app.hpp"

namespace rbox::cli {

void register_build(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string target, spec, section, compress, authfile, tmpdir;
    std::vector<std::string> build_args, build_arg_files, binds;
    int compress_level = -1;
    bool sandbox = false, force = false, notest = false, update = false, fakeroot = false;
    bool warn_unused = false, ignore_subuid = false, keep_failed = false, fix_perms = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub =
      add_command(app, "build", "Build a SIF image (or a sandbox directory) from a definition file or image",
                  {"rbox build env.sif env.def", "rbox build --sandbox env/ docker://debian:bookworm"});
  sub->add_option("image", o->target, "Output: SIF file, or directory with --sandbox")->required();
  sub->add_option("spec", o->spec, "Definition file, SIF, sandbox directory, or docker://, oci: … reference")
      ->required();
  sub->add_flag("-s,--sandbox", o->sandbox, "Build a writable sandbox directory instead of a SIF");
  sub->add_flag("-F,--force", o->force, "Overwrite an existing image without asking");
  sub->add_flag("-T,--notest", o->notest, "Skip the %test section");
  sub->add_flag("-u,--update", o->update, "Run the definition over an existing sandbox directory");
  sub->add_option("--section", o->section, "Run only these sections (comma list: setup,post,files,…)");
  sub->add_option("--build-arg", o->build_args, "Value for a {{ var }} in the definition (KEY=VALUE)");
  sub->add_option("--build-arg-file", o->build_arg_files, "File of KEY=VALUE lines for {{ var }}");
  sub->add_flag("--warn-unused-build-args", o->warn_unused, "Warn instead of failing on unused build args");
  sub->add_flag("-f,--fakeroot", o->fakeroot,
                "Run %post as root in a user namespace (always on without root)");
  sub->add_flag("--ignore-subuid", o->ignore_subuid,
                "Use the root-mapped namespace even with /etc/subuid ranges");
  sub->add_flag("--fix-perms", o->fix_perms, "Make every file owner-readable and writable in the result");
  sub->add_flag("--keep-failed", o->keep_failed, "Keep the sandbox of a failed stage for debugging");
  sub->add_option("--compress", o->compress, "SquashFS compressor: zstd (default), gzip, xz, lz4");
  sub->add_option("--compress-level", o->compress_level, "Compressor level");
  sub->add_option("-B,--bind", o->binds, "Bind a host path into %post (src[:dst[:ro|rw]])");
  sub->add_option("--authfile", o->authfile, "Docker-format credentials file for registry pulls");
  sub->add_option("--tmpdir", o->tmpdir,
                  "Temporary space for the build (default $RBOX_TMPDIR, $TMPDIR, /tmp)");
  on_run(sub, ctx, [] { return not_implemented("build"); });
}

}  // namespace rbox::cli
