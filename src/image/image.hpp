// What an image path is and where its root filesystem lives: a SIF (its primary SquashFS
// partition), a bare SquashFS file (optionally behind a `#!… run-singularity` launch line), or a
// sandbox directory. The FUSE server and the container runtime start from image::locate().
// Detection only reads headers; it never mounts, extracts or writes.
#pragma once

#include <cstdint>
#include <string>

#include "image/sif_metadata.hpp"
#include "image/squash_extract.hpp"

namespace rbox::image {

enum class Format { kSif, kSquashfs, kSandbox };

struct Location {
  Format format = Format::kSandbox;
  std::string path;     // the image file, or the sandbox directory
  uint64_t offset = 0;  // first byte of the SquashFS inside path (SIF partition offset, launch line)
  uint64_t size = 0;    // SquashFS length in bytes (0 for a sandbox)
  std::string arch;     // SIF partition architecture ("amd64"); empty for other formats
};

// Detects the format of path and locates its root filesystem. Throws rbox::Error with one line
// naming path for anything rbox cannot run: a SIF without a primary partition, an ext3 or
// encrypted partition, a corrupt SIF, a file that is neither SIF nor SquashFS.
Location locate(const std::string& path);

const char* format_name(Format f);  // "SIF", "SquashFS", "sandbox"

// Extracts the root filesystem of an image into dest (created; must not exist or be empty).
// Sandboxes are refused (copy them instead).
ExtractStats extract(const Location& image, const std::string& dest, const ExtractOptions& opts = {});

// The metadata `rbox inspect` shows: from the SIF's inspect-metadata.json and DefFile objects
// when present, else from /.singularity.d inside the SquashFS or the sandbox.
InspectMetadata read_metadata(const Location& image);

}  // namespace rbox::image
