// Implementation of util/lock.hpp.
#include "util/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include "util/error.hpp"

namespace rbox {

static UniqueFd open_lock(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) throw sys_error("open lock file", path);
  return fd;
}

FileLock::FileLock(const std::string& path, Mode mode) : fd_(open_lock(path)) {
  int op = mode == Mode::kExclusive ? LOCK_EX : LOCK_SH;
  while (::flock(fd_.get(), op) != 0) {
    if (errno != EINTR) throw sys_error("lock", path);
  }
}

std::optional<FileLock> FileLock::try_acquire(const std::string& path, Mode mode) {
  UniqueFd fd = open_lock(path);
  int op = (mode == Mode::kExclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  if (::flock(fd.get(), op) != 0) {
    if (errno == EWOULDBLOCK) return std::nullopt;
    throw sys_error("lock", path);
  }
  return FileLock(std::move(fd));
}

}  // namespace rbox
