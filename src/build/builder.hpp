// build::run_build — `rbox build TARGET DEF`: the whole definition-file build, rootless. Parses
// and checks the definition, chooses the fake-root mode, then runs the stages in Apptainer's
// order inside the build's user namespace, and assembles the last stage into a SIF or sandbox.
// A supervisor process removes everything a failed or interrupted build leaves; an existing
// target is only ever replaced by a complete new one.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "image/squash_writer.hpp"

namespace rbox::build {

struct BuildOptions {
  std::string target;                   // SIF file, or directory with sandbox
  std::string spec;                     // definition file (for messages when def_text is set)
  std::optional<std::string> def_text;  // a definition given as text (docker://… specs)
  bool sandbox = false;
  bool force = false;
  bool notest = false;
  bool update = false;
  bool ignore_subuid = false;
  bool keep_failed = false;
  bool fix_perms = false;
  bool warn_unused_build_args = false;
  std::string section;  // --section list ("" = all)
  std::vector<std::string> build_args, build_arg_files;
  std::vector<std::string> binds;  // -B values for %post and %test
  std::string authfile;
  std::string tmpdir;  // --tmpdir
  image::SquashOptions squash;
};

// Runs the build; returns the process exit code (0, 1 for a failed build, 128+N when
// interrupted by signal N). Errors found before any work (bad definition, target exists) throw.
int run_build(const BuildOptions& opts);

// The definition Apptainer makes for `build TARGET docker://…` and the other source URIs;
// nullopt when spec is not such a URI.
std::optional<std::string> definition_for_uri(const std::string& spec);

}  // namespace rbox::build
