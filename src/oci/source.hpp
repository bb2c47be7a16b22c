// ImageSource: one interface over the four places an image can come from — a registry
// (docker://, blobs through the verified cache), an OCI layout directory (oci:), an OCI archive
// (oci-archive:) and a `docker save` archive (docker-archive:). Resolving picks the platform and
// reads the manifest and config; fetch_layer hands out verified layer blobs. Reads only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "oci/blob_store.hpp"
#include "oci/manifest.hpp"
#include "oci/reference.hpp"
#include "oci/registry.hpp"

namespace rbox::oci {

struct ResolvedImage {
  std::string source;           // canonical text of the source
  std::string manifest_digest;  // "sha256:…" of the manifest ("" for docker-archive: none exists)
  std::string manifest_json;    // the platform manifest (synthesised for docker-archive)
  Manifest manifest;
  ImageConfig config;
  // docker-archive layers have no compressed digest: they are checked against the config's
  // diff_ids while applied. Other sources' blobs are verified before use.
  bool layers_checked_by_diff_id = false;
};

struct SourceOptions {
  Platform platform = Platform::host();
  bool platform_explicit = false;  // --arch/--platform given: a single-arch mismatch is an error
  RegistryOptions registry;
  BlobStore* store = nullptr;  // required for docker://
};

// Called with bytes done; returns false to cancel.
using ProgressFn = std::function<bool(int64_t)>;

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual ResolvedImage resolve() = 0;
  // The layer's bytes, verified against d.digest and d.size (except docker-archive, see
  // ResolvedImage). Thread-safe; may download. When a download starts and `early` is set, it is
  // called at once with a Blob whose feed follows the download (the layer can be applied while
  // it arrives); the feed then carries the download's outcome and the return value is the
  // same, finished blob.
  virtual Blob fetch_layer(const Descriptor& d, const ProgressFn& progress,
                           const std::function<void(Blob)>& early = {}) = 0;
  // True when fetch_layer may be slow (network), i.e. worth running in parallel with progress.
  virtual bool remote() const { return false; }
};

std::unique_ptr<ImageSource> open_source(const Source& src, const SourceOptions& opts);

}  // namespace rbox::oci
