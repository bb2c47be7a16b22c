// Build arguments: {{ name }} placeholders replaced per stage the way Apptainer's build does
// (internal/pkg/build/args: command line over %arguments defaults, placeholders on commented
// lines left alone, one level of nesting inside defaults, unused arguments fatal unless asked).
// The only I/O here is reading the definition and --build-arg-file texts.
#include <algorithm>
#include <set>

#include "deffile/go_text.hpp"
#include "deffile/parser.hpp"
#include "deffile/stage_split.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace rbox::deffile {

namespace {

using detail::trim_space;

// Apptainer's getKeyVal: "KEY=VALUE", both trimmed; the key must not be empty.
bool split_key_value(std::string_view text, std::string& key, std::string& value) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) return false;
  key = std::string(trim_space(text.substr(0, eq)));
  value = std::string(trim_space(text.substr(eq + 1)));
  return !key.empty();
}

// True when the text between the line start (or the previous replacement) and a placeholder
// matches Apptainer's commentLineRegexp \s*[#][^!]\s*.* — a '#' followed by anything but '!'.
bool looks_commented(std::string_view before) {
  for (size_t i = 0; i + 1 < before.size(); ++i)
    if (before[i] == '#' && before[i + 1] != '!') return true;
  return false;
}

int line_of(const detail::Chunk& chunk, size_t offset) {
  return chunk.first_line + static_cast<int>(std::count(
                                chunk.text.begin(), chunk.text.begin() + static_cast<long>(offset), '\n'));
}

// %arguments defaults of one stage (Apptainer's ReadDefaults).
std::map<std::string, std::string> read_defaults(const Definition& stage,
                                                 std::vector<std::string>& warnings) {
  std::map<std::string, std::string> defaults;
  for (const auto& line : detail::scan_lines(stage.arguments.script)) {
    std::string_view text = trim_space(line.text);
    if (text.empty() || text[0] == '#') continue;
    std::string key, value;
    if (!split_key_value(text, key, value)) {
      warnings.push_back(stage.source_name + ": %arguments: skipping '" + std::string(text) +
                         "': not a NAME=VALUE default");
      continue;
    }
    defaults[key] = value;
  }
  return defaults;
}

const std::string* lookup(const std::string& key, const std::map<std::string, std::string>& args,
                          const std::map<std::string, std::string>& defaults) {
  if (auto it = args.find(key); it != args.end()) return &it->second;
  if (auto it = defaults.find(key); it != defaults.end()) return &it->second;
  return nullptr;
}

// Apptainer's args.NewReader over one stage's text.
std::string substitute(const detail::Chunk& chunk, const std::string& name,
                       const std::map<std::string, std::string>& args,
                       const std::map<std::string, std::string>& defaults, std::set<std::string>& consumed) {
  std::string_view src = chunk.text;
  std::string out;
  size_t done = 0;  // end of the last replaced placeholder
  for (const auto& m : detail::find_placeholders(src)) {
    // The "line" Apptainer inspects starts at the last newline before the placeholder, but not
    // before the end of the previous replacement.
    size_t line_start = done;
    for (size_t i = m.begin + 1; i-- > done;) {
      if (src[i] == '\n') {
        line_start = i;
        break;
      }
    }
    if (looks_commented(src.substr(line_start, m.begin - line_start))) continue;

    std::string key(m.name);
    const std::string* value = lookup(key, args, defaults);
    if (!value)
      throw Error(detail::at(name, line_of(chunk, m.begin)) + "build argument '" + key +
                  "' is not defined; pass --build-arg " + key + "=VALUE or give it a default in %arguments");
    // One level of nesting: placeholders inside the value are replaced when known, else kept.
    // Only the outer name counts as used, as in Apptainer.
    std::string resolved = *value;
    for (const auto& inner : detail::find_placeholders(*value)) {
      const std::string* inner_value = lookup(std::string(inner.name), args, defaults);
      if (!inner_value) continue;
      std::string pattern = value->substr(inner.begin, inner.end - inner.begin);
      std::string replaced;
      for (size_t p = 0;;) {
        size_t q = resolved.find(pattern, p);
        replaced.append(resolved, p, q == std::string::npos ? std::string::npos : q - p);
        if (q == std::string::npos) break;
        replaced += *inner_value;
        p = q + pattern.size();
      }
      resolved = std::move(replaced);
    }
    out.append(src.substr(done, m.begin - done));
    out += resolved;
    consumed.insert(key);
    done = m.end;
  }
  out.append(src.substr(done));
  return out;
}

}  // namespace

void BuildArgs::add(std::string_view key_equals_value) {
  std::string key, value;
  if (!split_key_value(key_equals_value, key, value))
    throw Error("--build-arg '" + std::string(key_equals_value) + "': expected NAME=VALUE");
  values[key] = value;
}

void BuildArgs::add_file_text(std::string_view text, const std::string& file_name) {
  for (const auto& line : detail::scan_lines(text)) {
    std::string_view t = trim_space(line.text);
    if (t.empty() || t[0] == '#') continue;
    std::string key, value;
    if (!split_key_value(line.text, key, value)) {
      warnings.push_back(file_name + ":" + std::to_string(line.number) + ": skipping '" + std::string(t) +
                         "': not a NAME=VALUE line");
      continue;
    }
    values[key] = value;
  }
}

ParseResult parse(std::string_view text, const std::string& name, const BuildArgs& args) {
  // Parse once untemplated, as Apptainer does: errors surface as written, and each stage's
  // %arguments defaults are known before its placeholders are replaced.
  parse_stages(text, name);
  ParseResult result;
  result.warnings = args.warnings;
  std::set<std::string> consumed;
  std::string fullraw;
  for (const auto& chunk : detail::split_stages(text)) {
    auto before = chunk.text.empty() ? std::nullopt : detail::parse_chunk(chunk.text, name, chunk.first_line);
    if (!before) {
      fullraw += chunk.text;  // comment-only text before the first stage, kept verbatim
      continue;
    }
    auto defaults = read_defaults(*before, result.warnings);
    std::string templated = substitute(chunk, name, args.values, defaults, consumed);
    auto stage = detail::parse_chunk(templated, name, chunk.first_line);
    if (!stage) detail::throw_empty(name, chunk.first_line);
    fullraw += templated;
    result.stages.push_back(std::move(*stage));
  }
  for (auto& s : result.stages) s.fullraw = fullraw;

  std::vector<std::string> unused;
  for (const auto& [key, value] : args.values)
    if (!consumed.count(key)) unused.push_back(key);
  if (!unused.empty()) {
    std::string list = str::join(unused, ", ");
    if (!args.warn_unused)
      throw Error(name + ": unused build args: " + list +
                  "; use them as {{ NAME }} in the file, or pass --warn-unused-build-args");
    result.warnings.push_back(name + ": unused build args: " + list);
  }
  return result;
}

ParseResult parse_file(const std::string& path, const BuildArgs& args) {
  std::string text;
  try {
    text = fs::read_file(path);
  } catch (const Error& e) {
    throw Error(path + ": cannot read the definition file: " + e.message());
  }
  return parse(text, path, args);
}

BuildArgs make_build_args(const std::vector<std::string>& build_args,
                          const std::vector<std::string>& build_arg_files, bool warn_unused) {
  BuildArgs args;
  args.warn_unused = warn_unused;
  for (const auto& file : build_arg_files) {
    std::string text;
    try {
      text = fs::read_file(file);
    } catch (const Error& e) {
      throw Error("--build-arg-file " + file + ": " + e.message());
    }
    args.add_file_text(text, file);
  }
  for (const auto& kv : build_args) args.add(kv);
  return args;
}

}  // namespace rbox::deffile
