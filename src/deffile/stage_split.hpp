// Internal to deffile/: the pieces parser.cpp shares with the build-argument templating
// (templating.cpp) — stage chunks of a file and the parse of one chunk. Not for other modules.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "deffile/definition.hpp"

namespace rbox::deffile::detail {

// A piece of the file between two "Bootstrap:" lines (the first one may precede any).
struct Chunk {
  std::string_view text;
  int first_line = 1;
};
std::vector<Chunk> split_stages(std::string_view text);

// ParseDefinitionFile on one chunk; nullopt when it holds nothing (Apptainer's
// errEmptyDefinition, which parser.All skips). raw = fullraw = the chunk.
std::optional<Definition> parse_chunk(std::string_view text, const std::string& name, int first_line);

[[noreturn]] void throw_empty(const std::string& name, int line);

// "env.def:7: "
std::string at(const std::string& name, int line);

}  // namespace rbox::deffile::detail
