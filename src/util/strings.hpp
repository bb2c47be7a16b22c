// Small string helpers used across modules.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rbox::str {

std::string trim(std::string_view s);  // spaces, tabs, CR, LF
std::string trim_left(std::string_view s);
std::string trim_right(std::string_view s);
std::string lower(std::string_view s);
std::vector<std::string> split(std::string_view s, char sep);  // keeps empty fields
std::vector<std::string> split_lines(std::string_view s);      // on '\n', no trailing empty
std::string join(const std::vector<std::string>& parts, std::string_view sep);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
// Case-insensitive Levenshtein distance, for "did you mean" hints.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to word if within max(1, len/3) edits, else "".
std::string closest(std::string_view word, const std::vector<std::string>& candidates);
// Quotes s for a POSIX shell with single quotes.
std::string shell_quote(std::string_view s);
// "1.5 MiB", "320 KiB", "12 B".
std::string human_bytes(unsigned long long bytes);

}  // namespace rbox::str
