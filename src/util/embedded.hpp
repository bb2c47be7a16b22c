// Files from runtime/ embedded into the binary at build time (cmake/embed.cmake).
#pragma once

#include <cstddef>
#include <string_view>

namespace rbox::embedded {

struct File {
  const char* path;  // relative to runtime/, e.g. "env/99-base.sh"
  const char* data;
  size_t size;
  unsigned mode;  // permission bits from the source tree
};

// Table terminated by an entry with path == nullptr.
extern const File kFiles[];

// The file at path, or nullptr.
const File* find(std::string_view path);
inline std::string_view contents(const File& f) {
  return {f.data, f.size};
}

}  // namespace rbox::embedded
