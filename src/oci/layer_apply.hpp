// LayerApplier: applies OCI/Docker layer tars, in order, to one root directory per the image
// spec: whiteouts (.wh.NAME, opaque .wh..wh..opq, only against lower layers), unlink-and-recreate
// unless both are directories, hard links, symlinks, modes (setuid kept), mtimes, xattrs, owners
// (chown as root; the user.rootlesscontainers xattr otherwise), device nodes only as root.
// Every path goes through RootDir, so no entry can create, modify or chmod anything outside the
// root; directory permissions are applied at the end so read-only directories cannot block
// later entries.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "oci/root_dir.hpp"

namespace rbox::oci {

// Reads the next chunk of an uncompressed tar stream (empty at the end); see LayerStream.
using TarSource = std::function<std::string_view()>;

struct ApplyStats {
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t devices_skipped = 0;
  uint64_t xattrs_skipped = 0;
  uint64_t clamped_paths = 0;  // names with ".." above the root or absolute, applied inside it
  uint64_t whiteouts = 0;
};

class LayerApplier {
 public:
  // root: an existing, empty directory owned by the caller.
  explicit LayerApplier(const std::string& root);
  ~LayerApplier();

  // Applies one layer. `what` names it in errors ("layer 2/5 sha256:ab12…").
  void apply(const TarSource& source, const std::string& what);
  // Applies the deferred directory modes and mtimes and prints the summary lines. Call once,
  // after the last layer.
  void finish();

  const ApplyStats& stats() const { return stats_; }
  // True when ownership is recorded with chown (running as real root).
  bool as_root() const { return as_root_; }

 private:
  struct DirMeta {
    mode_t mode;
    struct timespec mtime;
  };
  class Layer;

  int parent_fd(const std::string& parent);  // cached O_PATH fd of the parent, created if missing
  void invalidate_parent_cache();
  void forget_deferred_under(const std::string& path);

  RootDir root_;
  bool as_root_;
  std::string cached_parent_;
  UniqueFd cached_parent_fd_;
  bool have_cached_parent_ = false;
  std::map<std::string, DirMeta> deferred_dirs_;  // clean path → final mode and mtime
  ApplyStats stats_;
  size_t layers_applied_ = 0;
};

// The user.rootlesscontainers value umoci writes for an owner (protobuf Resource{uid, gid});
// "" when both are 0 (root: no xattr).
std::string rootless_owner_xattr(uint32_t uid, uint32_t gid);

}  // namespace rbox::oci
