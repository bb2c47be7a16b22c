// Go's encoding/json output from nlohmann's: Go escapes <, > and & (and U+2028/U+2029) for HTML
// safety, nlohmann does not. Files Apptainer writes with json.Marshal (the SIF's JSON objects,
// the definition's JSON) must match byte for byte. Text only; no JSON parsing here.
#pragma once

#include <string>

namespace rbox::go_json {

// Rewrites a JSON text (a dump): those bytes only occur inside strings, so the replacement is exact.
std::string html_escape(const std::string& json_text);

}  // namespace rbox::go_json
