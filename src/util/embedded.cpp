// Lookup in the embedded runtime/ table.
#include "util/embedded.hpp"

namespace rbox::embedded {

const File* find(std::string_view path) {
  for (const File* f = kFiles; f->path; ++f)
    if (path == f->path) return f;
  return nullptr;
}

}  // namespace rbox::embedded
