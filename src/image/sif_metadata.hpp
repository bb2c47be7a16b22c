// Image metadata as Apptainer's `inspect --all` sees it: labels, definition, runscript, test,
// startscript, help and environment scripts from /.singularity.d (and SCIF apps), gathered from any
// tree (a directory or a SquashFS, through two callbacks), and the inspect-metadata.json SIF object
// that carries the same data. Reads only; the callbacks decide how paths are resolved safely.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rbox::image {

struct AppMetadata {
  std::map<std::string, std::string> environment;  // path in image → content
  std::map<std::string, std::string> labels;
  std::string runscript, test, helpfile;
};

struct InspectMetadata {
  std::map<std::string, AppMetadata> apps;
  std::map<std::string, std::string> environment;  // path in image → content
  std::map<std::string, std::string> labels;
  std::string runscript, test, helpfile, deffile, startscript;

  bool empty() const;
};

// Reads a regular file inside the image (absolute path); nullopt when missing.
using ReadImageFile = std::function<std::optional<std::string>(const std::string& path)>;
// Names in a directory inside the image; nullopt when it is not a directory.
using ListImageDir = std::function<std::optional<std::vector<std::string>>(const std::string& path)>;

InspectMetadata collect_metadata(const ReadImageFile& read, const ListImageDir& list);

// {"data":{"attributes":{…}},"type":"container"}, fields in Apptainer's order, empty ones omitted.
// pretty: one tab per level, as `apptainer inspect --json`; else compact (the SIF object).
std::string metadata_json(const InspectMetadata& m, bool pretty);
// Parses inspect-metadata.json; throws rbox::Error on malformed JSON.
InspectMetadata parse_metadata_json(std::string_view text);

// Callbacks over a directory on the host (a sandbox), resolving paths inside it.
ReadImageFile read_from_dir(const std::string& root);
ListImageDir list_from_dir(const std::string& root);

}  // namespace rbox::image
