// rbox build: turn a definition file (or another image) into a SIF or a sandbox directory.
// Definition files and docker://, oci:, oci-archive:, docker-archive: sources go to
// build::run_build. Conversions handled here: sandbox directory → SIF, SIF/SquashFS → sandbox, SIF/SquashFS →
// SIF (repacked, e.g. to change the compressor). Output appears only when complete (temp + rename); an
// existing target is replaced only with --force.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>

#include "build/builder.hpp"
#include "cli/app.hpp"
#include "image/image.hpp"
#include "image/sif.hpp"
#include "image/sif_pack.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::cli {
namespace {

struct Opts {
  std::string target, spec, section, compress, authfile, tmpdir, block_size;
  std::vector<std::string> build_args, build_arg_files, binds;
  int compress_level = -1;
  bool sandbox = false, force = false, notest = false, update = false, fakeroot = false;
  bool warn_unused = false, ignore_subuid = false, keep_failed = false, fix_perms = false;
};

uint32_t parse_block_size(const std::string& s) {
  char* end = nullptr;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  std::string unit = str::lower(end ? end : "");
  if (unit == "k" || unit == "kib" || unit == "kb")
    v <<= 10;
  else if (unit == "m" || unit == "mib" || unit == "mb")
    v <<= 20;
  else if (!unit.empty() || end == s.c_str())
    throw Error("--block-size '" + s + "' is not a size (e.g. 64K, 131072, 1M)", 2);
  if (v > 0xFFFFFFFFull) throw Error("--block-size '" + s + "' is too large", 2);
  return static_cast<uint32_t>(v);
}

image::SquashOptions squash_options(const Opts& o) {
  image::SquashOptions s;
  if (!o.compress.empty()) s.compressor = str::lower(o.compress);
  s.level = o.compress_level;
  if (!o.block_size.empty()) s.block_size = parse_block_size(o.block_size);
  // Rootless, the tree's owners are the invoking user (or subordinate ids): store root, as
  // Apptainer's -all-root. As real root the tree's owners are meaningful: keep them.
  s.owners =
      ::geteuid() == 0 ? image::SquashOptions::Owners::kPreserve : image::SquashOptions::Owners::kAllRoot;
  s.source_date_epoch = image::source_date_epoch_from_env();
  try {
    image::check_squash_options(s);
  } catch (const Error& e) {
    throw Error(e.message(), 2);  // a bad option value: usage error
  }
  return s;
}

bool has_scheme(const std::string& spec) {
  static const char* kSchemes[] = {"docker://",    "docker-daemon:", "docker-archive:", "oci:",
                                   "oci-archive:", "library://",     "oras://",         "shub://",
                                   "http://",      "https://"};
  for (const char* s : kSchemes) {
    if (str::starts_with(spec, s)) return true;
  }
  return false;
}

void refuse_existing(const Opts& o) {
  if (fs::exists(o.target) && !o.force)
    throw Error(o.target + " already exists; add --force to replace it", 2);
}

// The DefFile object for an image built from an existing tree: the definition it was built from
// when it carries one, else Apptainer's synthetic "localimage" header.
std::string deffile_for(const std::string& tree, const std::string& spec, const std::string& from_sif = {}) {
  if (!from_sif.empty()) return from_sif;
  auto def = image::read_from_dir(tree)("/.singularity.d/Singularity");
  if (def && !def->empty()) return *def;
  return "bootstrap: localimage\nfrom: " + spec + "\n";
}

std::string sif_deffile(const image::Location& loc) {
  if (loc.format != image::Format::kSif) return {};
  auto s = image::sif::Sif::open(loc.path);
  for (const auto& d : s.descriptors()) {
    if (d.type() == image::sif::DataType::kDeffile) return s.read(d, 16 << 20);
  }
  return {};
}

void write_sif(const Opts& o, const std::string& tree, const std::string& deffile) {
  image::PackSifOptions p;
  p.squash = squash_options(o);
  p.deffile = deffile;
  log::info("Packing " + tree + " into " + o.target + " (" + p.squash.compressor +
            (p.squash.compressor.rfind("lz4", 0) == 0 ? "" : " level " + std::to_string(p.squash.level)) +
            ", " + std::to_string(p.squash.block_size / 1024) + " KiB blocks)");
  auto r = image::pack_sif(tree, o.target, p);
  log::info("Wrote " + o.target + ": " + str::human_bytes(r.sif_bytes) + " (" + r.arch + ", " +
            std::to_string(r.squash.inodes) + " inodes, " + str::human_bytes(r.squash.input_bytes) +
            " of file data)");
}

void write_sandbox(const Opts& o, const image::Location& loc) {
  const std::string target = fs::absolute(o.target);
  fs::TempDir tmp("." + fs::basename(target) + ".rbox-", fs::dirname(target));
  log::info("Extracting " + loc.path + " into " + o.target);
  image::ExtractOptions x;
  x.preserve_owners = ::geteuid() == 0;  // as real root keep the image's owners, like Apptainer
  auto st = image::extract(loc, tmp.path(), x);
  if (fs::exists(target)) {
    // Move the old tree aside first: rename(2) cannot replace a non-empty directory.
    fs::TempDir old("." + fs::basename(target) + ".old-", fs::dirname(target));
    const std::string aside = old.path() + "/tree";
    if (::rename(target.c_str(), aside.c_str()) != 0) throw sys_error("move aside", target);
    if (::rename(tmp.path().c_str(), target.c_str()) != 0) throw sys_error("rename to", target);
    tmp.keep();
  } else {
    if (::rename(tmp.path().c_str(), target.c_str()) != 0) throw sys_error("rename to", target);
    tmp.keep();
  }
  log::info("Wrote " + o.target + ": " + std::to_string(st.files) + " files, " + std::to_string(st.dirs) +
            " directories, " + str::human_bytes(st.bytes));
}

// Definition files and registry/archive sources: the full build (build/builder.hpp).
int run_definition_build(const Opts& o, std::optional<std::string> def_text) {
  build::BuildOptions b;
  b.target = o.target;
  b.spec = o.spec;
  b.def_text = std::move(def_text);
  b.sandbox = o.sandbox;
  b.force = o.force;
  b.notest = o.notest;
  b.update = o.update;
  b.ignore_subuid = o.ignore_subuid;
  b.keep_failed = o.keep_failed;
  b.fix_perms = o.fix_perms;
  b.warn_unused_build_args = o.warn_unused;
  b.section = o.section;
  b.build_args = o.build_args;
  b.build_arg_files = o.build_arg_files;
  b.binds = o.binds;
  b.authfile = o.authfile;
  b.tmpdir = o.tmpdir;
  b.squash = squash_options(o);
  return build::run_build(b);
}

int run_build(const Opts& o) {
  if (has_scheme(o.spec)) {
    if (auto def = build::definition_for_uri(o.spec)) return run_definition_build(o, std::move(def));
    return not_implemented("build from " + o.spec.substr(0, o.spec.find(':')) + " sources");
  }
  const bool spec_is_dir = fs::is_dir(o.spec);
  std::optional<image::Location> loc;
  if (!spec_is_dir) {
    try {
      loc = image::locate(o.spec);
    } catch (const Error& e) {
      // Not an image: a definition file. A damaged image should still say what is wrong with it.
      std::string head(4096, '\0');
      {
        UniqueFd fd(::open(o.spec.c_str(), O_RDONLY | O_CLOEXEC));
        ssize_t n = fd ? ::pread(fd.get(), head.data(), head.size(), 0) : -1;
        head.resize(n > 0 ? static_cast<size_t>(n) : 0);
      }
      // Definition files are text: binary bytes mean a damaged image (or no image at all).
      if (image::sif::has_sif_magic(head) || str::starts_with(head, "hsqs") ||
          head.find('\0') != std::string::npos)
        throw;
      if (!fs::exists(o.spec)) throw;
      return run_definition_build(o, std::nullopt);
    }
  }
  refuse_existing(o);
  if (o.sandbox) {
    if (spec_is_dir) throw Error(o.spec + " is already a sandbox directory; copy it with cp -a", 2);
    write_sandbox(o, *loc);
    return 0;
  }
  if (spec_is_dir) {
    write_sif(o, o.spec, deffile_for(o.spec, o.spec));
    return 0;
  }
  // SIF/SquashFS → SIF: unpack into a temporary tree, repack with this build's options.
  fs::TempDir tmp("rbox-build-", o.tmpdir.empty() ? fs::temp_root() : o.tmpdir);
  const std::string tree = tmp.path() + "/rootfs";
  image::extract(*loc, tree);
  write_sif(o, tree, deffile_for(tree, o.spec, sif_deffile(*loc)));
  return 0;
}

}  // namespace

void register_build(CLI::App& app, Context& ctx) {
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
  sub->add_option("--compress", o->compress, "SquashFS compressor: zstd (default), gzip, xz, lz4, lz4hc");
  sub->add_option("--compress-level", o->compress_level,
                  "Compressor level (zstd 1-22, default 3; gzip 1-9; xz 0-9)");
  sub->add_option("--block-size", o->block_size, "SquashFS block size, 4K to 1M (default 64K)");
  sub->add_option("-B,--bind", o->binds, "Bind a host path into %post (src[:dst[:ro|rw]])");
  sub->add_option("--authfile", o->authfile, "Docker-format credentials file for registry pulls");
  sub->add_option("--tmpdir", o->tmpdir,
                  "Temporary space for the build (default $RBOX_TMPDIR, $TMPDIR, /tmp)");
  on_run(sub, ctx, [o] { return run_build(*o); });
}

}  // namespace rbox::cli
