// rbox pull: fetch an image from a registry (or OCI layout/archive) into a SIF or a directory.
// The work is oci::pull_to_dir (--dir) and build::pull_to_sif (SIF);
// this file maps options, keeps outputs atomic and prints the result.
#include <signal.h>
#include <unistd.h>

#include <cstdlib>

#include "build/pull_sif.hpp"
#include "cli/app.hpp"
#include "oci/interrupt.hpp"
#include "oci/pull.hpp"
#include "oci/reference.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::cli {
namespace {

bool looks_like_source(const std::string& s) {
  for (const char* p : {"docker://", "oci:", "oci-archive:", "docker-archive:"})
    if (str::starts_with(s, p)) return true;
  return false;
}

// NAME_TAG.sif from the last repository component and the tag (Apptainer's default pull name).
std::string default_sif_name(const std::string& source) {
  auto src = oci::Source::parse(source);
  if (src.kind == oci::Source::Kind::kDocker) {
    std::string name = fs::basename(src.ref.repository);
    return name + "_" + (src.ref.tag.empty() ? "latest" : src.ref.tag) + ".sif";
  }
  std::string base = fs::basename(src.path);
  if (auto dot = base.find('.'); dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  return base + (src.tag.empty() ? "" : "_" + src.tag) + ".sif";
}

void handle_interrupts(bool on);

// Ctrl-C (and TERM/HUP) stop the pull cleanly: no temporary directory or file is left behind.
// A second signal terminates at once (the default action).
volatile sig_atomic_t g_signalled = 0;

void handle_interrupts(bool on) {
  struct sigaction sa {};
  sa.sa_handler = on ? +[](int sig) {
    if (g_signalled) {
      ::signal(sig, SIG_DFL);
      ::raise(sig);
    }
    g_signalled = 1;
    oci::interrupt_pulls(sig);
  }
                     : SIG_DFL;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

}  // namespace

void register_pull(CLI::App& app, Context& ctx) {
  struct Opts {
    std::string image, source, dir, arch, platform, authfile, ca_file;
    bool force = false, insecure = false, fix_perms = false;
    int jobs = 4;
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
  sub->add_option("-j,--jobs", o->jobs, "Blobs to download at the same time (default 4)")
      ->check(CLI::Range(1, 32));
  sub->add_flag("-F,--force", o->force, "Overwrite an existing output");
  sub->add_flag("--insecure,--no-https", o->insecure, "Allow plain HTTP to a non-loopback registry");
  sub->add_flag("--fix-perms", o->fix_perms,
                "Give the owner rwX on all image content (needed for unreadable files)");
  on_run(sub, ctx, [o] {
    // With --dir the single positional is the source: `rbox pull --dir d docker://x`.
    if (!o->dir.empty() && o->source.empty() && !o->image.empty()) std::swap(o->image, o->source);
    // `rbox pull docker://alpine:3.19` writes alpine_3.19.sif, as Apptainer does.
    if (o->dir.empty() && o->source.empty() && looks_like_source(o->image)) {
      o->source = o->image;
      o->image = default_sif_name(o->source);
    }
    if (o->source.empty()) {
      log::error("pull needs a source, e.g. rbox pull --dir rootfs/ docker://busybox:latest");
      return exit_code::kUsage;
    }
    handle_interrupts(true);
    oci::PullOptions po;
    po.set_platform(o->arch, o->platform);
    po.authfile = o->authfile;
    po.ca_file = o->ca_file;
    po.insecure = o->insecure;
    po.jobs = o->jobs;
    if (!o->dir.empty()) {
      if (!o->image.empty()) {
        log::error("give either an output SIF or --dir, not both");
        return exit_code::kUsage;
      }
      auto img = oci::pull_to_dir(o->source, o->dir, po, o->force);
      log::info("unpacked " + img.source + " into " + o->dir + " (" + std::to_string(img.layers) +
                " layer(s), " + std::to_string(img.stats.entries) + " entries, " +
                str::human_bytes(img.stats.bytes) + ")");
      return exit_code::kOk;
    }
    if (o->image.empty()) {
      log::error("pull needs an output: rbox pull IMAGE.sif SOURCE, or rbox pull --dir DIR SOURCE");
      return exit_code::kUsage;
    }
    build::PullSifOptions so;
    so.pull = po;
    so.force = o->force;
    so.fix_perms = o->fix_perms;
    // Packing cannot be interrupted cooperatively: Ctrl-C terminates as usual from there on.
    so.before_pack = [] { handle_interrupts(false); };
    auto r = build::pull_to_sif(o->image, o->source, so);
    log::info("wrote " + o->image + " from " + r.source + " (" + str::human_bytes(r.sif_bytes) + ", " +
              r.arch + ")");
    return exit_code::kOk;
  });
}

}  // namespace rbox::cli
