// Extracting a SquashFS (a bare file or a SIF partition at an offset) into a directory, safely:
// every entry is created relative to a directory descriptor rbox opened itself, with O_NOFOLLOW /
// O_EXCL, so a hostile image cannot write outside the destination or through a symlink it made.
// Used by `rbox build --sandbox dir/ image.sif`, `--unsquash` and conversions.
#pragma once

#include <cstdint>
#include <string>

namespace rbox::image {

struct ExtractOptions {
  // Give files the image's owners (only possible as real root). Default: the invoking user owns
  // everything, which is what an all-root image extracted rootless needs.
  bool preserve_owners = false;
  // Keep setuid/setgid bits when running as real root (default: dropped as root, where they would
  // grant privilege on the host; kept rootless, where files belong to the invoking user anyway).
  bool keep_setid_as_root = false;
};

struct ExtractStats {
  uint64_t files = 0, dirs = 0, symlinks = 0, hardlinks = 0, others = 0, bytes = 0;
  uint64_t skipped_devices = 0;  // device nodes need real root
  uint64_t skipped_xattrs = 0;   // not permitted (security.*) or not supported by the filesystem
  uint64_t setid_dropped = 0;    // setuid/setgid bits removed (extracting as root)
};

// Extracts the SquashFS at [offset, offset + size) of image (size 0: to the end of the file) into
// dest. dest must not exist (it is created) or be an empty directory. On failure dest is left as
// far as it got (callers extract into a temporary directory and rename).
ExtractStats extract_squashfs(const std::string& image, uint64_t offset, uint64_t size,
                              const std::string& dest, const ExtractOptions& opts = {});

}  // namespace rbox::image
