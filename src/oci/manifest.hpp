// OCI / Docker schema 2 manifests, indexes (manifest lists) and image configs: parsing, the
// size limits that keep hostile JSON small, and platform selection. No I/O here.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "oci/reference.hpp"

namespace rbox::oci {

namespace media {
inline constexpr const char* kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kDockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr const char* kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
}  // namespace media

// Largest manifest or index accepted (containerd uses the same bound).
inline constexpr size_t kMaxManifestBytes = 4 << 20;
// Largest image config accepted.
inline constexpr size_t kMaxConfigBytes = 32 << 20;

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:…" (validated)
  int64_t size = -1;   // from the descriptor; blobs must match it exactly
  std::optional<Platform> platform;
  std::map<std::string, std::string> annotations;
};

enum class Compression { kNone, kGzip, kZstd, kXz, kUnknown };
Compression layer_compression(const std::string& media_type);

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

struct Index {
  std::vector<Descriptor> manifests;
};

// What a manifest body is: kManifest (single image) or kIndex (list), from its mediaType
// field, the Content-Type header, or the shape of the JSON.
enum class ManifestKind { kManifest, kIndex };
ManifestKind manifest_kind(const std::string& body, const std::string& content_type);

// Parse; `what` names the source in errors ("docker://x/y:1 manifest").
Manifest parse_manifest(const std::string& body, const std::string& what);
Index parse_index(const std::string& body, const std::string& what);

// The entry matching the platform (skipping attestation entries whose platform is
// unknown/unknown). None → an error listing the platforms the index offers.
const Descriptor& select_platform(const Index& index, const Platform& want, const std::string& what);

// The parts of the image config the build turns into /.singularity.d files, plus the raw JSON
// for the SIF "oci-config.json" object.
struct ImageConfig {
  std::vector<std::string> env;  // "KEY=value"
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::string working_dir;
  std::string user;
  std::map<std::string, std::string> labels;
  std::string created;  // RFC 3339 or ""
  std::string os, architecture, variant;
  std::vector<std::string> diff_ids;  // rootfs.diff_ids, one per layer
  std::string raw_json;
};
ImageConfig parse_config(const std::string& body, const std::string& what);

}  // namespace rbox::oci
