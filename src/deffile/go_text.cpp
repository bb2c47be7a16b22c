// Go-compatible text primitives for the definition-file parser (see go_text.hpp). The regexes are
// hand-written matchers so that parsing stays linear-ish and allocation-free; each one documents
// the Go behaviour it reproduces. No I/O.
#include "deffile/go_text.hpp"

namespace rbox::deffile::detail {

namespace {

// RE2's \s (Perl class, ASCII only — note: no \v).
bool is_re_space(char c) {
  return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}
bool is_word(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
// [^\s"'] — every byte of a multi-byte (or invalid) UTF-8 sequence belongs to it, as the rune does.
bool in_word_class(char c) {
  return !is_re_space(c) && c != '"' && c != '\'';
}
// [^\s{}"']
bool in_tail_class(char c) {
  return in_word_class(c) && c != '{' && c != '}';
}
unsigned char byte_at(std::string_view s, size_t i) {
  return static_cast<unsigned char>(s[i]);
}

// "{{" \s* \w+ \s* "}" at q; returns the index after that '}' or npos.
size_t match_braced_name(std::string_view s, size_t q) {
  size_t n = s.size(), i = q + 2;
  while (i < n && is_re_space(s[i])) ++i;
  size_t word = i;
  while (i < n && is_word(s[i])) ++i;
  if (i == word) return std::string_view::npos;
  while (i < n && is_re_space(s[i])) ++i;
  if (i >= n || s[i] != '}') return std::string_view::npos;
  return i + 1;
}

// One iteration of ([^\s"']*{{\s*\w+\s*}}*[^\s{}"']*) at pos, taking the choice a backtracking
// engine tries first: the longest [^\s"']* prefix after which {{name} still matches.
size_t match_template_piece(std::string_view s, size_t pos) {
  size_t n = s.size(), run = 0;
  while (pos + run < n && in_word_class(s[pos + run])) ++run;
  if (run < 2) return std::string_view::npos;
  for (size_t k = run - 1; k-- > 0;) {  // k = run-2 … 0: "{{" must lie inside the run
    size_t q = pos + k;
    if (s[q] != '{' || s[q + 1] != '{') continue;
    size_t e = match_braced_name(s, q);
    if (e == std::string_view::npos) continue;
    while (e < n && s[e] == '}') ++e;
    while (e < n && in_tail_class(s[e])) ++e;
    return e;
  }
  return std::string_view::npos;
}

}  // namespace

size_t space_width_at(std::string_view s, size_t i) {
  size_t n = s.size();
  if (i >= n) return 0;
  unsigned char c = byte_at(s, i);
  if (c == ' ' || (c >= '\t' && c <= '\r')) return 1;
  if (c == 0xC2 && i + 1 < n) {
    unsigned char d = byte_at(s, i + 1);
    return (d == 0x85 || d == 0xA0) ? 2 : 0;  // U+0085 NEL, U+00A0 NBSP
  }
  if (i + 2 >= n) return 0;
  unsigned char d = byte_at(s, i + 1), e = byte_at(s, i + 2);
  if (c == 0xE1 && d == 0x9A && e == 0x80) return 3;  // U+1680
  if (c == 0xE2 && d == 0x80 && ((e >= 0x80 && e <= 0x8A) || e == 0xA8 || e == 0xA9 || e == 0xAF))
    return 3;                                         // U+2000–200A, U+2028, U+2029, U+202F
  if (c == 0xE2 && d == 0x81 && e == 0x9F) return 3;  // U+205F
  if (c == 0xE3 && d == 0x80 && e == 0x80) return 3;  // U+3000
  return 0;
}

size_t space_width_before(std::string_view s, size_t end) {
  if (end == 0) return 0;
  unsigned char c = byte_at(s, end - 1);
  if (c < 0x80) return (c == ' ' || (c >= '\t' && c <= '\r')) ? 1 : 0;
  // A multi-byte rune ends here; Go decodes it from the nearest start byte, so an exact
  // 2- or 3-byte White_Space encoding ending here is the rune.
  if (end >= 2 && space_width_at(s, end - 2) == 2) return 2;
  if (end >= 3 && space_width_at(s, end - 3) == 3) return 3;
  return 0;
}

std::string_view trim_space(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    size_t w = space_width_at(s, b);
    if (w == 0) break;
    b += w;
  }
  while (e > b) {
    size_t w = space_width_before(s, e);
    if (w == 0 || e - w < b) break;
    e -= w;
  }
  return s.substr(b, e - b);
}

std::vector<Line> scan_lines(std::string_view text, int first_line) {
  std::vector<Line> lines;
  size_t pos = 0;
  int number = first_line;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back({line, number++, pos});
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return lines;
}

std::vector<std::string_view> fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0, n = s.size();
  while (i < n) {
    size_t w;
    while (i < n && (w = space_width_at(s, i)) > 0) i += w;
    size_t start = i;
    while (i < n && space_width_at(s, i) == 0) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool starts_section(std::string_view line) {
  size_t i = 0;
  while (i < line.size()) {
    size_t w = space_width_at(line, i);
    if (w == 0) break;
    i += w;
  }
  return i < line.size() && line[i] == '%';
}

std::vector<std::string_view> split_files_line(std::string_view s) {
  std::vector<std::string_view> out;
  size_t n = s.size(), p = 0;
  while (p < n) {
    size_t e = match_template_piece(s, p);
    if (e != std::string_view::npos) {
      // (…)+ is greedy and nothing follows it, so further pieces are taken while they match.
      for (size_t next; (next = match_template_piece(s, e)) != std::string_view::npos;) e = next;
    } else if (in_word_class(s[p])) {
      e = p;
      while (e < n && in_word_class(s[e])) ++e;
    } else if (s[p] == '"') {
      size_t q = s.find('"', p + 1);
      if (q != std::string_view::npos) e = q + 1;
    } else if (s[p] == '\'') {
      size_t q = s.find('\'', p + 1);  // '([^']*) — the closing quote is not part of the match
      e = q == std::string_view::npos ? n : q;
    }
    if (e == std::string_view::npos || e == p) {
      ++p;  // only ASCII bytes fail here, so p never lands inside a multi-byte rune
      continue;
    }
    out.push_back(s.substr(p, e - p));
    p = e;
  }
  return out;
}

std::vector<size_t> bootstrap_offsets(std::string_view text) {
  static constexpr std::string_view kWord = "bootstrap:";
  std::vector<size_t> out;
  for (size_t start = 0; start <= text.size();) {
    size_t i = start, k = 0;
    while (k < kWord.size() && i < text.size()) {
      char want = kWord[k];
      char c = text[i];
      char lc = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      if (lc == want) {
        ++i;
      } else if (want == 's' && byte_at(text, i) == 0xC5 && i + 1 < text.size() &&
                 byte_at(text, i + 1) == 0xBF) {
        i += 2;  // U+017F LATIN SMALL LETTER LONG S folds to 's' under (?i)
      } else {
        break;
      }
      ++k;
    }
    if (k == kWord.size()) out.push_back(start);
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return out;
}

std::vector<Placeholder> find_placeholders(std::string_view s) {
  std::vector<Placeholder> out;
  size_t n = s.size(), p = 0;
  while ((p = s.find("{{", p)) != std::string_view::npos) {
    size_t i = p + 2;
    while (i < n && is_re_space(s[i])) ++i;
    size_t word = i;
    while (i < n && is_word(s[i])) ++i;
    size_t word_end = i;
    while (i < n && is_re_space(s[i])) ++i;
    if (word_end > word && i + 1 < n && s[i] == '}' && s[i + 1] == '}') {
      out.push_back({p, i + 2, s.substr(word, word_end - word)});
      p = i + 2;
    } else {
      ++p;
    }
  }
  return out;
}

}  // namespace rbox::deffile::detail
