// rbox pull: fetch an image from a registry (or OCI layout/archive) into a SIF or a directory.
#include "cli/app.hpp"

namespace rbox::cli {

void register_pull(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string image, source, dir, arch, platform, authfile, ca_file;
    bool force = false, insecure = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = add_command(app, "pull", "Pull an image from a registry into a SIF file or a directory",
                          {"rbox pull alpine.sif docker://alpine:3.19",
                           "rbox pull --dir rootfs/ docker://localhost:5000/busybox:latest"});
  sub->add_option("image", o->image, "Output SIF file (omit with --dir)");
  sub->add_option("source", o->source, "docker://REF, oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE");
  sub->add_option("--dir", o->dir, "Unpack the root filesystem into this directory instead of a SIF");
  sub->add_option("--arch", o->arch, "Architecture to pull (default: this host's)");
  sub->add_option("--platform", o->platform, "Platform os/arch[/variant] to pull");
  sub->add_option("--authfile", o->authfile, "Docker-format credentials file");
  sub->add_option("--ca-file", o->ca_file, "CA bundle to verify the registry with");
  sub->add_flag("-F,--force", o->force, "Overwrite an existing output");
  sub->add_flag("--insecure,--no-https", o->insecure, "Allow plain HTTP to a non-loopback registry");
  on_run(sub, ctx, [] { return not_implemented("pull"); });
}

}  // namespace rbox::cli
