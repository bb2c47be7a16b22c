// build::Metadata (metadata.hpp). File contents come from runtime/ (embedded); layout, modes and
// merge rules follow Apptainer's makeBaseEnv, insertMetadata, addBuildLabels and apps plugin.
#include "build/metadata.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "util/embedded.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::build {
namespace {

constexpr const char* kLabelsFile = "/.build.labels";  // $APPTAINER_LABELS during %post

std::string embedded(const std::string& path) {
  const auto* f = embedded::find(path);
  if (!f) throw Error("internal: runtime/" + path + " is not embedded in this rbox binary");
  return std::string(embedded::contents(*f));
}

bool is_shell_name(const std::string& s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  for (char c : s)
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return false;
  return true;
}

// Apptainer's shell.Escape: backslash, double quote, backtick and dollar get a backslash.
std::string shell_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"' || c == '`' || c == '$') out += '\\';
    out += c;
  }
  return out;
}

// Apptainer's shell.EscapeSingleQuotes: ' → '"'"'.
std::string escape_single_quotes(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\'')
      out += "'\"'\"'";
    else
      out += c;
  }
  return out;
}

// Apptainer's shell.ArgsQuoted: each word in double quotes, shell-escaped, space separated.
std::string args_quoted(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    out += "\"" + shell_escape(w) + "\"";
  }
  return out;
}

// Go's %q for the strings that reach it here: a double-quoted Go literal.
std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// "set -- 'w' "$@"" lines, last word first, so the words end up in order in front of $@.
std::string prepend_lines(const std::vector<std::string>& words, const std::string& indent) {
  std::string out;
  for (size_t i = words.size(); i-- > 0;)
    out += indent + "set -- '" + escape_single_quotes(words[i]) + "' \"$@\"\n";
  return out;
}

}  // namespace

SectionFilter SectionFilter::parse(const std::string& comma_list) {
  static const std::vector<std::string> kValid = {"all",       "pre",         "setup", "files",
                                                  "post",      "environment", "test",  "startscript",
                                                  "runscript", "help",        "labels"};
  SectionFilter f;
  for (auto name : str::split(comma_list, ',')) {
    name = str::lower(str::trim(name));
    if (name.empty()) continue;
    bool ok = false;
    for (const auto& v : kValid) ok = ok || v == name;
    if (!ok) throw Error("--section: unknown section '" + name + "'; valid: " + str::join(kValid, ", "));
    if (name == "all") return SectionFilter{};
    f.only_.insert(name);
  }
  return f;
}

void write_base_environment(const RootFs& root, bool overwrite) {
  if (auto st = root.stat("", true); st && !(st->st_mode & 0200)) {
    log::info("adding owner write permission to the build root " + root.path());
    UniqueFd fd = root.open("", O_RDONLY | O_DIRECTORY);
    if (::fchmod(fd.get(), st->st_mode | 0200) != 0) throw sys_error("chmod", root.path());
  }
  for (const char* d : {".singularity.d/libs", ".singularity.d/actions", ".singularity.d/env", "dev", "proc",
                        "root", "var/tmp", "tmp", "etc", "sys", "home"})
    root.mkdirs(d, 0755);
  const std::pair<const char*, const char*> links[] = {
      {"singularity", ".singularity.d/runscript"}, {".run", ".singularity.d/actions/run"},
      {".exec", ".singularity.d/actions/exec"},    {".test", ".singularity.d/actions/test"},
      {".shell", ".singularity.d/actions/shell"},  {"environment", ".singularity.d/env/90-environment.sh"}};
  for (const auto& [name, target] : links) {
    // Apptainer only adds a link where nothing resolves; a dangling entry is left alone.
    if (root.stat(name, true) || root.stat(name, false)) continue;
    root.symlink(target, name);
  }
  root.write_file("etc/hosts", "", 0644, overwrite);
  root.write_file("etc/resolv.conf", "", 0644, overwrite);
  for (const char* a : {"exec", "run", "shell", "start", "test"})
    root.write_file(std::string(".singularity.d/actions/") + a, embedded(std::string("actions/") + a), 0755,
                    overwrite);
  for (const char* e : {"01-base.sh", "90-environment.sh", "95-apps.sh", "99-base.sh", "99-runtimevars.sh"})
    root.write_file(std::string(".singularity.d/env/") + e, embedded(std::string("env/") + e), 0755,
                    overwrite);
  root.write_file(".singularity.d/runscript", embedded("runscript"), 0755, overwrite);
  root.write_file(".singularity.d/startscript", embedded("startscript"), 0755, overwrite);
}

std::string oci_runscript(const std::vector<std::string>& entrypoint, const std::vector<std::string>& cmd) {
  const std::string ep_set = prepend_lines(entrypoint, "        ");
  const std::string cmd_set = prepend_lines(cmd, "        ");
  const std::string cmd_set_inner = prepend_lines(cmd, "            ");
  std::string s = "#!/bin/sh\n";
  s += "OCI_ENTRYPOINT='" + (entrypoint.empty() ? "" : escape_single_quotes(args_quoted(entrypoint))) + "'\n";
  s += "OCI_CMD='" + (cmd.empty() ? "" : escape_single_quotes(args_quoted(cmd))) + "'\n";
  s += "\n"
       "# With SINGULARITY_NO_EVAL set (run --no-eval) the command line is put together the OCI way:\n"
       "# ENTRYPOINT and CMD words are used as they are, never passed through the shell.\n"
       "if [ -n \"$SINGULARITY_NO_EVAL\" ]; then\n"
       "    # ENTRYPOINT alone: it receives the arguments.\n"
       "    if [ -z \"$OCI_CMD\" ] && [ -n \"$OCI_ENTRYPOINT\" ]; then\n" +
       ep_set +
       "        exec \"$@\"\n"
       "    fi\n"
       "\n"
       "    # CMD alone: used when no arguments were given, replaced by them otherwise.\n"
       "    if [ -n \"$OCI_CMD\" ] && [ -z \"$OCI_ENTRYPOINT\" ]; then\n";
  if (!cmd.empty()) s += "        if [ $# -eq 0 ]; then\n" + cmd_set_inner + "        fi\n";
  s += "        exec \"$@\"\n"
       "    fi\n"
       "\n"
       "    # Both: ENTRYPOINT followed by the arguments, or by CMD when there are none.\n";
  if (!entrypoint.empty()) {
    s += "    if [ $# -gt 0 ]; then\n" + ep_set + "    else\n" + cmd_set + ep_set + "    fi\n";
  } else if (!cmd.empty()) {
    s += "    if [ $# -eq 0 ]; then\n" + cmd_set + "    fi\n";
  }
  s += "    exec \"$@\"\n"
       "fi\n"
       "\n"
       "# Default: ENTRYPOINT plus the arguments (or CMD when none were given) become one string that\n"
       "# the shell evaluates, so variables in them expand; each argument is double-quoted first.\n"
       "CMDLINE_ARGS=\"\"\n"
       "for arg in \"$@\"; do\n"
       "    CMDLINE_ARGS=\"${CMDLINE_ARGS} \\\"$arg\\\"\"\n"
       "done\n"
       "\n"
       "if [ $# -gt 0 ]; then\n"
       "    SINGULARITY_OCI_RUN=\"${OCI_ENTRYPOINT} ${CMDLINE_ARGS}\"\n"
       "else\n"
       "    SINGULARITY_OCI_RUN=\"${OCI_ENTRYPOINT} ${OCI_CMD}\"\n"
       "fi\n"
       "\n"
       "# Runtimes recognise this line and may interpret the script themselves.\n"
       "eval \"set ${SINGULARITY_OCI_RUN}\"\n"
       "exec \"$@\"\n";
  return s;
}

std::string oci_env_script(const std::vector<std::string>& env) {
  std::string s = "#!/bin/sh\n";
  for (const auto& kv : env) {
    size_t eq = kv.find('=');
    std::string key = kv.substr(0, eq);
    if (!is_shell_name(key)) {
      log::warn("image environment variable '" + key + "' is not a valid shell name; skipped");
      continue;
    }
    if (eq == std::string::npos) {
      s += "export " + key + "=\"${" + key + ":-}\"\n";
    } else if (key == "PATH") {
      s += "export PATH=" + go_quote(shell_escape(kv.substr(eq + 1))) + "\n";
    } else {
      s += "export " + key + "=\"${" + key + ":-" + go_quote(shell_escape(kv.substr(eq + 1))) + "}\"\n";
    }
  }
  return s;
}

void write_oci_metadata(const RootFs& root, const OciImageConfig& config) {
  root.write_file(".singularity.d/runscript", oci_runscript(config.entrypoint, config.cmd), 0755);
  root.write_file(".singularity.d/env/10-docker2singularity.sh", oci_env_script(config.env), 0755);
  root.write_file(".singularity.d/labels.json", go_json_labels(config.labels), 0644);
}

std::string write_apps(const RootFs& root, const deffile::Definition& def, const HostCopy& copy) {
  std::string globals, post;
  for (const auto& app : def.apps()) {
    const std::string base = "scif/apps/" + app.name, meta = base + "/scif", data = "scif/data/" + app.name;
    for (const std::string& d :
         {base, meta, base + "/bin", base + "/lib", meta + "/env", data + "/input", data + "/output"})
      root.mkdirs(d, 0755);
    const std::string& n = app.name;
    root.write_file(meta + "/env/01-base.sh",
                    "#!/bin/sh\n\nSCIF_APPNAME=" + n + "\nSCIF_APPROOT=\"/scif/apps/" + n +
                        "\"\nSCIF_APPMETA=\"/scif/apps/" + n +
                        "/scif\"\nSCIF_DATA=\"/scif/data\"\nSCIF_APPDATA=\"/scif/data/" + n +
                        "\"\nSCIF_APPINPUT=\"/scif/data/" + n + "/input\"\nSCIF_APPOUTPUT=\"/scif/data/" + n +
                        "/output\"\nexport SCIF_APPDATA SCIF_APPNAME SCIF_APPROOT SCIF_APPMETA SCIF_APPINPUT "
                        "SCIF_APPOUTPUT SCIF_DATA\n",
                    0755);
    if (!app.environment.empty()) root.write_file(meta + "/env/90-environment.sh", app.environment, 0755);
    if (!app.run.empty()) root.write_file(meta + "/runscript", "#!/bin/sh\n\n" + app.run + "\n", 0755);
    if (!app.start.empty()) root.write_file(meta + "/startscript", "#!/bin/sh\n\n" + app.start + "\n", 0755);
    if (!app.test.empty()) root.write_file(meta + "/test", "#!/bin/sh\n\n" + app.test + "\n", 0755);
    if (!app.help.empty()) root.write_file(meta + "/runscript.help", app.help, 0644);
    for (const auto& raw : str::split_lines(app.files)) {
      std::string line = str::trim(raw);
      if (line.empty() || line[0] == '#') continue;
      line = str::trim(line.substr(0, line.find('#')));
      size_t sp = line.find(' ');
      std::string src = line.substr(0, sp),
                  dst = sp == std::string::npos ? src : str::trim(line.substr(sp + 1));
      copy(src, "/" + base + "/" + dst);
    }
    std::map<std::string, std::string> labels{{"SCIF_APP_NAME", n}};
    for (const auto& raw : str::split_lines(str::trim(app.labels))) {
      std::string line = str::trim(raw);
      if (line.empty() || line[0] == '#') continue;
      size_t sp = line.find(' ');
      labels[str::trim(line.substr(0, sp))] = sp == std::string::npos ? "" : str::trim(line.substr(sp + 1));
    }
    root.write_file(meta + "/labels.json", go_json_labels(labels), 0644);

    // Globals for every app, with names made into shell identifiers.
    std::string id = n;
    for (char& c : id)
      if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) c = '_';
    globals += "## App Global Exports For: " + id + "\n\t\nSCIF_APPDATA_" + id + "=/scif/data/" + id +
               "\nSCIF_APPMETA_" + id + "=/scif/apps/" + id + "/scif\nSCIF_APPROOT_" + id + "=/scif/apps/" +
               id + "\nSCIF_APPBIN_" + id + "=/scif/apps/" + id + "/bin\nSCIF_APPLIB_" + id + "=/scif/apps/" +
               id + "/lib\n\nexport SCIF_APPDATA_" + id + " SCIF_APPMETA_" + id + " SCIF_APPROOT_" + id +
               " SCIF_APPBIN_" + id + " SCIF_APPLIB_" + id + "\n";
    if (root.exists(meta + "/env/90-environment.sh"))
      globals += "export SCIF_APPENV_" + id + "=\"/scif/apps/" + id + "/scif/env/90-environment.sh\"\n";
    if (root.exists(meta + "/labels.json"))
      globals += "export SCIF_APPLABELS_" + id + "=\"/scif/apps/" + id + "/scif/labels.json\"\n";
    if (root.exists(meta + "/runscript"))
      globals += "export SCIF_APPRUN_" + id + "=\"/scif/apps/" + id + "/scif/runscript\"\n";
    post += "\ncd /\n. /scif/apps/" + n + "/scif/env/01-base.sh\n\ncd /scif/apps/" + n + "\n" + app.install +
            "\n\ncd /\n";
  }
  root.write_file(".singularity.d/env/94-appsbase.sh", globals, 0755);
  return post;
}

std::string label_schema_date(std::time_t t) {
  static const char* kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
  static const char* kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                  "July",    "August",   "September", "October", "November", "December"};
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s_%d_%s_%d_%d:%d:%d_%s", kDays[tm.tm_wday], tm.tm_mday, kMonths[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_zone ? tm.tm_zone : "UTC");
  return buf;
}

std::map<std::string, std::string> build_labels(const deffile::Definition& stage, const BuildInfo& info) {
  std::time_t now = info.now ? info.now : std::time(nullptr);
  std::map<std::string, std::string> l;
  l["org.label-schema.schema-version"] = "1.0";
  std::tm tm{};
  ::localtime_r(&now, &tm);
  char rfc[64];
  std::strftime(rfc, sizeof rfc, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string z = "Z";  // Go's RFC 3339 writes UTC as Z, other zones as ±hh:mm
  if (tm.tm_gmtoff != 0) {
    long off = tm.tm_gmtoff < 0 ? -tm.tm_gmtoff : tm.tm_gmtoff;
    char buf[48];
    std::snprintf(buf, sizeof buf, "%c%02ld:%02ld", tm.tm_gmtoff < 0 ? '-' : '+', off / 3600,
                  (off % 3600) / 60);
    z = buf;
  }
  l["org.opencontainers.image.created"] = std::string(rfc) + z;
  l["org.label-schema.build-date"] = label_schema_date(now);
  l["org.label-schema.usage.apptainer.version"] = std::string("rbox-") + RBOX_VERSION;
  if (!stage.help.script.empty()) {
    l["org.label-schema.usage"] = "/.singularity.d/runscript.help";
    l["org.label-schema.usage.apptainer.runscript.help"] = "/.singularity.d/runscript.help";
  }
  if ((!info.update || info.force) && stage.header)
    for (const auto& [k, v] : *stage.header) l["org.label-schema.usage.singularity.deffile." + k] = v;
  if (!info.base_name.empty()) l["org.opencontainers.image.base.name"] = info.base_name;
  if (!info.base_digest.empty()) l["org.opencontainers.image.base.digest"] = info.base_digest;
  l["org.opencontainers.image.architecture"] = info.arch;
  if (!info.arch_variant.empty()) l["org.opencontainers.image.variant"] = info.arch_variant;
  l["org.label-schema.build-arch"] = info.arch;
  return l;
}

void write_metadata(const RootFs& root, const deffile::Definition& stage, const std::string& fullraw,
                    const SectionFilter& sections, const BuildInfo& info) {
  const std::string sd = ".singularity.d";
  // %help
  if (sections.runs("help") && !stage.help.script.empty()) {
    if (!root.exists(sd + "/runscript.help") || info.force)
      root.write_file(sd + "/runscript.help", stage.help.script + "\n", 0644);
    else
      log::warn("help text already exists in the image and --force was not given: not replaced");
  }
  // labels.json
  std::map<std::string, std::string> labels;
  if (auto text = root.read_file(sd + "/labels.json"); text && !str::trim(*text).empty()) {
    try {
      auto j = nlohmann::json::parse(*text);
      if (j.is_object())
        for (auto& [k, v] : j.items()) labels[k] = v.is_string() ? v.get<std::string>() : v.dump();
    } catch (const std::exception& e) {
      throw Error(root.host_path(sd + "/labels.json") + ": not valid JSON: " + e.what());
    }
  }
  if (auto text = root.read_file(kLabelsFile)) {
    root.remove(kLabelsFile);
    for (const auto& [k, v] : deffile::parse_labels(*text)) labels[k] = v;
  }
  for (const auto& [k, v] : build_labels(stage, info)) labels[k] = v;
  if (sections.runs("labels")) {
    for (const auto& [k, v] : stage.labels) {
      if (labels.count(k) && !info.force) {
        if (labels[k] != v)
          log::warn("label " + k + " already exists and --force was not given: not replaced");
        continue;
      }
      labels[k] = v;
    }
  }
  root.write_file(sd + "/labels.json", go_json_labels(labels), 0644);
  // Singularity (the definition), previous one kept in bootstrap_history/
  if (root.exists(sd + "/Singularity")) {
    root.mkdirs(sd + "/bootstrap_history", 0755);
    std::string hist =
        sd + "/bootstrap_history/Apptainer" + std::to_string(root.list(sd + "/bootstrap_history").size());
    root.rename(sd + "/Singularity", hist);
  }
  root.write_file(sd + "/Singularity", fullraw, 0644);
  // %environment
  if (sections.runs("environment") && !stage.environment.script.empty()) {
    const std::string env = sd + "/env/90-environment.sh";
    if (!root.exists(env))
      root.write_file(env, "#!/bin/sh\n\n" + stage.environment.script + "\n", 0755);
    else
      root.append_file(env, "\n" + stage.environment.script + "\n");
  }
  if (sections.runs("startscript") && !stage.startscript.script.empty())
    root.write_file(sd + "/startscript", deffile::shebang_script(stage.startscript), 0755);
  if (sections.runs("runscript") && !stage.runscript.script.empty())
    root.write_file(sd + "/runscript", deffile::shebang_script(stage.runscript), 0755);
  if (sections.runs("test") && !stage.test.script.empty())
    root.write_file(sd + "/test", deffile::shebang_script(stage.test), 0755);
}

std::string go_json_string(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
          out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string go_json_labels(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return "{}";
  std::string out = "{\n";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ",\n";
    first = false;
    out += "\t" + go_json_string(k) + ": " + go_json_string(v);
  }
  return out + "\n}";
}

}  // namespace rbox::build
