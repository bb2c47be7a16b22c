// rbox inspect IMAGE: labels, definition, runscript, environment and help stored in an image (SIF
// objects, or /.singularity.d read straight from the SquashFS or sandbox; nothing is mounted).
// --json prints Apptainer's `inspect --all --json` shape.
#include <iostream>

#include "cli/app.hpp"
#include "image/image.hpp"
#include "image/sif_metadata.hpp"

namespace rbox::cli {
namespace {

void section(std::string& out, const std::string& title, const std::string& body) {
  if (body.empty()) return;
  out += "== " + title + " ==\n" + body;
  if (body.back() != '\n') out += '\n';
  out += '\n';
}

std::string labels_text(const std::map<std::string, std::string>& labels) {
  std::string s;
  for (const auto& [k, v] : labels) s += k + ": " + v + "\n";
  return s;
}

std::string env_text(const std::map<std::string, std::string>& env) {
  std::string s;
  for (const auto& [path, content] : env) s += "--- " + path + " ---\n" + content + "\n";
  return s;
}

}  // namespace

int inspect_image(const std::string& target, bool json) {
  const image::Location loc = image::locate(target);
  const image::InspectMetadata m = image::read_metadata(loc);
  if (json) {
    std::cout << image::metadata_json(m, true) << "\n";
    return 0;
  }
  std::string out = "Image: " + target + " (" + image::format_name(loc.format);
  if (!loc.arch.empty()) out += ", " + loc.arch;
  out += ")\n\n";
  section(out, "Labels", labels_text(m.labels));
  section(out, "Definition", m.deffile);
  section(out, "Runscript", m.runscript);
  section(out, "Startscript", m.startscript);
  section(out, "Test", m.test);
  section(out, "Help", m.helpfile);
  section(out, "Environment", env_text(m.environment));
  for (const auto& [name, app] : m.apps) {
    section(out, "App " + name + ": Labels", labels_text(app.labels));
    section(out, "App " + name + ": Runscript", app.runscript);
    section(out, "App " + name + ": Test", app.test);
    section(out, "App " + name + ": Help", app.helpfile);
    section(out, "App " + name + ": Environment", env_text(app.environment));
  }
  if (m.empty()) out += "(no metadata: the image has no /.singularity.d files)\n";
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  std::cout << out;
  return 0;
}

}  // namespace rbox::cli
