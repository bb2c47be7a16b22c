// Text primitives that behave exactly like the Go library calls Apptainer's parser is built on
// (bufio.ScanLines/ScanWords, strings.TrimSpace, its %files and Bootstrap regexes), so rbox splits
// a definition file where Apptainer does. Internal to deffile/; no I/O, no policy.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rbox::deffile::detail {

// Byte width of the Unicode White_Space rune starting at s[i] (Go's unicode.IsSpace and bufio's
// isSpace agree on the set), or 0 when s[i] does not start one.
size_t space_width_at(std::string_view s, size_t i);
// Byte width of the White_Space rune ending just before s[end], or 0.
size_t space_width_before(std::string_view s, size_t end);
// strings.TrimSpace.
std::string_view trim_space(std::string_view s);

// One line as bufio.ScanLines yields it: without its '\n' and without one trailing '\r'.
struct Line {
  std::string_view text;
  int number = 0;     // 1-based line number in the file
  size_t offset = 0;  // byte offset of the line start in the scanned text
};
// bufio.ScanLines over text; the first line gets number first_line.
std::vector<Line> scan_lines(std::string_view text, int first_line = 1);
// strings.Fields: the words between runs of White_Space.
std::vector<std::string_view> fields(std::string_view s);
// True when the first whitespace-separated word of line starts with '%' (bufio.ScanWords).
bool starts_section(std::string_view line);

// Apptainer's %files line splitter: fileSplitter.FindAllString(line, -1) for the regex
//   ([^\s"']*{{\s*\w+\s*}}*[^\s{}"']*)+|([^\s"']+|"([^"]*)"|'([^']*))
// with Go's leftmost-first semantics (\s = [\t\n\f\r ], \w = [0-9A-Za-z_]).
std::vector<std::string_view> split_files_line(std::string_view line);

// Byte offsets of every match of (?mi)^bootstrap: — where Apptainer splits stages. Go's case
// folding lets 's' also match U+017F (long s), which is honoured.
std::vector<size_t> bootstrap_offsets(std::string_view text);

// Apptainer's build-argument placeholder {{\s*(\w+)\s*}}, leftmost-first, non-overlapping.
struct Placeholder {
  size_t begin = 0, end = 0;  // the whole {{ … }}
  std::string_view name;
};
std::vector<Placeholder> find_placeholders(std::string_view text);

}  // namespace rbox::deffile::detail
