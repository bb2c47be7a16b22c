// Image references and sources: docker://[registry/]repo[:tag][@digest] with Docker Hub
// defaults, oci:DIR[:tag], oci-archive:FILE, docker-archive:FILE[:name:tag], and platforms.
// Pure parsing: nothing here touches the network or the filesystem (except Source::parse
// checking whether an oci: path with a colon names an existing directory).
#pragma once

#include <string>
#include <vector>

namespace rbox::oci {

// A registry image reference after Docker-style normalisation.
struct Reference {
  std::string registry;    // "docker.io", "localhost:5000", "ghcr.io"
  std::string repository;  // "library/busybox"
  std::string tag;         // "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:<64 hex>" or ""

  // Parses "[registry/]repo[:tag][@digest]" (without "docker://"). Throws rbox::Error naming
  // the text and what is wrong.
  static Reference parse(const std::string& text);
  // "registry/repository:tag@digest" (both tag and digest when given).
  std::string str() const;
  // The host to contact: "registry-1.docker.io" for docker.io, else registry.
  std::string api_host() const;
  // What a manifest request names: the digest if given, else the tag.
  std::string manifest_ref() const { return digest.empty() ? tag : digest; }
};

// Normalises a registry name as written by users or in credential files ("https://index.docker.io/v1/",
// "docker.io", "registry-1.docker.io" → "docker.io"; "https://host:5000/x" → "host:5000").
std::string normalize_registry(const std::string& name);

// True for localhost, 127.0.0.0/8 and ::1 (with or without a port).
bool is_loopback_host(const std::string& host_port);

// "sha256:<64 lower-case hex>". Other algorithms are rejected with a clear error by callers.
bool is_sha256_digest(const std::string& digest);

struct Platform {
  std::string os = "linux";
  std::string arch;     // OCI names: amd64 arm64 arm 386 ppc64le s390x riscv64 …
  std::string variant;  // "v8", "v7", "" …

  // linux/<host arch>[/variant] from uname(2) (arm64 → v8; armv7l → arm/v7).
  static Platform host();
  // "os/arch[/variant]" or "arch[/variant]" (os linux). Common aliases: x86_64, aarch64, armhf.
  static Platform parse(const std::string& text);
  std::string str() const;  // "linux/arm64/v8"
  // Does an index entry with these fields satisfy this request? An empty requested variant
  // matches any; arm64's variant v8 is the default so "" and "v8" match each other.
  bool matches(const std::string& os, const std::string& arch, const std::string& variant) const;
};

// Where an image comes from.
struct Source {
  enum class Kind { kDocker, kOciLayout, kOciArchive, kDockerArchive };
  Kind kind = Kind::kDocker;
  Reference ref;     // kDocker
  std::string path;  // the others: the directory or archive file
  std::string tag;   // oci:DIR:tag; docker-archive:FILE:name:tag (the "name:tag" part)

  // "docker://…", "oci:DIR[:tag]", "oci-archive:FILE[:tag]", "docker-archive:FILE[:name:tag]".
  // A bare "repo:tag" without a transport is an error listing the transports.
  static Source parse(const std::string& text);
  std::string str() const;
};

}  // namespace rbox::oci
