// The public entry points of oci/: get an image from any source into a root-filesystem
// directory — blobs fetched in parallel (verified, cached), layers applied in order as soon as
// each is ready. Used by `rbox pull` and by the build's docker/oci/oci-archive/docker-archive
// bootstrap agents. Never writes outside the target directory and the blob cache.
#pragma once

#include <string>

#include "oci/layer_apply.hpp"
#include "oci/manifest.hpp"
#include "oci/reference.hpp"

namespace rbox::oci {

struct PullOptions {
  Platform platform = Platform::host();
  bool platform_explicit = false;  // from --arch/--platform
  std::string authfile;            // --authfile
  std::string ca_file;             // --ca-file
  bool insecure = false;           // --insecure: plain HTTP allowed for this registry
  std::string cache_dir;           // "" → BlobStore::default_root()
  int jobs = 4;                    // parallel blob downloads
  bool progress = true;            // bars on a TTY, a line per layer otherwise (unless --quiet)

  // Sets platform/platform_explicit from --arch and --platform values (either may be "").
  void set_platform(const std::string& arch, const std::string& platform);
};

struct PulledImage {
  std::string source;           // canonical source text
  std::string manifest_digest;  // "" for docker-archive
  std::string manifest_json;
  ImageConfig config;  // Env, Entrypoint, Cmd, WorkingDir, Labels, User, raw_json
  ApplyStats stats;
  size_t layers = 0;
};

// What a source resolves to for the requested platform, without unpacking anything.
struct ImageInfo {
  std::string source;
  std::string manifest_digest;
  std::string manifest_json;
  ImageConfig config;
  size_t layers = 0;
  uint64_t compressed_bytes = 0;  // sum of the layer blob sizes
};

// Resolves source (manifest, platform, config). The result is kept for an unpack_image() of the
// same source and options in this process, which then does not fetch the manifest again.
ImageInfo inspect_image(const std::string& source, const PullOptions& opts);

// A cache key for what the source names now: for docker:// the digest from a HEAD request (the
// index or manifest the tag points at; no manifest download), else the manifest digest.
// Combine with the platform when one index serves several architectures.
std::string image_digest(const std::string& source, const PullOptions& opts);

// Applies the image named by `source` ("docker://…", "oci:DIR[:tag]", "oci-archive:FILE",
// "docker-archive:FILE") into rootfs, an existing empty directory the caller owns (e.g. a build's
// temporary root). On error the directory holds a partial tree: the caller discards it.
PulledImage unpack_image(const std::string& source, const std::string& rootfs, const PullOptions& opts);

// `rbox pull --dir DEST`: unpacks into a temporary directory next to dest and renames it into
// place (atomically exchanging with an existing dest when force is set). dest must not exist
// unless force.
PulledImage pull_to_dir(const std::string& source, const std::string& dest, const PullOptions& opts,
                        bool force);

}  // namespace rbox::oci
