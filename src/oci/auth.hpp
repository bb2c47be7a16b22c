// Registry authentication pieces: WWW-Authenticate challenge parsing, credentials from the
// environment and docker-format auth files, and writing those files for `rbox registry login`.
// Credentials must never reach a log line, an error message or --debug output.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rbox::oci {

// One challenge of a WWW-Authenticate header: scheme lower-cased ("basic", "bearer"), parameter
// names lower-cased, values unquoted.
struct Challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

// Parses a WWW-Authenticate header value (RFC 7235: one or more challenges, quoted-string
// parameters with backslash escapes). Malformed parts are skipped, never thrown.
std::vector<Challenge> parse_www_authenticate(const std::string& header);

struct Credentials {
  std::string username;
  std::string password;
};

// Where credentials are looked up, in order: RBOX_DOCKER_USERNAME/RBOX_DOCKER_PASSWORD, the
// --authfile, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.docker/config.json.
struct AuthConfig {
  std::string authfile;  // --authfile; "" = none
  // The auth files to read, in order, after the environment variables.
  std::vector<std::string> files() const;
  // The file `rbox registry login/logout` writes: --authfile, $REGISTRY_AUTH_FILE, else
  // ~/.docker/config.json.
  std::string file_to_write() const;
  // Credentials for a registry ("docker.io", "localhost:5000"), or nullopt (anonymous).
  std::optional<Credentials> lookup(const std::string& registry) const;
};

// Credentials for registry in one docker-format file ({"auths": {KEY: {"auth": base64}}}),
// matching keys after normalize_registry(). Missing or unreadable file → nullopt; a file that
// is not valid JSON → rbox::Error naming the file.
std::optional<Credentials> read_auth_file(const std::string& path, const std::string& registry);

// Adds or replaces the entry for registry, keeping every other key of the file; the file is
// written atomically with mode 0600 (its directory created 0700).
void store_credentials(const std::string& path, const std::string& registry, const Credentials& creds);
// Removes the entries for registry; returns false when there was none.
bool remove_credentials(const std::string& path, const std::string& registry);

}  // namespace rbox::oci
