// Logging to stderr with the global verbosity (--quiet/--verbose/--debug). Messages are single
// lines prefixed "rbox: "; warnings "rbox: warning: "; debug lines "rbox: debug: ".
#pragma once

#include <string>

namespace rbox::log {

enum class Level { kQuiet = 0, kNormal = 1, kVerbose = 2, kDebug = 3 };

void set_level(Level level);
Level level();
inline bool verbose() {
  return level() >= Level::kVerbose;
}
inline bool debug_enabled() {
  return level() >= Level::kDebug;
}

void info(const std::string& message);     // shown unless --quiet
void warn(const std::string& message);     // shown unless --quiet
void verbose(const std::string& message);  // --verbose and --debug
void debug(const std::string& message);    // --debug only
void error(const std::string& message);    // always: "rbox: error: …"

}  // namespace rbox::log
