// Apptainer's Definition JSON (pkg/build/types/definition.go): the shape `rbox inspect --deffile
// --json` prints so it can be diffed against Apptainer's parser test data. Output only; rbox
// never reads definitions back from JSON.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deffile/definition.hpp"

namespace rbox::deffile {

// Fields in Go's struct order; header/customData null when absent; raw/fullraw base64;
// buildScripts.arguments only when %arguments is present (older Apptainer omits it).
nlohmann::ordered_json to_json(const Definition& d);

// The text Go's json.MarshalIndent(v, "", "\t") produces, plus a final newline: <, > and &
// written as \u003c \u003e \u0026, U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
std::string to_json_text(const Definition& d);
std::string to_json_text(const std::vector<Definition>& stages);

}  // namespace rbox::deffile
