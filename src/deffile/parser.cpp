// The definition-file parser: Apptainer's ParseDefinitionFile and parser.All, rule for rule
// (tokenising at lines whose first word starts with '%', header continuation and '#' truncation,
// section concatenation, %files quoting, app order). Where Apptainer would crash (a Go panic) rbox
// reports an error instead. Pure: text in, Definition out; no file access here.
#include "deffile/parser.hpp"

#include <algorithm>

#include "deffile/go_text.hpp"
#include "deffile/stage_split.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::deffile {

namespace {

using detail::Line;
using detail::trim_space;

struct Keyword {
  const char* key;
  const char* spelling;
};
// Apptainer's validHeaders (deffile.go), plus the spelling the documentation uses.
constexpr Keyword kHeaders[] = {
    {"bootstrap", "Bootstrap"},
    {"from", "From"},
    {"includecmd", "IncludeCmd"},
    {"mirrorurl", "MirrorURL"},
    {"updateurl", "UpdateURL"},
    {"osversion", "OSVersion"},
    {"include", "Include"},
    {"library", "Library"},
    {"registry", "Registry"},
    {"namespace", "Namespace"},
    {"stage", "Stage"},
    {"product", "Product"},
    {"user", "User"},
    {"regcode", "Regcode"},
    {"productpgp", "ProductPGP"},
    {"registerurl", "RegisterURL"},
    {"modules", "Modules"},
    {"fingerprints", "Fingerprints"},
    {"confurl", "ConfURL"},
    {"setopt", "SetOpt"},
    {"target", "Target"},
    {"frontend", "Frontend"},
    {"filename", "Filename"},
    {"buildargs", "BuildArgs"},
};
constexpr const char* kSections[] = {"help", "setup",     "files", "labels",      "environment", "pre",
                                     "post", "runscript", "test",  "startscript", "arguments"};
constexpr const char* kAppSections[] = {"appinstall", "applabels", "appfiles", "appenv",
                                        "apptest",    "apphelp",   "apprun",   "appstart"};

bool is_standard_section(std::string_view key) {
  return std::find(std::begin(kSections), std::end(kSections), key) != std::end(kSections);
}
bool is_app_section(std::string_view key) {
  return std::find(std::begin(kAppSections), std::end(kAppSections), key) != std::end(kAppSections);
}

bool is_valid_header(const std::string& key) {
  for (const auto& k : kHeaders)
    if (key == k.key) return true;
  // Apptainer rewrites trailing digits to "&n" and looks up "otherurl&n": OtherURL0, OtherURL12 …
  // are valid, a bare "otherurl" is not.
  if (key.size() <= 8 || !key.starts_with("otherurl")) return false;
  return std::all_of(key.begin() + 8, key.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view strip_percent(std::string_view head) {  // strings.TrimLeft(head, "%")
  while (!head.empty() && head.front() == '%') head.remove_prefix(1);
  return head;
}

// strings.SplitN(s, " ", n)
std::vector<std::string_view> split_n(std::string_view s, size_t n) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < n) {
    size_t sp = s.find(' ');
    if (sp == std::string_view::npos) break;
    out.push_back(s.substr(0, sp));
    s.remove_prefix(sp + 1);
  }
  out.push_back(s);
  return out;
}

std::string join_lines(const std::vector<Line>& lines, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    out += lines[i].text;
    out += '\n';
  }
  return out;
}

class ChunkParser {
 public:
  ChunkParser(std::string_view text, const std::string& name, int first_line)
      : text_(text), name_(name), first_line_(first_line) {}

  std::optional<Definition> run() {
    auto lines = detail::scan_lines(text_, first_line_);
    if (lines.empty()) return std::nullopt;
    std::vector<size_t> heads;  // indexes of section lines
    for (size_t i = 0; i < lines.size(); ++i)
      if (detail::starts_section(lines[i].text)) heads.push_back(i);
    heads.push_back(lines.size());

    size_t next = 0;
    if (heads.front() > 0) {
      // The header token: everything before the first section (Apptainer trims it, then skips
      // it when nothing is left).
      header(lines, 0, heads.front());
    } else if (heads.size() > 1) {
      // The file starts with a section: Apptainer trims this first token as a whole, so the
      // section loses trailing blank lines, and a section with no body cannot be split.
      std::string token = join_lines(lines, 0, heads[1]);
      std::string_view t = trim_space(token);
      size_t nl = t.find('\n');
      if (nl == std::string_view::npos)
        throw Error(detail::at(name_, lines[0].number) + "section '" + std::string(t) +
                    "' has no body, and Apptainer cannot read a file that starts with an empty "
                    "section; add its content or a header line above it");
      section(t.substr(0, nl), t.substr(nl + 1), lines[0].number);
      next = 1;
    }
    for (size_t h = next; h + 1 < heads.size(); ++h) {
      size_t b = heads[h];
      section(lines[b].text, join_lines(lines, b + 1, heads[h + 1]), lines[b].number);
    }
    return populate();
  }

 private:
  [[noreturn]] void unknown_header(const std::string& spelled, int line) const {
    std::vector<std::string> spellings;
    for (const auto& k : kHeaders) spellings.emplace_back(k.spelling);
    spellings.emplace_back("OtherURL1");
    std::string msg = detail::at(name_, line) + "unknown header keyword '" + spelled + "'";
    std::string hint = str::closest(spelled, spellings);
    if (!hint.empty()) {
      msg += " (did you mean '" + hint + "'?)";
    } else if (!spelled.empty() && spelled[0] == '{') {
      msg += "; this looks like JSON, but a definition file starts with 'Bootstrap: …'";
    } else {
      msg += "; valid keywords: " + str::join(spellings, ", ");
    }
    throw Error(msg);
  }

  // Apptainer's doHeader, including its continuation state machine.
  void header(const std::vector<Line>& lines, size_t begin, size_t end) {
    while (begin < end && trim_space(lines[begin].text).empty()) ++begin;
    while (end > begin && trim_space(lines[end - 1].text).empty()) --end;
    std::map<std::string, std::string> values;
    std::string key_cont, val_cont, spelled_cont;
    for (size_t i = begin; i < end; ++i) {
      std::string_view line = trim_space(lines[i].text);
      int number = lines[i].number;
      if (line.empty() || line[0] == '#') {
        // Apptainer stores the pending value into a nil map here and crashes.
        if (!key_cont.empty())
          throw Error(detail::at(name_, number) + "the value of header keyword '" + spelled_cont +
                      "' ends with '\\' but the next line is blank or a comment; remove the '\\' "
                      "or continue the value on this line");
        continue;
      }
      std::string_view trimmed = line.substr(0, line.find('#'));
      std::string key, value, spelled;
      if (val_cont.empty()) {
        size_t colon = trimmed.find(':');
        if (colon == std::string_view::npos)
          throw Error(detail::at(name_, number) + "header line '" + std::string(line) +
                      "' has no ':'; header lines are 'Keyword: value' (e.g. 'Bootstrap: docker')");
        spelled = std::string(trim_space(trimmed.substr(0, colon)));
        key = ascii_lower(spelled);
        value = std::string(trim_space(trimmed.substr(colon + 1)));
      } else {
        key = key_cont;
        spelled = spelled_cont;
        value = val_cont + std::string(trim_space(trimmed));
        key_cont.clear();
        val_cont.clear();
      }
      if (!value.empty() && value.back() == '\\') {
        key_cont = key;
        spelled_cont = spelled;
        val_cont = value.substr(0, value.size() - 1);
        if (val_cont.ends_with("\\n")) val_cont = val_cont.substr(0, val_cont.size() - 2) + "\n";
        continue;
      }
      if (!is_valid_header(key)) unknown_header(spelled, number);
      values[key] = value;
    }
    if (!values.empty()) header_ = std::move(values);
  }

  void remember(const std::string& key, std::string_view head, int line) {
    if (first_seen_.emplace(key, line).second) heads_.emplace(key, std::string(head));
  }

  // Apptainer's parseTokenSection.
  void section(std::string_view head, std::string_view body, int line) {
    std::string_view unprefixed = strip_percent(head);
    std::string key = ascii_lower(split_n(unprefixed, 2)[0]);
    if (key == "files") return files(unprefixed, body, line);
    if (is_app_section(key)) {
      auto parts = split_n(unprefixed, 3);
      if (parts.size() < 2)
        throw Error(detail::at(name_, line) + "'%" + key + "' needs the app's name: '%" + key + " NAME'");
      std::string app(parts[1]);
      key = std::string(parts[0]) + " " + app;
      if (std::find(app_order_.begin(), app_order_.end(), app) == app_order_.end()) app_order_.push_back(app);
      remember(key, head, line);
      sections_[key].script += body;
      return;
    }
    remember(key, head, line);
    Script& s = sections_[key];
    auto parts = split_n(unprefixed, 2);
    if (parts.size() == 2) s.args = std::string(parts[1]);
    s.script += body;
  }

  void files(std::string_view unprefixed, std::string_view body, int line) {
    FilesSection section;
    auto parts = split_n(unprefixed, 2);
    if (parts.size() == 2) section.args = std::string(parts[1]);
    int number = line + 1;
    for (size_t pos = 0; pos < body.size(); ++number) {
      size_t nl = body.find('\n', pos);
      std::string_view raw = body.substr(pos, nl == std::string_view::npos ? body.size() - pos : nl - pos);
      pos = nl == std::string_view::npos ? body.size() : nl + 1;
      std::string_view entry = trim_space(raw);
      if (entry.empty() || entry[0] == '#') continue;
      auto words = detail::split_files_line(entry);
      // Apptainer indexes the first match unconditionally and crashes when there is none.
      if (words.empty())
        throw Error(detail::at(name_, number) + "%files line '" + std::string(entry) +
                    "' names no path; write 'SOURCE [DESTINATION]', quoting paths with spaces");
      auto unquote = [](std::string_view w) {
        w = trim_space(w);
        while (!w.empty() && w.front() == '"') w.remove_prefix(1);
        while (!w.empty() && w.back() == '"') w.remove_suffix(1);
        return std::string(w);
      };
      section.files.push_back({unquote(words[0]), words.size() < 2 ? std::string() : unquote(words[1])});
    }
    for (auto& existing : files_) {
      if (existing.args != section.args) continue;
      existing.files.insert(existing.files.end(), section.files.begin(), section.files.end());
      return;
    }
    files_.push_back(std::move(section));
  }

  [[noreturn]] void unknown_section(const std::string& key) const {
    int line = first_seen_.at(key);
    const std::string& head = heads_.at(key);
    std::string where = detail::at(name_, line);
    if (!head.empty() && head[0] != '%')
      throw Error(where + "line '" + std::string(trim_space(head)) +
                  "' is indented but its first word starts with '%', so Apptainer reads it as a "
                  "section, and it is not one; start section lines in column 1 and do not begin "
                  "script lines with '%'");
    std::vector<std::string> names;
    for (const char* s : kSections) names.push_back(std::string("%") + s);
    for (const char* s : kAppSections) names.push_back(std::string("%") + s);
    std::string word = "%" + std::string(split_n(key, 2)[0]);
    std::string hint = str::closest(word, names);
    throw Error(
        where + "unknown section '" + word + "'" +
        (hint.empty() ? "; valid sections: " + str::join(names, " ") : " (did you mean '" + hint + "'?)"));
  }

  // Apptainer's populateDefinition and isEmpty.
  std::optional<Definition> populate() {
    auto take = [&](const char* key) {
      auto it = sections_.find(key);
      return it == sections_.end() ? Script{} : it->second;
    };
    Definition d;
    d.header = header_;
    d.help = take("help");
    d.environment = take("environment");
    d.runscript = take("runscript");
    d.test = take("test");
    d.startscript = take("startscript");
    d.pre = take("pre");
    d.setup = take("setup");
    d.post = take("post");
    d.arguments = take("arguments");
    d.labels = parse_labels(take("labels").script);
    d.files = files_;

    std::optional<std::string> first_invalid;  // the key may be "" (an indented "  %x" line)
    for (const auto& [key, s] : sections_) {
      if (is_standard_section(key)) continue;
      if (!d.custom) d.custom.emplace();
      (*d.custom)[key] = s.script;
      if (is_app_section(split_n(key, 2)[0])) continue;
      if (!first_invalid || first_seen_.at(key) < first_seen_.at(*first_invalid)) first_invalid = key;
    }
    if (first_invalid) unknown_section(*first_invalid);
    d.app_order = app_order_;

    bool empty = !d.header && d.labels.empty() && d.files.empty() && !d.custom && d.app_order.empty();
    for (const Script* s : {&d.help, &d.environment, &d.runscript, &d.test, &d.startscript, &d.pre, &d.setup,
                            &d.post, &d.arguments})
      empty = empty && s->empty();
    if (empty) return std::nullopt;
    d.raw = d.fullraw = std::string(text_);
    d.source_name = name_;
    d.first_line = first_line_;
    return d;
  }

  std::string_view text_;
  const std::string& name_;
  int first_line_;
  std::optional<std::map<std::string, std::string>> header_;
  std::map<std::string, Script> sections_;
  std::map<std::string, int> first_seen_;     // section key → line of its first occurrence
  std::map<std::string, std::string> heads_;  // section key → that % line as written
  std::vector<FilesSection> files_;
  std::vector<std::string> app_order_;
};

}  // namespace

namespace detail {

std::string at(const std::string& name, int line) {
  return name + ":" + std::to_string(line) + ": ";
}

void throw_empty(const std::string& name, int line) {
  throw Error(at(name, line) +
              "empty definition: no header keywords and no sections; start with 'Bootstrap: …'");
}

std::vector<Chunk> split_stages(std::string_view text) {
  std::vector<Chunk> chunks;
  size_t start = 0;
  int line = 1;
  auto add = [&](size_t end) {
    chunks.push_back({text.substr(start, end - start), line});
    line += static_cast<int>(
        std::count(text.begin() + static_cast<long>(start), text.begin() + static_cast<long>(end), '\n'));
    start = end;
  };
  for (size_t offset : bootstrap_offsets(text)) add(offset);
  add(text.size());
  return chunks;
}

std::optional<Definition> parse_chunk(std::string_view text, const std::string& name, int first_line) {
  return ChunkParser(text, name, first_line).run();
}

}  // namespace detail

Definition parse_definition(std::string_view text, const std::string& name) {
  auto d = detail::parse_chunk(text, name, 1);
  if (!d) detail::throw_empty(name, 1);
  return std::move(*d);
}

std::vector<Definition> parse_stages(std::string_view text, const std::string& name) {
  std::vector<Definition> stages;
  for (const auto& chunk : detail::split_stages(text)) {
    if (chunk.text.empty()) continue;
    auto d = detail::parse_chunk(chunk.text, name, chunk.first_line);
    if (!d) continue;  // comments only: parser.All skips it
    d->fullraw = std::string(text);
    stages.push_back(std::move(*d));
  }
  if (stages.empty()) detail::throw_empty(name, 1);
  if (stages.size() > 1) {
    for (const auto& s : stages)
      if (!s.header)
        throw Error(detail::at(name, s.first_line) +
                    "multiple stages detected, all must have headers, and the stage starting here has "
                    "none; begin it with 'Bootstrap: …'");
  }
  return stages;
}

const std::vector<std::string>& header_keywords() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> w;
    for (const auto& k : kHeaders) w.emplace_back(k.spelling);
    w.emplace_back("OtherURL<N>");
    return w;
  }();
  return words;
}

const std::vector<std::string>& section_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n(std::begin(kSections), std::end(kSections));
    n.insert(n.end(), std::begin(kAppSections), std::end(kAppSections));
    return n;
  }();
  return names;
}

}  // namespace rbox::deffile
