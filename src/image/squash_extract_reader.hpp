// Reading a SquashFS image in place (a bare file, or a SIF partition at an offset) with libsquashfs:
// look up paths, list directories, read small files — what `rbox inspect` and extraction need,
// without mounting. Image contents are untrusted: sizes are bounded, lookups stay inside the
// image, symlink chains are capped. Not for serving many concurrent reads (that is fuse_*).
#pragma once

#include <sqfs/predef.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace rbox::image {

struct SquashEntry {
  std::string name;
  uint32_t mode = 0;  // S_IFMT | permission bits
};

struct SquashStat {
  uint32_t mode = 0, uid = 0, gid = 0, mtime = 0, nlink = 0, inode_number = 0;
  uint64_t size = 0;   // regular files
  std::string target;  // symlinks
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class SquashImage {
 public:
  // Opens the SquashFS at [offset, offset + size) of path (size 0: to the end of the file).
  // Throws rbox::Error("PATH: …") when the superblock or tables are unreadable.
  SquashImage(const std::string& path, uint64_t offset = 0, uint64_t size = 0);
  ~SquashImage();
  SquashImage(const SquashImage&) = delete;
  SquashImage& operator=(const SquashImage&) = delete;

  const std::string& path() const { return path_; }
  uint32_t block_size() const;
  std::string compressor() const;  // "gzip", "zstd" …
  uint32_t inode_count() const;

  // Contents of the regular file at an absolute path inside the image, following symlinks
  // inside the image. nullopt if missing or not a regular file; throws if bigger than max_size.
  std::optional<std::string> read_file(const std::string& path_in_image, uint64_t max_size = 16 << 20);
  // Entries of the directory at path (symlinks followed); nullopt when it is not a directory.
  std::optional<std::vector<SquashEntry>> list_dir(const std::string& path_in_image);

  // Attributes of the entry at path (the last component is not followed); nullopt if missing.
  std::optional<SquashStat> stat(const std::string& path_in_image);

  // Low-level access for extraction (squash_extract.cpp).
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::string path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rbox::image
