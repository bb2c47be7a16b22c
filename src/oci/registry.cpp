// Distribution API v2 client (registry.hpp). Secrets (passwords, tokens, Authorization values)
// live only in request headers; messages name the registry, the repository and the status.
#include "oci/registry.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "oci/interrupt.hpp"
#include "oci/manifest.hpp"
#include "util/base64.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct CachedToken {
  std::string token;
  Clock::time_point expires;
};

// Tokens for the whole process, keyed by realm, service, scope and user: a build that pulls
// several images from one registry asks the token server once per scope and lifetime.
std::mutex g_token_mu;
std::map<std::string, CachedToken> g_tokens;

// Sleeps before retry `attempt` (0.5 s doubling to 8 s, ±20 %, or the server's Retry-After up
// to 30 s), in slices so keep_going can cut it short.
void backoff_sleep(int attempt, const http::Response* resp, const std::function<bool()>& keep_going = {}) {
  double secs = 0.25 * (1 << std::min(attempt, 5));
  if (resp) {
    std::string ra = resp->header("retry-after");
    if (!ra.empty() && std::isdigit(static_cast<unsigned char>(ra[0])))
      secs = std::min(30.0, std::max(secs, std::strtod(ra.c_str(), nullptr)));
  }
  static thread_local std::mt19937 rng{std::random_device{}()};
  secs *= std::uniform_real_distribution<double>(0.8, 1.2)(rng);
  auto until = Clock::now() + std::chrono::milliseconds(static_cast<int>(secs * 1000));
  while (Clock::now() < until) {
    check_interrupted();  // Ctrl-C during a back-off ends the pull now, not after the retries
    if (keep_going && !keep_going()) return;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(100), until - Clock::now()));
  }
}

bool retryable_status(long s) {
  return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

// "CODE: message" from a registry error body, or the status line.
std::string describe_error(const http::Response& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty()) {
    const auto& e = j["errors"][0];
    std::string code = e.value("code", ""),
                msg = e.is_object() && e.contains("message") && e["message"].is_string()
                          ? e["message"].get<std::string>()
                          : "";
    return "HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) +
           (msg.empty() ? "" : ": " + msg);
  }
  return "HTTP " + std::to_string(r.status);
}

const char* kManifestAccept =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

}  // namespace

bool insecure_by_env(const std::string& registry) {
  const char* v = std::getenv("RBOX_INSECURE_REGISTRIES");
  if (!v) return false;
  std::string want = normalize_registry(registry);
  std::string list = v;
  for (char& c : list)
    if (c == ' ' || c == '\t') c = ',';
  for (const auto& h : str::split(list, ','))
    if (!h.empty() && normalize_registry(h) == want) return true;
  return false;
}

Registry::Registry(Reference ref, RegistryOptions opts) : ref_(std::move(ref)), opts_(std::move(opts)) {}
Registry::~Registry() = default;

std::optional<Credentials> Registry::credentials() const {
  if (opts_.credentials) return opts_.credentials;
  return opts_.auth.lookup(ref_.registry);
}

void Registry::check_login(http::Client& client) {
  std::string base = base_url(client);
  Challenge ch;
  {
    std::lock_guard lock(mu_);
    ch = challenge_;
  }
  auto creds = credentials();
  if (!creds) throw Error("internal: check_login without credentials");
  if (ch.scheme.empty()) {
    log::info("registry " + ref_.registry + " allows anonymous access; the credentials were not checked");
    return;
  }
  if (ch.scheme == "bearer") {
    fetch_token(client, ch, "");  // throws when the token server rejects the credentials
    return;
  }
  http::Request req;
  req.url = base + "/v2/";
  req.max_body = 64 << 10;
  req.headers.push_back("Authorization: Basic " + base64::encode(creds->username + ":" + creds->password));
  http::Response r = client.perform(req);
  if (r.status == 401 || r.status == 403)
    throw Error("registry " + ref_.registry + " rejected the user name or password (" + describe_error(r) +
                ")");
  if (r.status != 200) throw Error("registry " + ref_.registry + " answered " + describe_error(r));
}

std::string Registry::base_url(http::Client& client) {
  std::lock_guard lock(mu_);
  std::string host = ref_.api_host();
  if (probed_) return scheme_ + "://" + host;
  bool allow_http = is_loopback_host(host) || opts_.insecure || insecure_by_env(ref_.registry);
  auto probe = [&](const std::string& scheme) {
    http::Request req;
    req.url = scheme + "://" + host + "/v2/";
    req.max_body = 64 << 10;
    for (int attempt = 1;; ++attempt) {
      http::Response r;
      try {
        r = client.perform(req);
      } catch (const http::TransportError& e) {
        if (e.tls() || !e.retryable() || attempt >= opts_.max_attempts) throw;
        backoff_sleep(attempt, nullptr);
        continue;
      }
      if (retryable_status(r.status) && attempt < opts_.max_attempts) {
        backoff_sleep(attempt, &r);
        continue;
      }
      return r;
    }
  };
  http::Response r;
  try {
    r = probe("https");
    scheme_ = "https";
  } catch (const http::TransportError& e) {
    if (!e.tls() || e.certificate() || !allow_http) {
      std::string hint = e.tls() && !e.certificate() && !allow_http
                             ? " (if " + ref_.registry +
                                   " serves plain HTTP, pass --insecure or list it in "
                                   "RBOX_INSECURE_REGISTRIES)"
                             : "";
      throw Error("cannot reach registry " + ref_.registry + ": " + e.message() + hint);
    }
    log::verbose("registry " + ref_.registry +
                 " does not speak TLS; using plain HTTP (loopback or --insecure)");
    try {
      r = probe("http");
    } catch (const http::TransportError& e2) {
      throw Error("cannot reach registry " + ref_.registry + ": " + e2.message());
    }
    scheme_ = "http";
  }
  if (r.status == 401) {
    for (auto& ch : parse_www_authenticate(r.header("www-authenticate")))
      if (ch.scheme == "bearer" || (ch.scheme == "basic" && challenge_.scheme.empty())) challenge_ = ch;
    if (challenge_.scheme.empty())
      throw Error("registry " + ref_.registry + " requires authentication with an unsupported scheme");
  } else if (r.status != 200) {
    throw Error("registry " + ref_.registry + " does not answer the v2 API at " + scheme_ + "://" + host +
                "/v2/ (" + describe_error(r) + ")");
  }
  probed_ = true;
  return scheme_ + "://" + host;
}

std::string Registry::fetch_token(http::Client& client, const Challenge& ch, const std::string& scope) {
  std::string realm = ch.param("realm");
  if (realm.empty()) throw Error("registry " + ref_.registry + " sent a Bearer challenge without a realm");
  if (!str::starts_with(realm, "https://") && !str::starts_with(realm, "http://"))
    throw Error("registry " + ref_.registry + " names a token server that is not http(s)");
  auto creds = credentials();
  std::string user = creds ? creds->username : "";
  std::string key = realm + "\n" + ch.param("service") + "\n" + scope + "\n" + Sha256::hex(user);
  {
    std::lock_guard lock(g_token_mu);
    auto it = g_tokens.find(key);
    if (it != g_tokens.end() && Clock::now() < it->second.expires) return it->second.token;
  }
  std::string url = realm + (realm.find('?') == std::string::npos ? "?" : "&");
  std::vector<std::string> q;
  if (!ch.param("service").empty()) q.push_back("service=" + http::url_escape(ch.param("service")));
  if (!scope.empty()) q.push_back("scope=" + http::url_escape(scope));
  url += str::join(q, "&");
  if (str::starts_with(realm, "http://") && !is_loopback_host(ref_.api_host()) && !opts_.insecure &&
      !insecure_by_env(ref_.registry))
    throw Error("registry " + ref_.registry + " names a plain-HTTP token server; refusing (use --insecure)");
  http::Request req;
  req.url = url;
  req.max_body = 1 << 20;
  if (creds)
    req.headers.push_back("Authorization: Basic " + base64::encode(creds->username + ":" + creds->password));
  http::Response r;
  for (int attempt = 1;; ++attempt) {
    try {
      r = client.perform(req);
    } catch (const http::TransportError& e) {
      if (!e.retryable() || attempt >= opts_.max_attempts)
        throw Error("cannot get a token for " + ref_.registry + ": " + e.message());
      backoff_sleep(attempt, nullptr);
      continue;
    }
    if (retryable_status(r.status) && attempt < opts_.max_attempts) {
      backoff_sleep(attempt, &r);
      continue;
    }
    break;
  }
  if (r.status == 401 || r.status == 403)
    throw Error("the token server of " + ref_.registry + " rejected " +
                (creds ? std::string("the stored credentials") : std::string("anonymous access")) + " (" +
                describe_error(r) +
                "); log in with 'rbox registry login' or set RBOX_DOCKER_USERNAME/RBOX_DOCKER_PASSWORD");
  if (r.status != 200) throw Error("the token server of " + ref_.registry + " answered " + describe_error(r));
  json j = json::parse(r.body, nullptr, false);
  std::string token;
  if (j.is_object()) {
    if (j.contains("token") && j["token"].is_string())
      token = j["token"];
    else if (j.contains("access_token") && j["access_token"].is_string())
      token = j["access_token"];
  }
  if (token.empty()) throw Error("the token server of " + ref_.registry + " returned no token");
  long lifetime = 60;  // the distribution spec's default when expires_in is absent
  if (j.contains("expires_in") && j["expires_in"].is_number())
    lifetime = std::max<long>(j["expires_in"].get<long>(), 1);
  // Refresh a little early so a token does not expire between check and use.
  auto expires = Clock::now() + std::chrono::seconds(lifetime > 20 ? lifetime - 10 : lifetime / 2);
  std::lock_guard lock(g_token_mu);
  g_tokens[key] = {token, expires};
  return token;
}

std::string Registry::auth_header(http::Client& client, const std::string& scope, bool refresh) {
  Challenge ch;
  {
    std::lock_guard lock(mu_);
    ch = challenge_;
  }
  if (ch.scheme == "basic") {
    auto creds = credentials();
    if (!creds) return {};
    return "Authorization: Basic " + base64::encode(creds->username + ":" + creds->password);
  }
  if (ch.scheme == "bearer") {
    if (refresh) {
      std::lock_guard lock(g_token_mu);
      for (auto it = g_tokens.begin(); it != g_tokens.end();)
        it = it->first.find("\n" + scope + "\n") != std::string::npos ? g_tokens.erase(it) : std::next(it);
    }
    return "Authorization: Bearer " + fetch_token(client, ch, scope);
  }
  return {};
}

http::Response Registry::send(http::Client& client, http::Request req, const std::string& what) {
  std::string scope = "repository:" + ref_.repository + ":pull";
  std::vector<std::string> base_headers = req.headers;
  bool refreshed = false;
  for (int attempt = 1;; ++attempt) {
    req.headers = base_headers;
    if (std::string a = auth_header(client, scope, false); !a.empty()) req.headers.push_back(a);
    http::Response r;
    try {
      r = client.perform(req);
    } catch (const http::TransportError& e) {
      if (!e.retryable() || attempt >= opts_.max_attempts) throw Error(what + ": " + e.message());
      log::verbose(what + ": " + e.message() + "; retrying");
      backoff_sleep(attempt, nullptr);
      continue;
    }
    if (r.status == 401 && !refreshed) {
      refreshed = true;
      // A Bearer challenge on the request itself may name the scope the registry wants.
      for (auto& ch : parse_www_authenticate(r.header("www-authenticate"))) {
        if (ch.scheme != "bearer" && ch.scheme != "basic") continue;
        std::lock_guard lock(mu_);
        challenge_ = ch;
        if (ch.scheme == "bearer" && !ch.param("scope").empty()) scope = ch.param("scope");
        break;
      }
      auth_header(client, scope, true);
      --attempt;
      continue;
    }
    if (retryable_status(r.status) && attempt < opts_.max_attempts) {
      log::verbose(what + ": " + describe_error(r) + "; retrying");
      backoff_sleep(attempt, &r);
      continue;
    }
    if (r.status == 401) {
      bool have = credentials().has_value();
      throw Error(what + ": authentication failed (" + describe_error(r) + "); " +
                  (have ? "check the stored credentials for " + ref_.registry
                        : "log in with 'rbox registry login docker://" + ref_.registry + "'"));
    }
    if (r.status == 403) throw Error(what + ": access denied (" + describe_error(r) + ")");
    if (r.status == 429)
      throw Error(what + ": the registry's rate limit was hit (HTTP 429); try again later or log in");
    return r;
  }
}

Registry::ManifestBody Registry::get_manifest(http::Client& client, const std::string& tag_or_digest) {
  std::string what = "docker://" + ref_.registry + "/" + ref_.repository + ":" + tag_or_digest;
  if (is_sha256_digest(tag_or_digest))
    what = "docker://" + ref_.registry + "/" + ref_.repository + "@" + tag_or_digest;
  http::Request req;
  req.url = base_url(client) + "/v2/" + ref_.repository + "/manifests/" + tag_or_digest;
  req.headers.push_back(kManifestAccept);
  req.max_body = kMaxManifestBytes;
  http::Response r = send(client, req, what);
  if (r.status == 404)
    throw Error(what + ": image not found (" + describe_error(r) + "); check the repository name and tag");
  if (r.status != 200) throw Error(what + ": cannot get the manifest (" + describe_error(r) + ")");
  ManifestBody m;
  m.body = r.body;
  m.media_type = r.header("content-type");
  m.digest = "sha256:" + Sha256::hex(r.body);
  if (is_sha256_digest(tag_or_digest) && m.digest != tag_or_digest)
    throw DigestMismatch(what + ": the manifest the registry sent hashes to " + m.digest +
                         ", not to the requested digest");
  return m;
}

std::string Registry::head_digest(http::Client& client, const std::string& tag_or_digest) {
  std::string what = "docker://" + ref_.registry + "/" + ref_.repository + ":" + tag_or_digest;
  http::Request req;
  req.method = "HEAD";
  req.url = base_url(client) + "/v2/" + ref_.repository + "/manifests/" + tag_or_digest;
  req.headers.push_back(kManifestAccept);
  http::Response r = send(client, req, what);
  if (r.status == 404) throw Error(what + ": image not found; check the repository name and tag");
  if (r.status != 200) throw Error(what + ": cannot get the manifest digest (" + describe_error(r) + ")");
  std::string d = r.header("docker-content-digest");
  return is_sha256_digest(d) ? d : std::string();
}

std::string Registry::get_blob(http::Client& client, const std::string& digest, int64_t size,
                               size_t max_size) {
  std::string what = "docker://" + ref_.registry + "/" + ref_.repository + " blob " + digest;
  if (size > static_cast<int64_t>(max_size))
    throw Error(what + " is larger than " + str::human_bytes(max_size));
  http::Request req;
  req.url = base_url(client) + "/v2/" + ref_.repository + "/blobs/" + digest;
  req.max_body = max_size;
  http::Response r = send(client, req, what);
  if (r.status != 200) throw Error(what + ": " + describe_error(r));
  if ((size >= 0 && static_cast<int64_t>(r.body.size()) != size) || "sha256:" + Sha256::hex(r.body) != digest)
    throw DigestMismatch(what + ": the content does not match its digest and size");
  return r.body;
}

void Registry::download_blob(http::Client& client, const std::string& digest, int64_t size, int fd,
                             const std::function<bool(int64_t)>& progress) {
  std::string what =
      "docker://" + ref_.registry + "/" + ref_.repository + " blob " + digest.substr(0, 19) + "…";
  std::string url = base_url(client) + "/v2/" + ref_.repository + "/blobs/" + digest;
  auto hasher = std::make_unique<Sha256>();
  struct stat st;
  if (::fstat(fd, &st) != 0) throw sys_error("stat partial download of", digest);
  int64_t have = st.st_size;
  auto restart = [&] {
    if (::ftruncate(fd, 0) != 0) throw sys_error("truncate partial download of", digest);
    hasher = std::make_unique<Sha256>();
    have = 0;
  };
  if (have > size) restart();
  if (have > 0) {
    // Resume: hash what an earlier attempt (maybe another process run) left behind.
    std::string buf(1 << 20, '\0');
    for (int64_t off = 0; off < have;) {
      ssize_t n =
          ::pread(fd, buf.data(), static_cast<size_t>(std::min<int64_t>(have - off, buf.size())), off);
      if (n <= 0) {
        restart();
        break;
      }
      hasher->update(buf.data(), static_cast<size_t>(n));
      off += n;
    }
    if (have > 0) log::verbose(what + ": resuming at " + str::human_bytes(have));
  }
  progress(have);
  std::string scope = "repository:" + ref_.repository + ":pull";
  bool too_long = false, cancelled = false;
  bool refreshed = false;
  for (int attempt = 1; have < size; ++attempt) {
    http::Request req;
    req.url = url;
    req.max_body = 1 << 20;
    if (std::string a = auth_header(client, scope, false); !a.empty()) req.headers.push_back(a);
    if (have > 0) req.headers.push_back("Range: bytes=" + std::to_string(have) + "-");
    req.keep_going = [&] {
      if (progress(have)) return true;
      cancelled = true;
      return false;
    };
    int64_t start = have;
    int64_t skip = 0;  // bytes of a full (200) answer we already have
    req.on_headers = [&](const http::Response& r) {
      if (r.status == 206) {
        // Content-Range: bytes START-END/TOTAL must start where we are.
        std::string cr = r.header("content-range");
        auto sp = cr.find(' ');
        if (sp == std::string::npos || std::strtoll(cr.c_str() + sp + 1, nullptr, 10) != start) return false;
      } else if (r.status == 200) {
        // The server ignored Range and sends everything: drop what we have instead of
        // truncating, so a reader of the partial file never sees it shrink.
        skip = have;
      }
      return true;
    };
    req.sink = [&](const char* data, size_t n) {
      if (skip > 0) {
        size_t drop = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(n)));
        skip -= static_cast<int64_t>(drop);
        data += drop;
        n -= drop;
        if (n == 0) return true;
      }
      if (have + static_cast<int64_t>(n) > size) {
        too_long = true;
        return false;
      }
      size_t off = 0;
      while (off < n) {
        ssize_t w = ::pwrite(fd, data + off, n - off, have + static_cast<int64_t>(off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        off += static_cast<size_t>(w);
      }
      hasher->update(data, n);
      have += static_cast<int64_t>(n);
      if (!progress(have)) {
        cancelled = true;
        return false;
      }
      return true;
    };
    http::Response r;
    try {
      r = client.perform(req);
    } catch (const http::TransportError& e) {
      if (!e.retryable() || attempt >= opts_.max_attempts) throw Error(what + ": " + e.message());
      log::verbose(what + ": " + e.message() + "; resuming at " + str::human_bytes(have));
      backoff_sleep(attempt, nullptr, [&] { return progress(have); });
      continue;
    } catch (const Error& e) {
      if (cancelled) throw Error(what + ": cancelled");
      if (too_long) {
        restart();
        throw DigestMismatch(what + ": the registry sent more bytes than the descriptor's size " +
                             std::to_string(size));
      }
      if (have != start || attempt >= opts_.max_attempts) throw Error(what + ": " + e.message());
      backoff_sleep(attempt, nullptr,
                    [&] { return progress(have); });  // e.g. a 206 that does not start where asked: ask again
      continue;
    }
    if (r.status == 401 && !refreshed) {
      refreshed = true;
      auth_header(client, scope, true);
      --attempt;
      continue;
    }
    if (r.status == 416) {
      restart();
      continue;
    }
    if (retryable_status(r.status) && attempt < opts_.max_attempts) {
      log::verbose(what + ": " + describe_error(r) + "; retrying");
      backoff_sleep(attempt, &r, [&] { return progress(have); });
      continue;
    }
    if (r.status == 404)
      throw Error(what + ": the registry does not have this blob (" + describe_error(r) + ")");
    if (r.status != 200 && r.status != 206) throw Error(what + ": " + describe_error(r));
    if (have < size && attempt >= opts_.max_attempts)
      throw Error(what + ": the connection kept ending early (" + std::to_string(have) + " of " +
                  std::to_string(size) + " bytes)");
  }
  std::string got = "sha256:" + hasher->hex_digest();
  if (got != digest) {
    restart();
    throw DigestMismatch(what + ": the downloaded content hashes to " + got +
                         "; the registry or a proxy sent " + "wrong bytes (nothing was cached)");
  }
}

}  // namespace rbox::oci
