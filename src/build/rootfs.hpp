// RootFs: file operations inside a root filesystem being built, with every path resolved by
// openat2(RESOLVE_IN_ROOT) so a symlink in an image (/.singularity.d -> /home/you) can never
// make the build read or write outside the tree. Must not be used for host paths.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/fd.hpp"

namespace rbox::build {

class RootFs {
 public:
  // Opens the directory (it must exist).
  explicit RootFs(std::string path);
  RootFs(RootFs&&) noexcept = default;
  RootFs& operator=(RootFs&&) noexcept = default;

  const std::string& path() const { return path_; }
  // Opens the path again: after something was mounted on it, the old fd still names the
  // directory underneath.
  void reopen();
  int fd() const { return dir_.get(); }
  // Host path of rel for messages and for handing to other programs ("/etc/x" → path()/etc/x).
  std::string host_path(std::string_view rel) const;

  // openat2 relative to the root; absolute and ".." components stay inside. Symlinks are
  // followed (inside the root) unless flags has O_NOFOLLOW. Throws rbox::Error.
  UniqueFd open(std::string_view rel, int flags, mode_t mode = 0) const;
  // As open(), but nullopt when a component is missing (ENOENT/ENOTDIR).
  std::optional<UniqueFd> try_open(std::string_view rel, int flags, mode_t mode = 0) const;

  // lstat (follow=false) or stat of rel; nullopt when missing.
  std::optional<struct stat> stat(std::string_view rel, bool follow = false) const;
  bool exists(std::string_view rel) const { return stat(rel).has_value(); }
  bool is_dir(std::string_view rel) const;   // follows links (inside the root)
  bool is_file(std::string_view rel) const;  // regular file, follows links

  // mkdir -p; existing directories (and links to directories) are kept as they are.
  void mkdirs(std::string_view rel, mode_t mode = 0755) const;
  // Apptainer's makeFile: create or truncate rel with data, and set mode. With
  // overwrite=false an existing file only gets its mode set.
  void write_file(std::string_view rel, std::string_view data, mode_t mode = 0644,
                  bool overwrite = true) const;
  void append_file(std::string_view rel, std::string_view data) const;
  std::optional<std::string> read_file(std::string_view rel) const;
  // symlinkat; the link itself is created in its (resolved) parent directory.
  void symlink(const std::string& target, std::string_view rel) const;
  // Removes a file, link or whole tree at rel (never following the last component).
  void remove(std::string_view rel) const;
  void rename(std::string_view from, std::string_view to) const;
  // Names in directory rel (no "." or ".."), sorted; empty when rel is not a directory.
  std::vector<std::string> list(std::string_view rel) const;

  // Splits "a/b/c" into its parent "a/b" and leaf "c" (leaf never empty for valid input).
  static std::pair<std::string, std::string> split(std::string_view rel);

 private:
  UniqueFd open_parent(std::string_view rel, std::string* leaf) const;

  std::string path_;
  UniqueFd dir_;
};

}  // namespace rbox::build
