// Interpretations of a parsed Definition that Apptainer's build applies (labels, %files sources,
// section command lines, shebang scripts, SCIF apps). Pure string work: nothing here runs or
// writes anything.
#include "deffile/definition.hpp"

#include "deffile/go_text.hpp"
#include "util/error.hpp"

namespace rbox::deffile {

std::string Definition::header_value(const std::string& key) const {
  if (!header) return {};
  auto it = header->find(key);
  return it == header->end() ? std::string() : it->second;
}

std::vector<App> Definition::apps() const {
  std::vector<App> out;
  for (const auto& name : app_order) {
    App app;
    app.name = name;
    auto body = [&](const char* section) -> std::string {
      if (!custom) return {};
      auto it = custom->find(std::string(section) + " " + name);
      return it == custom->end() ? std::string() : it->second;
    };
    app.install = body("appinstall");
    app.labels = body("applabels");
    app.files = body("appfiles");
    app.environment = body("appenv");
    app.test = body("apptest");
    app.help = body("apphelp");
    app.run = body("apprun");
    app.start = body("appstart");
    out.push_back(std::move(app));
  }
  return out;
}

std::map<std::string, std::string> parse_labels(const std::string& body) {
  std::map<std::string, std::string> labels;
  std::string_view rest = detail::trim_space(body);
  for (;;) {
    size_t nl = rest.find('\n');
    std::string_view line = detail::trim_space(rest.substr(0, nl));
    if (!line.empty() && line[0] != '#') {
      size_t sp = line.find(' ');
      std::string_view key = line.substr(0, sp);
      std::string_view value = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
      labels[std::string(detail::trim_space(key))] = std::string(detail::trim_space(value));
    }
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return labels;
}

std::vector<FileTransfer> parse_app_files(const std::string& body) {
  std::vector<FileTransfer> out;
  std::string_view rest = body;
  for (;;) {
    size_t nl = rest.find('\n');
    std::string_view line = detail::trim_space(rest.substr(0, nl));
    if (!line.empty() && line[0] != '#') {
      line = detail::trim_space(line.substr(0, line.find('#')));
      size_t sp = line.find(' ');
      std::string src(line.substr(0, sp));
      out.push_back({src, sp == std::string_view::npos ? src : std::string(line.substr(sp + 1))});
    }
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  return out;
}

FilesSource files_source(const FilesSection& section) {
  std::string_view clean = section.args;
  clean = clean.substr(0, clean.find('#'));
  if (clean.empty()) return {FilesSource::Kind::kHost, {}};
  auto words = detail::fields(clean);
  if (words.size() != 2) return {FilesSource::Kind::kIgnored, {}};
  return {FilesSource::Kind::kStage, std::string(words[1])};
}

std::vector<std::string> section_command(const std::string& section_name, const Script& section,
                                         const std::string& script_path) {
  std::vector<std::string> argv = {"/bin/sh", "-ex"};
  std::string_view clean = section.args;
  clean = clean.substr(0, clean.find('#'));
  auto params = detail::fields(clean);
  for (size_t i = 0; i < params.size(); ++i) {
    if (params[i] != "-c") continue;
    if (i + 1 == params.size())
      throw Error("%" + section_name + " -c: missing shell after '-c'; write e.g. '%" + section_name +
                  " -c /bin/bash'");
    for (size_t j = 0; j <= i; ++j) argv.emplace_back(params[j]);
    std::string shell;
    for (size_t j = i + 1; j < params.size(); ++j) {
      if (!shell.empty()) shell += ' ';
      shell += params[j];
    }
    argv.push_back(shell + " " + script_path);
    return argv;
  }
  for (auto p : params) argv.emplace_back(p);
  argv.push_back(script_path);
  return argv;
}

std::string shebang_script(const Script& section) {
  std::string shebang = "#!/bin/sh";
  std::string body;
  if (detail::trim_space(section.script).starts_with("#!")) {
    size_t nl = section.script.find('\n');
    shebang = std::string(detail::trim_space(std::string_view(section.script).substr(0, nl)));
    if (nl != std::string::npos) body = section.script.substr(nl + 1);
  } else {
    body = section.script;
  }
  if (!section.args.empty()) shebang += " " + section.args.substr(0, section.args.find('#'));
  return shebang + "\n\n" + body + "\n";
}

}  // namespace rbox::deffile
