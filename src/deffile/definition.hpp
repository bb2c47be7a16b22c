// The parsed definition file: Apptainer's types.Definition as plain data, plus the small
// interpretations the build pipeline needs (section script command lines, shebang scripts,
// %files sources, SCIF apps). Pure: no I/O, no execution.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rbox::deffile {

// A section: the text after its name on the % line ("-c /bin/bash") and its body, verbatim.
struct Script {
  std::string args;
  std::string script;
  bool empty() const { return args.empty() && script.empty(); }
  bool operator==(const Script&) const = default;
};

// One %files line: destination "" means "same path as the source".
struct FileTransfer {
  std::string source;
  std::string destination;
  bool operator==(const FileTransfer&) const = default;
};

// All %files sections with the same args, merged in file order ("" or e.g. "from build").
struct FilesSection {
  std::string args;
  std::vector<FileTransfer> files;
  bool operator==(const FilesSection&) const = default;
};

// Where a %files section copies from, the way Apptainer's build interprets its args.
struct FilesSource {
  enum class Kind { kHost, kStage, kIgnored } kind = Kind::kHost;
  std::string stage;  // for kStage
};

// The %app* sections of one SCIF app (bodies verbatim; "" when absent).
struct App {
  std::string name;
  std::string install, labels, files, environment, test, help, run, start;
};

// One build stage (or a whole single-stage file).
struct Definition {
  // Header keys lower-cased ("bootstrap", "from", "osversion" …); nullopt = no header at all.
  std::optional<std::map<std::string, std::string>> header;
  std::map<std::string, std::string> labels;  // %labels, later keys win
  Script help, environment, runscript, test, startscript;
  Script pre, setup, post, arguments;
  std::vector<FilesSection> files;
  // App sections keyed "appinstall NAME" etc. (Apptainer's customData); nullopt when none.
  std::optional<std::map<std::string, std::string>> custom;
  std::vector<std::string> app_order;  // app names in order of first appearance
  std::string raw;                     // this stage's text
  std::string fullraw;                 // the whole file's text (all stages)

  // Where this stage came from, for messages: "env.def" and its first line in that file.
  std::string source_name;
  int first_line = 1;

  bool operator==(const Definition&) const = default;

  // header value or "" (key lower-case).
  std::string header_value(const std::string& key) const;
  std::string bootstrap() const { return header_value("bootstrap"); }
  std::string stage_name() const { return header_value("stage"); }
  // The SCIF apps in app_order.
  std::vector<App> apps() const;
};

// Apptainer's GetLabels: "KEY VALUE" per line, split at the first space, '#' lines skipped.
std::map<std::string, std::string> parse_labels(const std::string& body);

// Apptainer's %appfiles lines (apps plugin): "SRC [DST]" split at the first space after dropping
// a '#' comment, no quoting; DST (relative to /scif/apps/NAME) defaults to SRC.
std::vector<FileTransfer> parse_app_files(const std::string& body);

// How a %files section's args are used by the build: "" → host; exactly two words (after
// dropping a '#' comment) → copy from the stage named by the second word; anything else is
// ignored by Apptainer, and by rbox (the build should warn).
FilesSource files_source(const FilesSection& section);

// The command that runs a %setup/%pre/%post/%test script file: /bin/sh -ex [ARGS…] SCRIPT, or
// with "-c SHELL…" in the args: /bin/sh -ex … -c "SHELL… SCRIPT". section_name is for the error
// ("%post -c" with nothing after it).
std::vector<std::string> section_command(const std::string& section_name, const Script& section,
                                         const std::string& script_path);

// %runscript/%startscript/%test as a file: the body's own #! line (or #!/bin/sh) with the
// section args appended, a blank line, the rest of the body and a newline.
std::string shebang_script(const Script& section);

}  // namespace rbox::deffile
