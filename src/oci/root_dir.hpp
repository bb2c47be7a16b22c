// RootDir: resolves paths from image layers inside one root directory, the way the container will
// see them (symlinks and ".." never leave the root), so nothing a layer names can reach outside.
// openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) where the kernel has it (5.6+), else a
// component-by-component walk with O_NOFOLLOW that resolves symlinks itself, rooted the same way.
// Callers get directory fds and act on the final component with *at() calls that never follow it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/fd.hpp"

namespace rbox::oci {

// Cleans an archive member name as if rooted at "/": drops leading "/" and "./", "." and empty
// components, and clamps ".." at the root ("../../etc/x" → "etc/x"). Sets *clamped when a ".."
// would have climbed above the root or the name was absolute. "" means the root itself.
std::string clean_member_path(std::string_view name, bool* clamped = nullptr);

// Splits a clean path into (parent, base): "a/b/c" → ("a/b", "c"), "c" → ("", "c").
std::pair<std::string, std::string> split_parent(const std::string& clean);

class RootDir {
 public:
  explicit RootDir(const std::string& path);

  int fd() const { return root_.get(); }
  const std::string& path() const { return path_; }

  // An O_PATH fd of directory `rel` (a clean path; "" = the root) resolved inside the root.
  // With create, missing directories are made (mode 0700) and their clean paths appended to
  // *created; a dangling symlink on the way gets its target directory made inside the root, as
  // `mkdir -p` would inside the container. Throws rbox::Error when a component is not a
  // directory or cannot be created.
  UniqueFd open_dir(const std::string& rel, bool create, std::vector<std::string>* created = nullptr);
  // Like open_dir but returns -errno instead of throwing and never creates.
  int try_open_dir(const std::string& rel);

  // Tests force the user-space walk to check it on kernels that have openat2.
  static void force_fallback(bool on);
  static bool using_openat2();

 private:
  int resolve_openat2(const std::string& rel);
  int resolve_walk(const std::string& rel);
  UniqueFd open_dir_at_depth(const std::string& rel, std::vector<std::string>* created, int depth);

  std::string path_;
  UniqueFd root_;
};

// Apptainer's --fix-perms: gives the owner rwX on everything under root (directories u+rwx,
// files u+rw, and u+x where any x bit is set) so an unprivileged packer can read the tree.
// Symlinks are never followed.
void grant_owner_access(const std::string& root);

// Removes dirfd/name: a file, a symlink (never followed) or a whole directory tree (made
// traversable first when its mode denies us). Missing is not an error.
void remove_at(int dirfd, const std::string& name);

}  // namespace rbox::oci
