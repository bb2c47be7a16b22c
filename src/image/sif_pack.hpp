// Building a SIF from a root-filesystem directory, laid out as Apptainer's createSIF does: DefFile,
// then GenericJSON objects sorted by name (inspect-metadata.json, oci-config.json), then the
// primary SquashFS partition packed straight into the file at its 4096-aligned offset (no copy),
// with the architecture of the tree's /bin/sh. The file appears only when complete (temp + rename).
#pragma once

#include <optional>
#include <string>

#include "image/sif_writer.hpp"
#include "image/squash_writer.hpp"

namespace rbox::image {

struct PackSifOptions {
  SquashOptions squash;
  std::optional<std::string> deffile;     // the DefFile object (the definition text); none if unset
  std::optional<std::string> oci_config;  // the oci-config.json object (OCI-sourced builds)
  bool inspect_metadata = true;           // the inspect-metadata.json object, from /.singularity.d
  std::string arch;                       // GOARCH for the partition; empty: detect from the tree
  // SIF header options. When squash.source_date_epoch is set the SIF is made deterministic too
  // (nil UUID, Go zero times), as Apptainer does for SOURCE_DATE_EPOCH.
  sif::CreateOptions sif;
};

struct PackSifResult {
  SquashStats squash;
  std::string arch;
  uint64_t sif_bytes = 0;
};

PackSifResult pack_sif(const std::string& dir, const std::string& out, const PackSifOptions& opts);

}  // namespace rbox::image
