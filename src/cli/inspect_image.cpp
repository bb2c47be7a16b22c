// rbox inspect IMAGE: labels, definition, runscript, environment and help stored in an image.
#include "cli/app.hpp"

namespace rbox::cli {

int inspect_image(const std::string& target, bool json) {
  (void)target;
  (void)json;
  return not_implemented("inspect");
}

}  // namespace rbox::cli
