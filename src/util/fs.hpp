// Filesystem helpers: whole-file reads and writes, atomic output files (temporary name, then
// rename), temporary directories removed on scope exit, and a tree removal that never follows
// symbolic links. Paths here are host paths; paths from images go through oci/ and container/.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "util/fd.hpp"

namespace rbox::fs {

std::string read_file(const std::string& path);
void write_file(const std::string& path, std::string_view data, mode_t mode = 0644);
bool exists(const std::string& path);  // lstat succeeds
// Names in a directory (no "." or ".."), sorted; empty when it does not exist.
std::vector<std::string> list_dir(const std::string& path);
bool is_dir(const std::string& path);  // stat (follows links) says directory
void mkdir_p(const std::string& path, mode_t mode = 0755);
// Removes a file or a whole tree without following symlinks; makes read-only directories
// writable first (owned by us). Missing path is not an error.
void remove_tree(const std::string& path);
std::string dirname(const std::string& path);
std::string basename(const std::string& path);
std::string absolute(const std::string& path);  // against cwd, lexically normalised
// Directory for temporary files: $RBOX_TMPDIR, else $TMPDIR, else /tmp.
std::string temp_root();

// AtomicFile: write to "<path>.tmp-XXXXXX" in the same directory; commit() fsyncs and renames
// over path. Destroyed without commit → the temporary is removed and path is untouched.
class AtomicFile {
 public:
  explicit AtomicFile(std::string path, mode_t mode = 0644);
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  int fd() const { return fd_.get(); }
  const std::string& temp_path() const { return temp_; }
  void write(std::string_view data);
  void commit();

 private:
  std::string path_;
  std::string temp_;
  UniqueFd fd_;
  bool committed_ = false;
};

// TempDir: mkdtemp under a parent (default temp_root()); removed with remove_tree on scope exit
// unless keep() was called.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "rbox-", const std::string& parent = {});
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&& o) noexcept;
  ~TempDir();

  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

}  // namespace rbox::fs
