// rbox::Error — the one error idiom: a message naming the operation, the path and errno text,
// with context prepended as it travels up. Never thrown across fork/clone (see container/).
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>

namespace rbox {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, int exit_code = 1)
      : std::runtime_error(message), message_(std::move(message)), exit_code_(exit_code) {}

  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }
  int exit_code() const { return exit_code_; }

  // Returns a copy with "context: " prepended.
  Error with_context(const std::string& context) const {
    return Error(context + ": " + message_, exit_code_);
  }

 private:
  std::string message_;
  int exit_code_;
};

// "OP PATH: strerror(err)". Use right after a failed syscall: sys_error("open", path).
Error sys_error(const std::string& op, const std::string& path = {}, int err = errno);

// Throws sys_error when rc < 0; returns rc otherwise.
inline long check_sys(long rc, const char* op, const std::string& path = {}) {
  if (rc < 0) throw sys_error(op, path);
  return rc;
}

}  // namespace rbox
