// Apptainer-shaped image metadata (see sif_metadata.hpp). File selection mirrors Apptainer's
// inspect: env/10-docker*.sh and env/9*-environment.sh, labels.json, runscript, test, startscript,
// runscript.help, and the definition in /.singularity.d/Singularity; values lose trailing newlines.
#include "image/sif_metadata.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/go_json.hpp"
#include "util/strings.hpp"

namespace rbox::image {
namespace {

using Json = nlohmann::ordered_json;
constexpr uint64_t kMaxMetadataFile = 16 << 20;

std::string trim_newlines(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool glob_match(const std::string& name, const std::string& prefix, const std::string& suffix) {
  return name.size() >= prefix.size() + suffix.size() && str::starts_with(name, prefix) &&
         str::ends_with(name, suffix);
}

std::map<std::string, std::string> parse_labels(const std::string& text) {
  std::map<std::string, std::string> out;
  try {
    Json j = Json::parse(text);
    if (!j.is_object()) return out;
    for (auto& [k, v] : j.items()) out[k] = v.is_string() ? v.get<std::string>() : v.dump();
  } catch (const Json::exception&) {
    // Apptainer warns and shows no labels; so do we (the file is the image's business).
  }
  return out;
}

// Environment scripts of a .singularity.d-like directory, in Apptainer's glob order.
void collect_env(const ReadImageFile& read, const ListImageDir& list, const std::string& base, bool docker,
                 std::map<std::string, std::string>& out) {
  auto names = list(base + "/env");
  if (!names) return;
  std::sort(names->begin(), names->end());
  auto take = [&](const std::string& prefix, const std::string& suffix) {
    for (const auto& n : *names) {
      if (!glob_match(n, prefix, suffix)) continue;
      if (auto c = read(base + "/env/" + n)) out[base + "/env/" + n] = trim_newlines(*c);
    }
  };
  if (docker) take("10-docker", ".sh");
  take("9", "-environment.sh");
}

Json string_map(const std::map<std::string, std::string>& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

UniqueFd open_in_root(const std::string& root, const std::string& path, int flags) {
  UniqueFd rootfd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) return UniqueFd();
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOCTTY);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, rootfd.get(), path.c_str(), &how, sizeof how);
  return UniqueFd(fd < 0 ? -1 : static_cast<int>(fd));
}

}  // namespace

bool InspectMetadata::empty() const {
  return apps.empty() && environment.empty() && labels.empty() && runscript.empty() && test.empty() &&
         helpfile.empty() && deffile.empty() && startscript.empty();
}

InspectMetadata collect_metadata(const ReadImageFile& read, const ListImageDir& list) {
  InspectMetadata m;
  const std::string base = "/.singularity.d";
  auto text = [&](const std::string& p) { return trim_newlines(read(p).value_or("")); };
  if (auto l = read(base + "/labels.json")) m.labels = parse_labels(*l);
  m.runscript = text(base + "/runscript");
  m.startscript = text(base + "/startscript");
  m.test = text(base + "/test");
  m.helpfile = text(base + "/runscript.help");
  auto def = read(base + "/Singularity");
  if (!def) def = read(base + "/Apptainer");
  m.deffile = trim_newlines(def.value_or(""));
  collect_env(read, list, base, true, m.environment);
  if (auto apps = list("/scif/apps")) {
    std::sort(apps->begin(), apps->end());
    for (const auto& app : *apps) {
      const std::string ab = "/scif/apps/" + app + "/scif";
      if (!list(ab)) continue;
      AppMetadata a;
      if (auto l = read(ab + "/labels.json")) a.labels = parse_labels(*l);
      a.runscript = text(ab + "/runscript");
      a.test = text(ab + "/test");
      a.helpfile = text(ab + "/runscript.help");
      collect_env(read, list, ab, false, a.environment);
      m.apps[app] = std::move(a);
    }
  }
  return m;
}

std::string metadata_json(const InspectMetadata& m, bool pretty) {
  Json attrs = Json::object();
  if (!m.apps.empty()) {
    Json apps = Json::object();
    for (const auto& [name, a] : m.apps) {
      Json j = Json::object();
      if (!a.environment.empty()) j["environment"] = string_map(a.environment);
      if (!a.labels.empty()) j["labels"] = string_map(a.labels);
      if (!a.runscript.empty()) j["runscript"] = a.runscript;
      if (!a.test.empty()) j["test"] = a.test;
      if (!a.helpfile.empty()) j["helpfile"] = a.helpfile;
      apps[name] = j;
    }
    attrs["apps"] = apps;
  }
  if (!m.environment.empty()) attrs["environment"] = string_map(m.environment);
  if (!m.labels.empty()) attrs["labels"] = string_map(m.labels);
  if (!m.runscript.empty()) attrs["runscript"] = m.runscript;
  if (!m.test.empty()) attrs["test"] = m.test;
  if (!m.helpfile.empty()) attrs["helpfile"] = m.helpfile;
  if (!m.deffile.empty()) attrs["deffile"] = m.deffile;
  if (!m.startscript.empty()) attrs["startscript"] = m.startscript;
  Json root = Json::object();
  root["data"] = Json{{"attributes", attrs}};
  root["type"] = "container";
  const auto replace = nlohmann::json::error_handler_t::replace;
  return go_json::html_escape(pretty ? root.dump(1, '\t', false, replace)
                                     : root.dump(-1, ' ', false, replace));
}

InspectMetadata parse_metadata_json(std::string_view text) {
  InspectMetadata m;
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    throw Error(std::string("inspect-metadata.json is not valid JSON: ") + e.what());
  }
  auto str = [](const Json& o, const char* k) {
    auto it = o.find(k);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto smap = [](const Json& o, const char* k) {
    std::map<std::string, std::string> out;
    auto it = o.find(k);
    if (it == o.end() || !it->is_object()) return out;
    for (auto& [kk, v] : it->items()) out[kk] = v.is_string() ? v.get<std::string>() : v.dump();
    return out;
  };
  if (!j.is_object() || !j.contains("data") || !j["data"].is_object()) return m;
  const Json& data = j["data"];
  if (!data.contains("attributes") || !data["attributes"].is_object()) return m;
  const Json& a = data["attributes"];
  m.environment = smap(a, "environment");
  m.labels = smap(a, "labels");
  m.runscript = str(a, "runscript");
  m.test = str(a, "test");
  m.helpfile = str(a, "helpfile");
  m.deffile = str(a, "deffile");
  m.startscript = str(a, "startscript");
  if (a.contains("apps") && a["apps"].is_object()) {
    for (auto& [name, app] : a["apps"].items()) {
      if (!app.is_object()) continue;
      AppMetadata am;
      am.environment = smap(app, "environment");
      am.labels = smap(app, "labels");
      am.runscript = str(app, "runscript");
      am.test = str(app, "test");
      am.helpfile = str(app, "helpfile");
      m.apps[name] = std::move(am);
    }
  }
  return m;
}

ReadImageFile read_from_dir(const std::string& root) {
  return [root](const std::string& path) -> std::optional<std::string> {
    UniqueFd fd = open_in_root(root, path, O_RDONLY | O_NONBLOCK);
    if (!fd) return std::nullopt;
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
    if (static_cast<uint64_t>(st.st_size) > kMaxMetadataFile)
      throw Error(root + path + ": " + std::to_string(st.st_size) + " bytes is too big for image metadata");
    std::string out(static_cast<size_t>(st.st_size), '\0');
    size_t got = 0;
    while (got < out.size()) {
      ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw sys_error("read", root + path);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    out.resize(got);
    return out;
  };
}

ListImageDir list_from_dir(const std::string& root) {
  return [root](const std::string& path) -> std::optional<std::vector<std::string>> {
    UniqueFd fd = open_in_root(root, path, O_RDONLY | O_DIRECTORY);
    if (!fd) return std::nullopt;
    DIR* d = ::fdopendir(fd.release());
    if (!d) return std::nullopt;
    std::vector<std::string> out;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) out.emplace_back(e->d_name);
    }
    ::closedir(d);
    return out;
  };
}

}  // namespace rbox::image
