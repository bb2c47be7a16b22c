// A small HTTP client over one libcurl easy handle (one per thread): requests with captured or
// streamed bodies, header capture, CA bundle selection for static binaries on any distribution.
// It never logs header values (they carry credentials) and never enables curl's verbose output.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/error.hpp"

namespace rbox::oci::http {

// A failure below HTTP: DNS, connect, TLS, reset, stall. `tls` marks handshake failures (used to
// fall back to plain HTTP for loopback/insecure registries); `retryable` marks transient ones.
class TransportError : public Error {
 public:
  TransportError(std::string message, bool tls, bool retryable, bool cert)
      : Error(std::move(message)), tls_(tls), retryable_(retryable), cert_(cert) {}
  bool tls() const { return tls_; }
  bool retryable() const { return retryable_; }
  bool certificate() const { return cert_; }

 private:
  bool tls_, retryable_, cert_;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names, last value wins
  std::string body;
  std::string effective_url;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct Request {
  std::string method = "GET";  // GET or HEAD
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  size_t max_body = 4 << 20;         // larger bodies fail the request
  // Streaming: called with each chunk of a 2xx body instead of collecting it; return false to abort.
  std::function<bool(const char*, size_t)> sink;
  // Called once the final response headers are known (before any body chunk reaches sink);
  // return false to abort (e.g. a 200 where a 206 was needed).
  std::function<bool(const Response&)> on_headers;
  bool follow_redirects = true;
  // Polled about once a second even while no data arrives; return false to abort (Ctrl-C
  // must not wait for a stalled connection's timeout).
  std::function<bool()> keep_going;
};

// The CA bundle to use: --ca-file, $SSL_CERT_FILE, $CURL_CA_BUNDLE, then the first existing file
// of the usual locations (Debian/Ubuntu/Arch/Alpine, Fedora/RHEL, SUSE, BSD-style). "" when none.
std::string find_ca_bundle(const std::string& ca_file);

// Seconds without progress after which a transfer is treated as stalled (default 30,
// $RBOX_HTTP_STALL_SECONDS overrides; tests use a few seconds).
long stall_timeout_seconds();

class Client {
 public:
  explicit Client(std::string ca_file = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Performs the request. HTTP error statuses are returned, not thrown; transport failures throw
  // TransportError; an aborted sink throws Error.
  Response perform(const Request& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "%XX"-escapes a query value.
std::string url_escape(const std::string& s);

}  // namespace rbox::oci::http
