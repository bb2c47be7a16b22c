// Challenge parsing and docker-format credential files (auth.hpp). Error messages name files
// and registries, never user names, passwords or tokens.
#include "oci/auth.hpp"

#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "oci/reference.hpp"
#include "util/base64.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

using json = nlohmann::json;

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string home_dir() {
  std::string h = env_or_empty("HOME");
  return h.empty() ? "/" : h;
}

}  // namespace

std::vector<Challenge> parse_www_authenticate(const std::string& h) {
  std::vector<Challenge> out;
  size_t i = 0, n = h.size();
  auto skip_ws = [&] {
    while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
  };
  auto read_token = [&] {
    size_t s = i;
    while (i < n && is_token_char(h[i])) ++i;
    return h.substr(s, i - s);
  };
  while (i < n) {
    skip_ws();
    std::string scheme = read_token();
    if (scheme.empty()) {
      ++i;  // unexpected character: skip it
      continue;
    }
    Challenge c;
    c.scheme = str::lower(scheme);
    // Parameters: name=value pairs separated by commas, until the next bare token (a scheme).
    for (;;) {
      skip_ws();
      size_t name_start = i;
      std::string name = read_token();
      size_t j = i;
      while (j < n && (h[j] == ' ' || h[j] == '\t')) ++j;
      if (name.empty() || j >= n || h[j] != '=') {
        // Not a parameter: the next challenge's scheme (or junk the outer loop skips).
        i = name_start;
        break;
      }
      i = j + 1;
      while (i < n && (h[i] == ' ' || h[i] == '\t')) ++i;
      std::string value;
      if (i < n && h[i] == '"') {
        ++i;
        while (i < n && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < n) ++i;
          value += h[i++];
        }
        if (i < n) ++i;  // closing quote
      } else {
        size_t s = i;
        while (i < n && h[i] != ',' && h[i] != ' ' && h[i] != '\t') ++i;
        value = h.substr(s, i - s);
      }
      c.params[str::lower(name)] = value;
    }
    out.push_back(std::move(c));
    if (i >= n) break;
  }
  return out;
}

std::vector<std::string> AuthConfig::files() const {
  std::vector<std::string> out;
  if (!authfile.empty()) out.push_back(authfile);
  if (auto f = env_or_empty("REGISTRY_AUTH_FILE"); !f.empty()) out.push_back(f);
  if (auto x = env_or_empty("XDG_RUNTIME_DIR"); !x.empty()) out.push_back(x + "/containers/auth.json");
  out.push_back(home_dir() + "/.docker/config.json");
  return out;
}

std::string AuthConfig::file_to_write() const {
  if (!authfile.empty()) return authfile;
  if (auto f = env_or_empty("REGISTRY_AUTH_FILE"); !f.empty()) return f;
  return home_dir() + "/.docker/config.json";
}

std::optional<Credentials> AuthConfig::lookup(const std::string& registry) const {
  std::string user = env_or_empty("RBOX_DOCKER_USERNAME"), pass = env_or_empty("RBOX_DOCKER_PASSWORD");
  if (!user.empty() || !pass.empty()) return Credentials{user, pass};
  for (const auto& f : files())
    if (auto c = read_auth_file(f, registry)) return c;
  return std::nullopt;
}

std::optional<Credentials> read_auth_file(const std::string& path, const std::string& registry) {
  std::string text;
  try {
    text = fs::read_file(path);
  } catch (const Error&) {
    return std::nullopt;
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error("credentials file " + path + " is not valid JSON; fix or remove it");
  auto auths = j.find("auths");
  if (auths == j.end() || !auths->is_object()) return std::nullopt;
  std::string want = normalize_registry(registry);
  for (const auto& [key, entry] : auths->items()) {
    if (normalize_registry(key) != want || !entry.is_object()) continue;
    if (auto a = entry.find("auth"); a != entry.end() && a->is_string()) {
      auto decoded = base64::decode(a->get<std::string>());
      if (!decoded)
        throw Error("credentials file " + path + ": the entry for " + key + " is not valid base64");
      auto colon = decoded->find(':');
      if (colon == std::string::npos)
        throw Error("credentials file " + path + ": the entry for " + key + " is not base64(user:password)");
      return Credentials{decoded->substr(0, colon), decoded->substr(colon + 1)};
    }
    std::string u = entry.value("username", ""), p = entry.value("password", "");
    if (!u.empty()) return Credentials{u, p};
  }
  return std::nullopt;
}

static json load_for_update(const std::string& path) {
  if (!fs::exists(path)) return json::object();
  json j = json::parse(fs::read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error("credentials file " + path + " is not valid JSON; fix or remove it before logging in");
  return j;
}

static void save(const std::string& path, const json& j) {
  std::string dir = fs::dirname(path);
  if (!fs::exists(dir)) {
    fs::mkdir_p(fs::dirname(dir));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) throw sys_error("mkdir", dir);
  }
  fs::AtomicFile out(path, 0600);
  out.write(j.dump(1, '\t') + "\n");
  out.commit();
}

void store_credentials(const std::string& path, const std::string& registry, const Credentials& c) {
  json j = load_for_update(path);
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = json::object();
  std::string want = normalize_registry(registry);
  // Drop other spellings of the same registry so the new entry is the one that is used.
  for (auto it = j["auths"].begin(); it != j["auths"].end();) {
    if (normalize_registry(it.key()) == want)
      it = j["auths"].erase(it);
    else
      ++it;
  }
  std::string key = want == "docker.io" ? "https://index.docker.io/v1/" : want;
  j["auths"][key] = json{{"auth", base64::encode(c.username + ":" + c.password)}};
  save(path, j);
}

bool remove_credentials(const std::string& path, const std::string& registry) {
  if (!fs::exists(path)) return false;
  json j = load_for_update(path);
  if (!j.contains("auths") || !j["auths"].is_object()) return false;
  std::string want = normalize_registry(registry);
  bool removed = false;
  for (auto it = j["auths"].begin(); it != j["auths"].end();) {
    if (normalize_registry(it.key()) == want) {
      it = j["auths"].erase(it);
      removed = true;
    } else {
      ++it;
    }
  }
  if (removed) save(path, j);
  return removed;
}

}  // namespace rbox::oci
