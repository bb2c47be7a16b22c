// libcurl easy-handle wrapper (http.hpp). Only http and https are allowed, also after
// redirects; an https request may not be redirected to plain http. Header values are never
// logged: Authorization and token responses are secrets.
#include "oci/http.hpp"

#include <curl/curl.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::oci::http {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct Transfer {
  const Request* req = nullptr;
  Response* resp = nullptr;
  CURL* curl = nullptr;
  bool headers_delivered = false;
  bool aborted = false;
  std::string abort_reason;
};

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (str::starts_with(line, "HTTP/")) {
    // A new response (after a redirect or a 100 Continue): forget the previous headers.
    t->resp->headers.clear();
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = str::lower(line.substr(0, colon));
    t->resp->headers[name] = str::trim(line.substr(colon + 1));
  }
  return size * n;
}

bool deliver_headers(Transfer* t) {
  if (t->headers_delivered) return true;
  t->headers_delivered = true;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->resp->status);
  if (t->req->on_headers && !t->req->on_headers(*t->resp)) {
    t->aborted = true;
    t->abort_reason = "stopped after the response headers";
    return false;
  }
  return true;
}

size_t on_write(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (!deliver_headers(t)) return 0;
  bool ok_status = t->resp->status >= 200 && t->resp->status < 300;
  if (t->req->sink && ok_status) {
    if (!t->req->sink(data, len)) {
      t->aborted = true;
      t->abort_reason = "the receiver stopped the transfer";
      return 0;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->req->max_body) {
    if (!ok_status) return len;  // error bodies are only for messages: keep the first part
    t->aborted = true;
    t->abort_reason = "the response is larger than " + str::human_bytes(t->req->max_body);
    return 0;
  }
  t->resp->body.append(data, len);
  return len;
}

int on_xferinfo(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->req->keep_going && !t->req->keep_going()) {
    t->aborted = true;
    t->abort_reason = "cancelled";
    return 1;
  }
  return 0;
}

[[noreturn]] void throw_transport(CURLcode rc, const char* errbuf, const std::string& url) {
  std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  bool cert = rc == CURLE_PEER_FAILED_VERIFICATION;
  bool tls = cert || rc == CURLE_SSL_CONNECT_ERROR;
  bool retryable = rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
                   rc == CURLE_PARTIAL_FILE || rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_GOT_NOTHING ||
                   rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM || rc == CURLE_COULDNT_RESOLVE_HOST ||
                   rc == CURLE_SSL_CONNECT_ERROR;
  std::string hint;
  if (cert)
    hint = "; if the registry uses a private CA, pass it with --ca-file";
  else if (rc == CURLE_SSL_CACERT_BADFILE)
    hint = "; pass a readable CA bundle with --ca-file or set SSL_CERT_FILE";
  throw TransportError(url + ": " + detail + hint, tls, retryable, cert);
}

}  // namespace

std::string find_ca_bundle(const std::string& ca_file) {
  if (!ca_file.empty()) {
    if (!is_file(ca_file)) throw Error("CA file " + ca_file + " does not exist or is not a file");
    return ca_file;
  }
  for (const char* var : {"SSL_CERT_FILE", "CURL_CA_BUNDLE"}) {
    const char* v = std::getenv(var);
    if (v && *v && is_file(v)) return v;
  }
  static const char* const kBundles[] = {
      "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu, Arch, Gentoo, Alpine
      "/etc/pki/tls/certs/ca-bundle.crt",                   // Fedora, RHEL, CentOS
      "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL 7+
      "/etc/ssl/ca-bundle.pem",                             // openSUSE, SLES
      "/etc/ssl/cert.pem",                                  // Alpine, macOS-style
      "/etc/pki/tls/cacert.pem",                            // OpenELEC
      "/usr/local/share/certs/ca-root-nss.crt",             // FreeBSD-style
  };
  for (const char* p : kBundles)
    if (is_file(p)) return p;
  return {};
}

long stall_timeout_seconds() {
  const char* v = std::getenv("RBOX_HTTP_STALL_SECONDS");
  if (v && *v) {
    long s = std::strtol(v, nullptr, 10);
    if (s > 0) return s;
  }
  return 30;
}

std::string url_escape(const std::string& s) {
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

struct Client::Impl {
  CURL* curl = nullptr;
  std::string ca_bundle;
};

Client::Client(std::string ca_file) : impl_(std::make_unique<Impl>()) {
  global_init();
  impl_->curl = curl_easy_init();
  if (!impl_->curl) throw Error("cannot initialise libcurl");
  impl_->ca_bundle = find_ca_bundle(ca_file);
}

Client::~Client() {
  if (impl_->curl) curl_easy_cleanup(impl_->curl);
}

Response Client::perform(const Request& req) {
  CURL* c = impl_->curl;
  curl_easy_reset(c);
  Response resp;
  Transfer t;
  t.req = &req;
  t.resp = &resp;
  t.curl = c;
  char errbuf[CURL_ERROR_SIZE] = {0};
  bool https = str::starts_with(req.url, "https://");
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_timeout_seconds());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "rbox/" RBOX_VERSION);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (!impl_->ca_bundle.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, impl_->ca_bundle.c_str());
  if (req.method == "HEAD") curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (req.keep_going) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  }
  struct curl_slist* hdrs = nullptr;
  for (const auto& h : req.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  if (hdrs) curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  CURLcode rc = curl_easy_perform(c);
  if (hdrs) curl_slist_free_all(hdrs);
  if ((rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK) && t.aborted)
    throw Error(req.url + ": " + t.abort_reason);
  if (rc != CURLE_OK) throw_transport(rc, errbuf, req.url);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  char* eff = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff) resp.effective_url = eff;
  if (!t.headers_delivered && !deliver_headers(&t)) throw Error(req.url + ": " + t.abort_reason);
  log::debug(req.method + " " + req.url + " -> " + std::to_string(resp.status));
  return resp;
}

}  // namespace rbox::oci::http
