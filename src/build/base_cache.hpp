// Unpacked base images kept between builds, used as the read-only lower layer of an overlay
// mount, so a build from an image it has seen before starts in milliseconds instead of
// unpacking every layer again (podman does the same with its layer store). Entries live under
// rbox's cache ($RBOX_CACHEDIR …)/rootfs/, keyed by what the image is (manifest digest, SIF id)
// and by the fake-root mode (owners on disk differ between modes); a shared lock pins an entry
// while a build uses it. Never modifies an entry once complete.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "util/lock.hpp"

namespace rbox::build {

class BaseCache {
 public:
  // root: the directory holding the entries; mode_key separates fake-root modes.
  BaseCache(std::string root, std::string mode_key);

  struct Entry {
    std::string tree;  // the unpacked root filesystem (never write into it)
    std::optional<FileLock> pin;
  };

  // The entry for key; on a miss fill(dir) unpacks into a fresh directory which then becomes the
  // entry (a concurrent build filling the same key wins the race harmlessly). *hit tells which.
  Entry get(const std::string& key, const std::function<void(const std::string& dir)>& fill, bool* hit);

  // Removes the least recently used entries beyond keep that no build has pinned.
  void evict(size_t keep) const;

  const std::string& root() const { return root_; }

 private:
  std::string root_, mode_key_;
};

// `rbox cache clean`: removes the cached base trees under cache_root/rootfs that no build is
// using. Entries made with a subordinate-id map belong to those ids, so this runs inside the same
// fake-root user namespace a build would use. Returns the number of entries removed.
size_t clean_base_cache(const std::string& cache_root);

// Mounts overlayfs at merged with lower read-only (userxattr: unprivileged overlay, Linux 5.11+).
// Returns "" on success or why the kernel refused, for the fallback message.
std::string mount_overlay(const std::string& lower, const std::string& upper, const std::string& work,
                          const std::string& merged);

// Gives the calling process a private mount namespace (needed before mount_overlay). Returns ""
// or the reason it is not possible.
std::string private_mount_namespace();

}  // namespace rbox::build
