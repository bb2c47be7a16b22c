// Definition-file parsing with Apptainer's exact rules (pkg/build/types/parser/deffile.go and the
// build-argument templating of internal/pkg/build/args). Every error is one rbox::Error line that
// starts "FILE:LINE: ". Pure except parse_file/make_build_args, which only read text files.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "deffile/definition.hpp"

namespace rbox::deffile {

// Values for {{ name }} placeholders: --build-arg-file lines, then --build-arg (later wins).
struct BuildArgs {
  std::map<std::string, std::string> values;
  bool warn_unused = false;           // --warn-unused-build-args: warn instead of failing
  std::vector<std::string> warnings;  // lines skipped in build-arg files

  // "KEY=VALUE" from --build-arg; key and value are trimmed; throws when there is no '=' or no key.
  void add(std::string_view key_equals_value);
  // The KEY=VALUE lines of a --build-arg-file (file_name is for messages). Blank lines and
  // '#' comments are skipped; other malformed lines are skipped with a warning.
  void add_file_text(std::string_view text, const std::string& file_name);
};

// Stages of one definition file, templated; the last stage is the one assembled into the image.
struct ParseResult {
  std::vector<Definition> stages;
  std::vector<std::string> warnings;  // unused build args (with warn_unused), skipped lines
  const Definition& last() const { return stages.back(); }
};

// Apptainer's ParseDefinitionFile: the whole text as one definition (raw == fullraw == text).
// No splitting at Bootstrap lines and no templating: {{ }} stays as written.
Definition parse_definition(std::string_view text, const std::string& name);

// Apptainer's parser.All: the text split at every line starting "Bootstrap:" (any case); chunks
// with nothing in them (comments only) are dropped; raw is the stage's own text, fullraw the
// whole text. More than one stage → every stage needs a header. No templating.
std::vector<Definition> parse_stages(std::string_view text, const std::string& name);

// What the build uses (Apptainer's MakeAllDefs): parse_stages, then every stage's text has its
// {{ name }} placeholders replaced (build args, else that stage's %arguments defaults; undefined →
// error) and is parsed again; fullraw = all stage texts after templating. Build args no
// placeholder consumed → error, or a warning with args.warn_unused.
ParseResult parse(std::string_view text, const std::string& name, const BuildArgs& args = {});

// Reads path and parse()s it; messages name the path as given.
ParseResult parse_file(const std::string& path, const BuildArgs& args = {});

// BuildArgs from the command line: files read in order, then the KEY=VALUE options.
BuildArgs make_build_args(const std::vector<std::string>& build_args,
                          const std::vector<std::string>& build_arg_files, bool warn_unused);

// The header keywords Apptainer accepts, in their documented spelling ("Bootstrap", "OSVersion"…).
const std::vector<std::string>& header_keywords();
// The section names Apptainer accepts, without '%' (help setup files … appinstall … appstart).
const std::vector<std::string>& section_names();

}  // namespace rbox::deffile
