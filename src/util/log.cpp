// Implementation of rbox::log: unbuffered single writes so lines from threads do not interleave.
#include "util/log.hpp"

#include <unistd.h>

#include <atomic>

namespace rbox::log {
namespace {

std::atomic<Level> g_level{Level::kNormal};

void emit(const char* prefix, const std::string& message) {
  std::string line = std::string("rbox: ") + prefix + message + "\n";
  ssize_t rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void)rc;
}

}  // namespace

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}

void info(const std::string& m) {
  if (level() >= Level::kNormal) emit("", m);
}
void warn(const std::string& m) {
  if (level() >= Level::kNormal) emit("warning: ", m);
}
void verbose(const std::string& m) {
  if (level() >= Level::kVerbose) emit("", m);
}
void debug(const std::string& m) {
  if (level() >= Level::kDebug) emit("debug: ", m);
}
void error(const std::string& m) {
  emit("error: ", m);
}

}  // namespace rbox::log
