// Which architecture a root filesystem is for, as Apptainer decides it for the SIF partition:
// the ELF header of the tree's /bin/sh, else the first executable ELF file, else the host.
// Reads a few bytes of files inside the tree; never follows a link out of it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rbox::image {

// GOARCH name ("amd64", "arm64", "ppc64le" …) from the first bytes of an ELF file; nullopt when
// the bytes are not ELF or the machine is not one SIF knows.
std::optional<std::string> elf_goarch(std::string_view head);

// The GOARCH name of the machine rbox runs on.
std::string host_goarch();

// Architecture of the root filesystem at root_dir (see above). Never fails: falls back to the host.
std::string rootfs_goarch(const std::string& root_dir);

}  // namespace rbox::image
