// Implementation of container/bind_spec.hpp. Apptainer splits a bind list on unescaped commas;
// a piece that is only an option word ("ro", "rw") continues the previous spec's options, so
// "-B /a:/b:ro,rw" is not two binds.
#include "container/bind_spec.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::container {

namespace {

// Splits on sep, honouring backslash escapes of sep (and of the other separator, kept escaped
// so the second split still sees them). Returns pieces with escapes of sep removed.
std::vector<std::string> split_escaped(std::string_view s, char sep) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      char n = s[i + 1];
      if (n == sep) {
        out.back() += n;
        ++i;
        continue;
      }
      out.back() += c;  // keep other escapes for the next level
      continue;
    }
    if (c == sep) {
      out.emplace_back();
      continue;
    }
    out.back() += c;
  }
  return out;
}

std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == ',' || s[i + 1] == ':' || s[i + 1] == '\\')) {
      out += s[++i];
      continue;
    }
    out += s[i];
  }
  return out;
}

bool is_option_word(std::string_view w) {
  return w == "ro" || w == "rw" || str::starts_with(w, "image-src=") || str::starts_with(w, "id=");
}

void apply_option(BindSpec& b, std::string_view opt, std::string_view where) {
  if (opt == "ro")
    b.read_only = true;
  else if (opt == "rw")
    b.read_only = false;
  else if (opt.empty())
    return;
  else if (str::starts_with(opt, "image-src=") || str::starts_with(opt, "id="))
    throw Error(std::string(where) + " '" + b.origin + "': binding from inside an image file (" +
                std::string(opt) + ") is not supported; bind a directory");
  else
    throw Error(std::string(where) + " '" + b.origin + "': unknown bind option '" + std::string(opt) +
                "'; use ro or rw");
}

}  // namespace

std::vector<BindSpec> parse_bind_list(std::string_view value, std::string_view where) {
  std::vector<BindSpec> out;
  // First level: commas. Colon escapes are kept for the second level.
  std::vector<std::string> pieces;
  {
    std::string cur;
    for (size_t i = 0; i < value.size(); ++i) {
      char c = value[i];
      if (c == '\\' && i + 1 < value.size()) {
        cur += c;
        cur += value[++i];
        continue;
      }
      if (c == ',') {
        pieces.push_back(cur);
        cur.clear();
        continue;
      }
      cur += c;
    }
    pieces.push_back(cur);
  }
  for (const auto& raw : pieces) {
    std::string piece = str::trim(raw);
    if (piece.empty()) continue;
    if (!out.empty() && is_option_word(piece)) {
      apply_option(out.back(), piece, where);
      continue;
    }
    auto parts = split_escaped(piece, ':');
    if (parts.size() > 3)
      throw Error(std::string(where) + " '" + unescape(piece) +
                  "': too many ':' fields; use src[:dst[:ro|rw]] and escape literal colons as \\:");
    BindSpec b;
    b.origin = unescape(piece);
    b.source = unescape(parts[0]);
    b.destination = parts.size() > 1 ? unescape(parts[1]) : b.source;
    if (b.source.empty()) throw Error(std::string(where) + " '" + b.origin + "': empty source path");
    if (b.destination.empty()) b.destination = b.source;
    // Apptainer treats "src:ro" (two fields, second an option) as src with option ro.
    if (parts.size() == 2 && (parts[1] == "ro" || parts[1] == "rw")) {
      b.destination = b.source;
      apply_option(b, parts[1], where);
    }
    if (parts.size() == 3) apply_option(b, parts[2], where);
    if (b.destination[0] != '/')
      throw Error(std::string(where) + " '" + b.origin + "': destination '" + b.destination +
                  "' must be an absolute path in the container");
    out.push_back(std::move(b));
  }
  return out;
}

BindSpec parse_mount_spec(std::string_view value) {
  // Docker's --mount is CSV: fields may be double-quoted to contain commas.
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (char c : value) {
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (c == ',' && !quoted) {
      fields.emplace_back();
      continue;
    }
    fields.back() += c;
  }
  if (quoted) throw Error("--mount '" + std::string(value) + "': unbalanced double quote");
  BindSpec b;
  b.origin = std::string(value);
  std::string type;
  for (const auto& f : fields) {
    std::string field = str::trim(f);
    if (field.empty()) continue;
    auto eq = field.find('=');
    std::string key = str::lower(field.substr(0, eq));
    std::string val = eq == std::string::npos ? "" : field.substr(eq + 1);
    if (key == "type")
      type = val;
    else if (key == "source" || key == "src")
      b.source = val;
    else if (key == "destination" || key == "dst" || key == "target")
      b.destination = val;
    else if (key == "readonly" || key == "ro")
      b.read_only = eq == std::string::npos || val == "true" || val == "1";
    else if (key == "bind-propagation" || key == "nonested" || key == "bind-nonrecursive")
      continue;  // accepted for compatibility; rbox binds are recursive and private
    else if (key == "image-src" || key == "id")
      throw Error("--mount '" + b.origin + "': binding from inside an image file is not supported");
    else
      throw Error("--mount '" + b.origin + "': unknown field '" + key +
                  "'; use type=bind,src=PATH,dst=PATH[,ro]");
  }
  if (type != "bind")
    throw Error("--mount '" + b.origin + "': only type=bind is supported (got '" + type + "')");
  if (b.source.empty()) throw Error("--mount '" + b.origin + "': missing src=PATH");
  if (b.destination.empty()) throw Error("--mount '" + b.origin + "': missing dst=PATH");
  if (b.destination[0] != '/')
    throw Error("--mount '" + b.origin + "': destination '" + b.destination + "' must be absolute");
  return b;
}

}  // namespace rbox::container
