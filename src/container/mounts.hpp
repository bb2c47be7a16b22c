// The thin syscall layer for building a container's root: mount(2) wrappers with messages that
// name both paths, read-only remounts that keep the kernel's locked flags, path resolution
// inside a root that never escapes it (image paths are hostile), and the pivot into the new
// root. Runs in the container's setup child; throws rbox::Error, which that child turns into a
// report to the launcher (never across fork).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.hpp"

namespace rbox::container::sys {

// mount(2); throws "mount FSTYPE SRC on TARGET: strerror".
void mount(const std::string& source, const std::string& target, const char* fstype, unsigned long flags,
           const std::string& data = {});
// Recursive bind of source (a host path or /proc/self/fd/N) onto target.
void bind(const std::string& source, const std::string& target, bool recursive = true);
// Makes target read-only (plus nosuid, nodev), recursively for a tree, keeping the flags the
// kernel locked on mounts that came from the host's namespace (bwrap/charliecloud lesson).
void make_read_only(const std::string& target, bool recursive);
// Adds nosuid and nodev to target's mount, keeping its other flags.
void make_nosuid_nodev(const std::string& target);

std::string fd_path(int fd);  // "/proc/self/fd/N"

// The MS_* flags target's mount has now (statvfs): a remount inside a user namespace must repeat
// the ones the kernel locked (nosuid, nodev, noexec, atime settings, ro) or it fails with EPERM.
unsigned long mount_flags(const std::string& target);

// Where a path lands inside a root: the canonical existing part (symlinks resolved within the
// root, ".." clamped at it) and the components that do not exist yet.
struct Resolved {
  std::vector<std::string> existing;  // components from the root, all directories but the last
  std::vector<std::string> missing;   // to be created beneath existing
  bool last_is_dir = true;            // type of existing.back() when missing is empty
  std::vector<mode_t> modes;          // permission bits of each existing directory
  std::string canonical() const;      // "/" + existing joined
  std::string full() const;           // existing + missing, as an absolute path
};

// Resolves path under rootfd like openat2(RESOLVE_IN_ROOT): absolute symlinks restart at the
// root, ".." never climbs above it. Throws on loops (ELOOP) and on a file used as a directory.
Resolved resolve_in_root(int rootfd, const std::string& path);

// A tree that can be walked without the kernel: the image's own reader answers in-process what
// FUSE would answer with one round trip per name (container/image_facts.cpp).
class TreeView {
 public:
  using Node = uint64_t;  // a directory or link handle of the view
  virtual ~TreeView() = default;
  virtual Node root() = 0;
  // The type and permission bits of name in dir (not following a final symlink), or nullopt
  // when it does not exist. *child receives its handle.
  virtual std::optional<mode_t> lookup(Node dir, const std::string& name, Node* child) = 0;
  virtual std::string readlink(Node link) = 0;
};
// resolve_in_root over a TreeView: the same rules, the same results. When nothing is missing,
// *last (if given) receives the handle of the path's final component.
Resolved resolve_in_view(TreeView& view, const std::string& path, TreeView::Node* last = nullptr);

// Opens an existing path inside the root (O_PATH, final component not followed when it is a
// symlink — callers resolve first). Throws when missing.
UniqueFd open_in_root(int rootfd, const std::string& path, int flags = O_PATH);

// Creates the missing components of r below dirfd (the writable layer's root): directories with
// mode 0755, the last one a directory or an empty file. Existing components are created as
// directories too, with the modes of src_rootfd's directories (so the merged view keeps them),
// taken from r.modes when the resolver recorded them.
void create_mount_point(int layer_rootfd, int image_rootfd, const Resolved& r, bool file);

// pivot_root(".", ".") into new_root, then lazily detach the old root (PEERS.md A3).
void pivot_into(const std::string& new_root);

// Escapes ',' ':' and '\' for overlayfs lowerdir/upperdir options.
std::string overlay_escape(const std::string& path);

}  // namespace rbox::container::sys
