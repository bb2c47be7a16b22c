// Unit tests for the Go-compatible text primitives behind the parser (TrimSpace, ScanLines,
// section detection, the %files splitter regex, the Bootstrap split, placeholders).
#include "deffile/go_text.hpp"

#include <gtest/gtest.h>

using namespace rbox::deffile::detail;
using V = std::vector<std::string_view>;

TEST(DeffileGoText, TrimSpace) {
  EXPECT_EQ(trim_space(" \t\v\f\r\n x y \n"), "x y");
  EXPECT_EQ(trim_space("\xC2\x85\xC2\xA0x\xE2\x80\x8A\xE3\x80\x80"), "x");  // NEL NBSP … U+200A U+3000
  EXPECT_EQ(trim_space("\xE2\x80\x8Bx"), "\xE2\x80\x8Bx");                  // U+200B is not White_Space
  EXPECT_EQ(trim_space("x\xC2"), "x\xC2");                                  // a lone lead byte stays
  EXPECT_EQ(trim_space(""), "");
}

TEST(DeffileGoText, ScanLines) {
  auto lines = scan_lines("a\r\nb\n\nc\r", 5);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].text, "a");
  EXPECT_EQ(lines[2].text, "");
  EXPECT_EQ(lines[3].text, "c");
  EXPECT_EQ(lines[3].number, 8);
  EXPECT_TRUE(scan_lines("").empty());
  EXPECT_EQ(scan_lines("x\n").size(), 1u);
}

TEST(DeffileGoText, StartsSection) {
  EXPECT_TRUE(starts_section("%post"));
  EXPECT_TRUE(starts_section(" \t%post -c sh"));
  EXPECT_TRUE(starts_section("\xC2\xA0%x"));
  EXPECT_FALSE(starts_section("echo %post"));
  EXPECT_FALSE(starts_section(""));
  EXPECT_FALSE(starts_section("\xE2\x80\x8B%x"));
}

TEST(DeffileGoText, FilesSplitter) {
  EXPECT_EQ(split_files_line("a b c"), (V{"a", "b", "c"}));
  EXPECT_EQ(split_files_line("\"a b\" c"), (V{"\"a b\"", "c"}));
  EXPECT_EQ(split_files_line("\"a b c"), (V{"a", "b", "c"}));  // an unclosed '"' is skipped
  EXPECT_EQ(split_files_line("'a b' c"), (V{"'a b", "' c"}));  // '([^']*) leaves the closing quote
  EXPECT_EQ(split_files_line("x\"y z\""), (V{"x", "\"y z\""}));
  EXPECT_EQ(split_files_line("{{ A }}/x {{B}}"), (V{"{{ A }}/x", "{{B}}"}));
  EXPECT_EQ(split_files_line("p{{ A }}q{{ B }}}}r s"), (V{"p{{ A }}q{{ B }}}}r", "s"}));
  EXPECT_EQ(split_files_line("{{ A }}{x y"), (V{"{{ A }}", "{x", "y"}));  // '{' ends the template tail
  EXPECT_EQ(split_files_line("{{ no"), (V{"{{", "no"}));
  EXPECT_EQ(split_files_line("\""), V{});
  EXPECT_EQ(split_files_line("\"\"\""), (V{"\"\""}));
}

TEST(DeffileGoText, BootstrapOffsets) {
  EXPECT_EQ(bootstrap_offsets("Bootstrap: a\nx\nBOOTSTRAP:b\n bootstrap: c\nbootstrap:"),
            (std::vector<size_t>{0, 15, 41}));
  EXPECT_TRUE(bootstrap_offsets("Bootstrap a\nBootstrap\n").empty());
}

TEST(DeffileGoText, Placeholders) {
  auto p = find_placeholders("{{a}} {{ b_1 }} {{{c}} {{ d e }} {{\n f \n}}");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].name, "a");
  EXPECT_EQ(p[1].name, "b_1");
  EXPECT_EQ(p[2].name, "c");
  EXPECT_EQ(p[2].begin, 17u);
  EXPECT_EQ(p[3].name, "f");
}
