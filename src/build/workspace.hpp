// The build's temporary space: $RBOX_TMPDIR/$TMPDIR/rbox-build-XXXXXX holding the stage root
// filesystems, a lock held for the life of the build and a state file naming everything the
// build may leave elsewhere (a half-written SIF next to the target, a sandbox being assembled).
// A build that is killed (-9) leaves it behind locked by nobody; the next build sweeps it.
// Never removes anything it cannot attribute to a dead build of the same user.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/lock.hpp"

namespace rbox::build {

class Workspace {
 public:
  // Creates and locks a new workspace under parent (created if missing). `where` names the
  // setting parent came from ("--tmpdir", "RBOX_TMPDIR", "TMPDIR" or "/tmp") for messages.
  static Workspace create(const std::string& parent, const std::string& where);
  Workspace(Workspace&&) noexcept = default;

  const std::string& path() const { return path_; }
  const std::string& parent() const { return parent_; }

  // Appends key=value to the state file (fsynced: it must survive a kill -9 of the build).
  void record(const std::string& key, const std::string& value) const;
  std::vector<std::pair<std::string, std::string>> state() const;

  // After a failed or interrupted build: removes the partial outputs named in the state file,
  // then the workspace. keep_rootfs (a path recorded as "rootfs") is moved to
  // <parent>/rbox-failed-XXXXXX and its new path returned.
  std::string discard_failed(bool keep_rootfs);
  // After success: removes the workspace.
  void remove();

  // One line naming the variable to change when the filesystem holding the workspace is (nearly)
  // full, else "". Checked after a failure, to explain "No space left on device".
  std::string space_hint() const;

  // Removes workspaces under parent left by dead builds of this user (their lock is free).
  // Returns how many were removed; failures become warnings.
  static size_t sweep_stale(const std::string& parent);

  // Where builds put temporary space: --tmpdir, else $RBOX_TMPDIR, else $TMPDIR, else /tmp;
  // second = the name of the setting used.
  static std::pair<std::string, std::string> choose_parent(const std::string& tmpdir_option);

 private:
  Workspace(std::string parent, std::string where, std::string path, std::optional<FileLock> lock)
      : parent_(std::move(parent)),
        where_(std::move(where)),
        path_(std::move(path)),
        lock_(std::move(lock)) {}

  std::string parent_, where_, path_;
  std::optional<FileLock> lock_;
};

// Removes "<target>.tmp-*" files (AtomicFile temporaries of an interrupted write) created at or
// after `since` by this user.
void remove_partial_outputs(const std::string& target, std::time_t since);

}  // namespace rbox::build
