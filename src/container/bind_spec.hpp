// Parsing of Apptainer's bind syntax: -B/--bind "src[:dst[:opts]]" comma lists (with \, and \:
// escapes), --mount "type=bind,src=…,dst=…,ro", and the RBOX_BIND/APPTAINER_BIND variables.
// Pure text handling: paths are not resolved or checked here (plan.cpp does that).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rbox::container {

struct BindSpec {
  std::string source;       // as written (may be relative)
  std::string destination;  // absolute path in the container (defaults to source)
  bool read_only = false;
  std::string origin;  // the text it came from, for error messages
};

// One -B value: "a,b:/c:ro,d" → three specs. Throws rbox::Error naming `where` on bad syntax
// (empty source, relative destination, unknown option).
std::vector<BindSpec> parse_bind_list(std::string_view value, std::string_view where = "--bind");

// One --mount value (Docker-style CSV): type=bind,source=/a,destination=/b[,readonly|ro].
BindSpec parse_mount_spec(std::string_view value);

}  // namespace rbox::container
