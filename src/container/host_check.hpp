// Host checks: is an unprivileged user namespace allowed (max_user_namespaces,
// kernel.unprivileged_userns_clone, Ubuntu's AppArmor restriction), can /dev/fuse be opened,
// is the kernel new enough for FUSE (4.18) and overlayfs (5.11) in a user namespace. Each
// check says what is wrong and what to do in one line. `rbox check` runs them all; the launcher
// runs the cheap sysctl ones only after a namespace step fails, to explain the failure.
#pragma once

#include <string>
#include <vector>

namespace rbox::container {

enum class CheckStatus { kOk, kWarn, kFail };

struct CheckResult {
  std::string name;  // "user namespaces", "/dev/fuse", …
  CheckStatus status = CheckStatus::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do (empty when ok)
};

// Kernel release "6.1.0-18-amd64" → {6, 1}; {0, 0} when unreadable.
std::pair<int, int> kernel_version();
// Parses "major.minor…" text.
std::pair<int, int> parse_kernel_version(const std::string& release);

// Sysctl-level checks that need no namespace (max_user_namespaces, unprivileged_userns_clone,
// apparmor_restrict_unprivileged_userns, kernel version).
std::vector<CheckResult> check_sysctls();
// Opens /dev/fuse read-write.
CheckResult check_dev_fuse();
// Forks a child that creates a user + mount namespace, writes the id maps and mounts a tmpfs,
// overlayfs (userxattr) and, when /dev/fuse opens, a FUSE filesystem; reports each step.
std::vector<CheckResult> check_namespaces();

// The AppArmor profile that lets this rbox binary create user namespaces on Ubuntu 23.10+.
std::string apparmor_profile(const std::string& exe_path);

// One line for a failed namespace step (op: "unshare", "uid_map", "mount"), from the sysctl
// checks: the first failing check's detail and fix, or a generic hint.
std::string explain_namespace_failure(const std::string& op, int err);

}  // namespace rbox::container
