// Packing a directory tree into SquashFS 4.0 in-process with libsquashfs: every file type, modes,
// mtimes, xattrs (user.*, security.capability), hard links, an explicit ownership policy, data
// compressed on every core. Reproducible: the same tree and SOURCE_DATE_EPOCH give the same bytes.
// Reads the tree only; never follows a symlink in it; writes only through the given descriptor.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rbox::image {

struct SquashOptions {
  // zstd (default), gzip, xz, lz4, lz4hc. Why zstd-3 with 64 KiB blocks: squash_writer.cpp.
  std::string compressor = "zstd";
  int level = -1;  // -1: the compressor's default here (zstd 3, gzip 9, xz 6); ignored by lz4
  uint32_t block_size = 64 * 1024;
  unsigned workers = 0;  // compression threads; 0 = one per online CPU
  // Ownership stored in the image: all files owned by root (rootless builds: the tree's owners
  // are the invoking user or meaningless subordinate ids), or the ids the tree records.
  enum class Owners { kAllRoot, kPreserve } owners = Owners::kAllRoot;
  // Reproducible output: the superblock time is this, and file mtimes newer than it are clamped
  // to it (the reproducible-builds.org convention, as tar --clamp-mtime). Unset: now / untouched.
  std::optional<int64_t> source_date_epoch;
  bool xattrs = true;  // store user.* and security.capability
};

struct SquashStats {
  uint64_t image_bytes = 0;  // bytes written, padded to 4 KiB
  uint64_t input_bytes = 0;  // file data read
  uint64_t inodes = 0;
  uint64_t duplicate_blocks = 0;
};

// Validates and normalises options (compressor name, level range, block size power of two in
// 4 KiB..1 MiB). Throws rbox::Error naming the option.
void check_squash_options(SquashOptions& opts);

// SOURCE_DATE_EPOCH from the environment, if set and valid (throws on garbage).
std::optional<int64_t> source_date_epoch_from_env();

// Packs the tree at dir into a SquashFS whose first byte is at `offset` in fd (which must be
// readable and writable: libsquashfs reads blocks back to deduplicate). Returns sizes; the image
// occupies [offset, offset + image_bytes). Throws rbox::Error naming the file that failed.
SquashStats pack_squashfs(const std::string& dir, int fd, uint64_t offset, const SquashOptions& opts);

// Packs dir into the file out (temporary name, renamed on success).
SquashStats pack_squashfs_file(const std::string& dir, const std::string& out, const SquashOptions& opts);

}  // namespace rbox::image
