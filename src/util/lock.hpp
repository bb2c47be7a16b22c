// FileLock: an exclusive or shared flock(2) on a lock file, released on scope exit.
#pragma once

#include <optional>
#include <string>

#include "util/fd.hpp"

namespace rbox {

class FileLock {
 public:
  enum class Mode { kShared, kExclusive };
  // Blocks until the lock is held. Creates the lock file (mode 0600) if needed.
  explicit FileLock(const std::string& path, Mode mode = Mode::kExclusive);
  // Non-blocking: nullopt if someone else holds it.
  static std::optional<FileLock> try_acquire(const std::string& path, Mode mode = Mode::kExclusive);

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace rbox
