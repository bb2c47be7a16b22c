// %files copying with Apptainer's semantics — host sources: shell globs, `cp -fLr` (every
// symlink dereferenced); stage sources: globbed inside the earlier stage, only the named source
// dereferenced, links inside kept — with every destination resolved inside the target root and
// every file created relative to a directory fd with O_NOFOLLOW, so nothing lands outside it.
#pragma once

#include <string>
#include <vector>

#include "build/rootfs.hpp"

namespace rbox::build {

// Expands a %files source pattern like Apptainer's `for n in PATTERN` (sh globbing; a pattern
// that matches nothing is returned as is, so the copy then fails naming it). Relative patterns
// are relative to base ("" = current directory).
std::vector<std::string> expand_glob(const std::string& pattern, const std::string& base = {});

// `%files` line "src [dst]" from the host: src globbed on the host, dst "" = same path.
// Returns the number of top-level sources copied. Throws rbox::Error naming the line's paths.
size_t copy_from_host(const std::string& src, const std::string& dst, const RootFs& root);

// `%files from STAGE` line: src globbed inside from, dst "" = same path.
size_t copy_from_stage(const std::string& src, const std::string& dst, const RootFs& from, const RootFs& to);

// Copies the whole tree at host directory src into root (an existing, empty directory) keeping
// links, modes, times and, when permitted, owners: the localimage agent for sandbox directories.
void copy_tree(const std::string& src, const RootFs& root);

}  // namespace rbox::build
