// Formatting helpers for rbox::Error.
#include "util/error.hpp"

#include <cstring>

namespace rbox {

Error sys_error(const std::string& op, const std::string& path, int err) {
  std::string msg = op;
  if (!path.empty()) msg += " " + path;
  msg += ": ";
  msg += std::strerror(err);
  return Error(msg);
}

}  // namespace rbox
