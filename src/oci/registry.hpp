// Registry: a Distribution API v2 client for one repository — scheme probing (TLS first; plain
// HTTP only for loopback or --insecure hosts), Basic and Bearer auth with tokens cached per scope,
// manifests verified against their digest, and blob downloads that resume with Range requests
// and retry transient failures with backoff. Thread-safe: workers pass their own http::Client.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "oci/auth.hpp"
#include "oci/http.hpp"
#include "oci/reference.hpp"

namespace rbox::oci {

struct RegistryOptions {
  std::string ca_file;
  bool insecure = false;  // allow plain HTTP to this registry even if it is not loopback
  AuthConfig auth;
  std::optional<Credentials> credentials;  // overrides the lookup (used by `registry login`)
  int max_attempts = 6;                    // per request, for retryable failures
};

// Hosts allowed plain HTTP by $RBOX_INSECURE_REGISTRIES (comma or space separated).
bool insecure_by_env(const std::string& registry);

// Thrown when a blob's bytes do not hash to its digest (or are longer/shorter than declared).
class DigestMismatch : public Error {
 public:
  using Error::Error;
};

class Registry {
 public:
  Registry(Reference ref, RegistryOptions opts);
  ~Registry();

  const Reference& reference() const { return ref_; }

  struct ManifestBody {
    std::string body;
    std::string media_type;  // Content-Type
    std::string digest;      // sha256 of body (checked against the requested digest)
  };
  // Checks the credentials (RegistryOptions::credentials or the stored ones) against the registry:
  // GET /v2/ with Basic auth, or a token request to the Bearer realm. Throws when rejected.
  void check_login(http::Client& client);

  // HEAD /v2/<repo>/manifests/<tag-or-digest>: the Docker-Content-Digest of what the tag names
  // now (an index or a manifest) without downloading it (registries count HEADs separately from
  // pulls for rate limits); "" when the registry does not send the header.
  std::string head_digest(http::Client& client, const std::string& tag_or_digest);

  // GET /v2/<repo>/manifests/<tag-or-digest>.
  ManifestBody get_manifest(http::Client& client, const std::string& tag_or_digest);

  // GET a small blob (config) into memory, verified.
  std::string get_blob(http::Client& client, const std::string& digest, int64_t size, size_t max_size);

  // Downloads a blob into fd (opened read-write on the partial file), resuming from its current
  // length. `progress(done)` reports bytes present so far and returns false to cancel.
  // Verifies size and digest; on mismatch the file is truncated and DigestMismatch thrown.
  void download_blob(http::Client& client, const std::string& digest, int64_t size, int fd,
                     const std::function<bool(int64_t)>& progress);

 private:
  std::string base_url(http::Client& client);
  http::Response send(http::Client& client, http::Request req, const std::string& what);
  std::string auth_header(http::Client& client, const std::string& scope, bool refresh);
  std::optional<Credentials> credentials() const;
  std::string fetch_token(http::Client& client, const Challenge& ch, const std::string& scope);

  Reference ref_;
  RegistryOptions opts_;
  std::mutex mu_;
  std::string scheme_;   // "https" or "http" once probed
  Challenge challenge_;  // from the /v2/ probe (scheme empty: anonymous access works)
  bool probed_ = false;
};

}  // namespace rbox::oci
