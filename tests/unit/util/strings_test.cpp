// Unit tests for util/strings.
#include "util/strings.hpp"

#include <gtest/gtest.h>

using namespace rbox;

TEST(Strings, TrimAndSplit) {
  EXPECT_EQ(str::trim("  a b \t\n"), "a b");
  EXPECT_EQ(str::split("a,,b", ','), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(str::split_lines("x\ny\n"), (std::vector<std::string>{"x", "y"}));
}

TEST(Strings, Closest) {
  std::vector<std::string> keys = {"bootstrap", "from", "osversion"};
  EXPECT_EQ(str::closest("Form", keys), "from");
  EXPECT_EQ(str::closest("zzzzzz", keys), "");
  EXPECT_EQ(str::closest("bootstrp", keys), "bootstrap");
}

TEST(Strings, ShellQuote) {
  EXPECT_EQ(str::shell_quote("it's"), "'it'\\''s'");
}
