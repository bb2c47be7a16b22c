// An OCI image (registry, layout or archive) as a SIF: unpack into a temporary root, add the
// /.singularity.d metadata a build from the same URI adds, pack (temp file + rename). Used by
// `rbox pull IMAGE.sif` and by `rbox exec docker://…`, which keeps the SIF in the cache.
#pragma once

#include <functional>
#include <string>

#include "oci/pull.hpp"

namespace rbox::build {

struct PullSifOptions {
  oci::PullOptions pull;
  bool force = false;      // replace an existing output
  bool fix_perms = false;  // give the owner rwX on all content (unreadable files in the image)
  // Called once the download is done and packing (which cannot stop cooperatively) starts.
  std::function<void()> before_pack;
};

struct PullSifResult {
  std::string source;  // the resolved reference
  std::string arch;
  unsigned long long sif_bytes = 0;
};

PullSifResult pull_to_sif(const std::string& out, const std::string& source, const PullSifOptions& opts);

// `exec docker://…`: the SIF of source in the cache ($RBOX_CACHEDIR/sif/<key>.sif, key from the
// manifest digest and platform), pulled and packed on first use. Concurrent callers share it.
std::string cached_sif(const std::string& source, const oci::PullOptions& opts);

}  // namespace rbox::build
