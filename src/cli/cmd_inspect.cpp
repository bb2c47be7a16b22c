// rbox inspect: show a parsed definition file (--deffile, here) or an image's metadata
// (inspect_image.cpp). Only formats what deffile/ parsed; never builds or runs anything.
#include <algorithm>
#include <cctype>
#include <iostream>
#include <sstream>

#include "cli/app.hpp"
#include "deffile/json.hpp"
#include "deffile/parser.hpp"
#include "util/error.hpp"
#include "util/exit_codes.hpp"
#include "util/log.hpp"

namespace rbox::cli {

namespace {

// "osversion" → "OSVersion", "otherurl2" → "OtherURL2": the spelling the documentation uses.
std::string spelled(const std::string& key) {
  if (key.starts_with("otherurl")) return "OtherURL" + key.substr(8);
  for (const auto& word : deffile::header_keywords()) {
    std::string lower = word;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == key) return word;
  }
  return key;
}

// The body without trailing blank lines, and its line count.
std::pair<std::string, size_t> trimmed_body(const std::string& body) {
  std::string b = body;
  while (!b.empty() && (b.back() == '\n' || b.back() == ' ' || b.back() == '\t' || b.back() == '\r'))
    b.pop_back();
  while (!b.empty() && b.front() == '\n') b.erase(0, 1);
  if (b.empty()) return {"", 0};
  return {b, static_cast<size_t>(std::count(b.begin(), b.end(), '\n')) + 1};
}

void print_body(std::ostream& out, const std::string& body) {
  std::istringstream in(trimmed_body(body).first);
  for (std::string line; std::getline(in, line);) out << "    |" << (line.empty() ? "" : " ") << line << "\n";
}

void print_section(std::ostream& out, const std::string& title, const deffile::Script& s) {
  if (s.empty()) return;
  size_t lines = trimmed_body(s.script).second;
  out << "  " << title;
  if (!s.args.empty()) out << " " << s.args;
  out << "  (" << lines << (lines == 1 ? " line" : " lines") << ")\n";
  print_body(out, s.script);
}

void print_stage(std::ostream& out, const deffile::Definition& d, size_t index, size_t count) {
  out << "stage " << index + 1 << " of " << count;
  if (!d.stage_name().empty()) out << " '" << d.stage_name() << "'";
  out << " (line " << d.first_line << ")" << (index + 1 == count && count > 1 ? ", assembled" : "") << "\n";
  out << "  header:";
  if (!d.header) out << " none";
  out << "\n";
  if (d.header) {
    // Bootstrap first, as in the file format's documentation; then the rest alphabetically.
    if (d.header->count("bootstrap")) out << "    Bootstrap: " << d.header->at("bootstrap") << "\n";
    for (const auto& [k, v] : *d.header)
      if (k != "bootstrap") out << "    " << spelled(k) << ": " << v << "\n";
  }
  // Sections in the order the build uses them.
  print_section(out, "%arguments", d.arguments);
  print_section(out, "%pre", d.pre);
  print_section(out, "%setup", d.setup);
  for (const auto& f : d.files) {
    auto source = deffile::files_source(f);
    out << "  %files" << (f.args.empty() ? "" : " " + f.args) << "  (" << f.files.size()
        << (f.files.size() == 1 ? " entry" : " entries");
    if (source.kind == deffile::FilesSource::Kind::kStage)
      out << ", copied from stage '" << source.stage << "'";
    if (source.kind == deffile::FilesSource::Kind::kIgnored)
      out << ", ignored: args are neither empty nor 'from STAGE'";
    out << ")\n";
    for (const auto& t : f.files)
      out << "    " << t.source << " -> " << (t.destination.empty() ? t.source : t.destination) << "\n";
  }
  print_section(out, "%post", d.post);
  print_section(out, "%environment", d.environment);
  print_section(out, "%runscript", d.runscript);
  print_section(out, "%startscript", d.startscript);
  print_section(out, "%test", d.test);
  print_section(out, "%help", d.help);
  if (!d.labels.empty()) {
    out << "  %labels  (" << d.labels.size() << ")\n";
    for (const auto& [k, v] : d.labels) out << "    " << k << " = " << v << "\n";
  }
  for (const auto& app : d.apps()) {
    out << "  app '" << app.name << "'\n";
    const std::pair<const char*, const std::string*> parts[] = {
        {"%appinstall", &app.install}, {"%appfiles", &app.files}, {"%appenv", &app.environment},
        {"%apprun", &app.run},         {"%appstart", &app.start}, {"%apptest", &app.test},
        {"%applabels", &app.labels},   {"%apphelp", &app.help}};
    for (const auto& [title, body] : parts) {
      if (body->empty()) continue;
      size_t lines = trimmed_body(*body).second;
      out << "    " << title << " " << app.name << "  (" << lines << (lines == 1 ? " line" : " lines")
          << ")\n";
      std::istringstream in(trimmed_body(*body).first);
      for (std::string line; std::getline(in, line);)
        out << "      |" << (line.empty() ? "" : " ") << line << "\n";
    }
  }
}

struct Opts {
  std::string target;
  bool deffile = false, json = false, all_stages = false, warn_unused = false;
  std::vector<std::string> build_args, build_arg_files;
};

int inspect_deffile(const Opts& o) {
  auto args = deffile::make_build_args(o.build_args, o.build_arg_files, o.warn_unused);
  auto result = deffile::parse_file(o.target, args);
  for (const auto& w : result.warnings) log::warn(w);
  const auto& stages = result.stages;
  std::ostringstream out;
  if (o.json && o.all_stages) {
    out << deffile::to_json_text(stages);  // parser.All's array, one Definition per stage
  } else if (o.json) {
    deffile::Definition d = stages.back();
    if (stages.size() == 1) {
      d.raw = d.fullraw;  // the whole file, as Apptainer's ParseDefinitionFile reports it
    } else {
      log::verbose(o.target + " has " + std::to_string(stages.size()) +
                   " stages; printing the last one, which is the one assembled (--all-stages prints all)");
    }
    out << deffile::to_json_text(d);
  } else {
    out << o.target << ": " << stages.size() << (stages.size() == 1 ? " stage" : " stages") << "\n";
    for (size_t i = 0; i < stages.size(); ++i) print_stage(out, stages[i], i, stages.size());
  }
  std::cout << out.str() << std::flush;
  return exit_code::kOk;
}

}  // namespace

void register_inspect(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<Opts>();
  auto* sub = add_command(app, "inspect", "Show the metadata of an image, or a parsed definition file",
                          {"rbox inspect env.sif", "rbox inspect --deffile env.def --json"});
  sub->add_option("target", o->target, "SIF file or sandbox directory; definition file with --deffile")
      ->required();
  sub->add_flag("--deffile", o->deffile, "Treat the target as a definition file and show how rbox parses it");
  sub->add_flag(
      "-j,--json", o->json,
      "Print JSON (for --deffile: Apptainer's Definition shape; the last stage of a multi-stage file)");
  sub->add_flag("--all-stages", o->all_stages,
                "With --deffile --json: an array with one Definition per stage");
  sub->add_option("--build-arg", o->build_args,
                  "Value for a {{ NAME }} placeholder (NAME=VALUE, repeatable)");
  sub->add_option("--build-arg-file", o->build_arg_files,
                  "File of NAME=VALUE lines for {{ NAME }} placeholders");
  sub->add_flag("--warn-unused-build-args", o->warn_unused,
                "Warn instead of failing when a build arg is not used by any placeholder");
  on_run(sub, ctx, [o] {
    if (o->deffile) return inspect_deffile(*o);
    if (o->all_stages || !o->build_args.empty() || !o->build_arg_files.empty() || o->warn_unused)
      throw Error("--all-stages and the --build-arg options only apply with --deffile", exit_code::kUsage);
    return inspect_image(o->target, o->json);
  });
}

}  // namespace rbox::cli
