// Definition → Apptainer's JSON shape (see json.hpp). Pure formatting.
#include "deffile/json.hpp"

#include <string_view>

#include "util/base64.hpp"
#include "util/go_json.hpp"

namespace rbox::deffile {

namespace {

using Json = nlohmann::ordered_json;

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), or 0.
size_t utf8_length(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) { return at(k) >= lo && at(k) <= hi; };
  unsigned c = at(0);
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (c == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (c == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xF1 && c <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Go's encoder writes one U+FFFD per byte that does not start a well-formed sequence.
std::string go_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

Json script_json(const Script& s) {
  return Json{{"args", go_text(s.args)}, {"script", go_text(s.script)}};
}

Json map_json(const std::map<std::string, std::string>& m) {
  Json j = Json::object();
  // std::map order is Go's sorted map keys.
  for (const auto& [k, v] : m) j[go_text(k)] = go_text(v);
  return j;
}

std::string dump(const Json& j) {
  return go_json::html_escape(j.dump(1, '\t', false, nlohmann::json::error_handler_t::replace)) + "\n";
}

}  // namespace

nlohmann::ordered_json to_json(const Definition& d) {
  Json files = Json::array();
  for (const auto& f : d.files) {
    Json transfers = nullptr;  // Go leaves the slice nil when a %files section has no lines
    for (const auto& t : f.files) {
      if (transfers.is_null()) transfers = Json::array();
      transfers.push_back(Json{{"source", go_text(t.source)}, {"destination", go_text(t.destination)}});
    }
    files.push_back(Json{{"args", go_text(f.args)}, {"files", transfers}});
  }
  Json build_scripts = {{"pre", script_json(d.pre)},
                        {"setup", script_json(d.setup)},
                        {"post", script_json(d.post)},
                        {"test", script_json(d.test)}};
  if (!d.arguments.empty()) build_scripts["arguments"] = script_json(d.arguments);

  Json j;
  j["header"] = d.header ? map_json(*d.header) : Json(nullptr);
  j["imageData"] = Json{{"metadata", nullptr},
                        {"labels", map_json(d.labels)},
                        {"imageScripts", Json{{"help", script_json(d.help)},
                                              {"environment", script_json(d.environment)},
                                              {"runScript", script_json(d.runscript)},
                                              {"test", script_json(d.test)},
                                              {"startScript", script_json(d.startscript)}}}};
  j["buildData"] = Json{{"files", files}, {"buildScripts", build_scripts}};
  j["customData"] = d.custom ? map_json(*d.custom) : Json(nullptr);
  j["raw"] = base64::encode(d.raw);
  j["fullraw"] = base64::encode(d.fullraw);
  Json apps = Json::array();
  for (const auto& a : d.app_order) apps.push_back(go_text(a));
  j["appOrder"] = apps;
  return j;
}

std::string to_json_text(const Definition& d) {
  return dump(to_json(d));
}

std::string to_json_text(const std::vector<Definition>& stages) {
  Json arr = Json::array();
  for (const auto& d : stages) arr.push_back(to_json(d));
  return dump(arr);
}

}  // namespace rbox::deffile
