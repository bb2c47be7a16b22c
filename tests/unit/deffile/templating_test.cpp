// Unit tests for {{ NAME }} build arguments: sources and precedence, commented lines, nesting,
// per-stage defaults, unused and undefined arguments, and the build-arg file format.
#include <gtest/gtest.h>

#include "deffile/parser.hpp"
#include "util/error.hpp"

using namespace rbox;
using deffile::BuildArgs;

namespace {

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

BuildArgs args_of(std::initializer_list<std::string> kvs, bool warn_unused = false) {
  BuildArgs a;
  for (const auto& kv : kvs) a.add(kv);
  a.warn_unused = warn_unused;
  return a;
}

}  // namespace

TEST(DeffileTemplating, CommandLineOverDefaults) {
  std::string text =
      "Bootstrap: docker\nFrom: {{ IMAGE }}:{{TAG}}\n%arguments\n  IMAGE=debian\n  TAG = 12 \n%post\n  echo "
      "{{ IMAGE }}\n";
  auto r = deffile::parse(text, "a.def", args_of({"IMAGE=alpine"}));
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_EQ(r.last().header_value("from"), "alpine:12");
  EXPECT_EQ(r.last().post.script, "  echo alpine\n");
  EXPECT_EQ(
      r.last().raw,
      "Bootstrap: docker\nFrom: alpine:12\n%arguments\n  IMAGE=debian\n  TAG = 12 \n%post\n  echo alpine\n");
  EXPECT_EQ(r.last().fullraw, r.last().raw);
  EXPECT_TRUE(r.warnings.empty());
}

TEST(DeffileTemplating, UndefinedNamesTheVariableAndLine) {
  EXPECT_EQ(
      error_of([] { deffile::parse("Bootstrap: docker\n\n%post\n  echo {{ WHO }}\n", "a.def"); }),
      "a.def:4: build argument 'WHO' is not defined; pass --build-arg WHO=VALUE or give it a default in "
      "%arguments");
}

TEST(DeffileTemplating, UnusedIsFatalUnlessWarned) {
  std::string text = "Bootstrap: docker\n%post\n  echo {{ A }}\n";
  EXPECT_EQ(error_of([&] {
              deffile::parse(text, "a.def", args_of({"A=1", "ZED=2", "B=3"}));
            }),
            "a.def: unused build args: B, ZED; use them as {{ NAME }} in the file, or pass "
            "--warn-unused-build-args");
  auto r = deffile::parse(text, "a.def", args_of({"A=1", "B=3"}, true));
  EXPECT_EQ(r.warnings, (std::vector<std::string>{"a.def: unused build args: B"}));
}

TEST(DeffileTemplating, CommentedLinesAreSkipped) {
  std::string text =
      "Bootstrap: docker\n%post\n  # echo {{ NOPE }}\n  echo '#x' {{ NOPE2 }}\n  echo {{ A }} # {{ NOPE3 }}\n"
      "%runscript\n#!/bin/{{ SHELL }}\n  echo #{{ A }}\n";
  auto r = deffile::parse(text, "a.def", args_of({"A=1", "SHELL=bash"}));
  // "#x" counts as a comment marker, as in Apptainer; "#!" does not; a '#' right before the
  // placeholder is not followed by another character, so it is replaced.
  EXPECT_EQ(r.last().post.script, "  # echo {{ NOPE }}\n  echo '#x' {{ NOPE2 }}\n  echo 1 # {{ NOPE3 }}\n");
  EXPECT_EQ(r.last().runscript.script, "#!/bin/bash\n  echo #1\n");
}

TEST(DeffileTemplating, OneLevelOfNesting) {
  std::string text =
      "Bootstrap: docker\n%arguments\n  BASE=/opt/{{ NAME }}\n  NAME=tool\n  DEEP={{ BASE }}/x\n"
      "%post\n  echo {{ BASE }} {{ DEEP }}\n";
  auto r = deffile::parse(text, "a.def");
  // Defaults come from the untemplated %arguments: DEEP's BASE becomes BASE's default text, whose
  // own placeholder is not expanded again.
  EXPECT_EQ(r.last().post.script, "  echo /opt/tool /opt/{{ NAME }}/x\n");
  // The %arguments text itself is templated like every other line.
  EXPECT_EQ(r.last().arguments.script, "  BASE=/opt/tool\n  NAME=tool\n  DEEP=/opt/tool/x\n");
  // An unknown name inside a default is kept when the value is substituted elsewhere, but the
  // %arguments line itself then names an undefined argument.
  EXPECT_EQ(error_of([] { deffile::parse("Bootstrap: docker\n%arguments\n  K={{ U }}\n", "a.def"); }),
            "a.def:3: build argument 'U' is not defined; pass --build-arg U=VALUE or give it a default in "
            "%arguments");
}

TEST(DeffileTemplating, ArgumentUsedOnlyInsideADefaultCounts) {
  // The %arguments line is templated too, so NAME is used there.
  std::string text = "Bootstrap: docker\n%arguments\n  BASE=/opt/{{ NAME }}\n%post\n  echo {{ BASE }}\n";
  auto r = deffile::parse(text, "a.def", args_of({"NAME=x"}));
  EXPECT_EQ(r.last().post.script, "  echo /opt/x\n");
  EXPECT_TRUE(r.warnings.empty());
}

TEST(DeffileTemplating, DefaultsArePerStage) {
  std::string text =
      "Bootstrap: docker\nFrom: alpine\nStage: one\n%arguments\n  V=1\n%post\n  echo {{ V }}\n"
      "Bootstrap: docker\nFrom: alpine\nStage: two\n%post\n  echo {{ V }}\n";
  EXPECT_EQ(error_of([&] { deffile::parse(text, "m.def"); }),
            "m.def:12: build argument 'V' is not defined; pass --build-arg V=VALUE or give it a default in "
            "%arguments");
  auto r = deffile::parse(text, "m.def", args_of({"V=9"}));
  ASSERT_EQ(r.stages.size(), 2u);
  EXPECT_EQ(r.stages[0].post.script, "  echo 9\n");
  EXPECT_EQ(r.stages[1].post.script, "  echo 9\n");
  EXPECT_EQ(r.stages[1].first_line, 8);
  EXPECT_EQ(r.stages[0].fullraw, r.stages[0].raw + r.stages[1].raw);
}

TEST(DeffileTemplating, LeadingCommentsStayInFullRaw) {
  auto r = deffile::parse("# {{ not an arg }}\nBootstrap: docker\n%post\n  echo {{ A }}\n", "a.def",
                          args_of({"A=1"}));
  EXPECT_EQ(r.last().raw, "Bootstrap: docker\n%post\n  echo 1\n");
  EXPECT_EQ(r.last().fullraw, "# {{ not an arg }}\nBootstrap: docker\n%post\n  echo 1\n");
}

TEST(DeffileTemplating, ValuesMayCreateStructure) {
  // Substitution happens on the text before parsing, as in Apptainer.
  auto r = deffile::parse("Bootstrap: docker\n%files\n  {{ SRC }} /opt\n", "a.def", args_of({"SRC=\"a b\""}));
  EXPECT_EQ(r.last().files[0].files[0].source, "a b");
}

TEST(DeffileTemplating, BuildArgSyntax) {
  BuildArgs a;
  a.add(" K = v=w ");
  EXPECT_EQ(a.values.at("K"), "v=w");
  a.add("EMPTY=");
  EXPECT_EQ(a.values.at("EMPTY"), "");
  EXPECT_EQ(error_of([&] { a.add("NOEQUALS"); }), "--build-arg 'NOEQUALS': expected NAME=VALUE");
  EXPECT_EQ(error_of([&] { a.add("=v"); }), "--build-arg '=v': expected NAME=VALUE");
}

TEST(DeffileTemplating, BuildArgFile) {
  BuildArgs a;
  a.add_file_text("# comment\n\nA=1\r\n  B = two words \nbad line\nA=3\n", "args.txt");
  EXPECT_EQ(a.values, (std::map<std::string, std::string>{{"A", "3"}, {"B", "two words"}}));
  EXPECT_EQ(a.warnings, (std::vector<std::string>{"args.txt:5: skipping 'bad line': not a NAME=VALUE line"}));
  a.add("A=cli");  // the command line wins over the file
  EXPECT_EQ(a.values.at("A"), "cli");
}

TEST(DeffileTemplating, BadArgumentsLinesAreWarnings) {
  auto r = deffile::parse("Bootstrap: docker\n%arguments\n  oops\n  A=1\n%post\n  {{ A }}\n", "a.def");
  EXPECT_EQ(r.warnings,
            (std::vector<std::string>{"a.def: %arguments: skipping 'oops': not a NAME=VALUE default"}));
  EXPECT_EQ(r.last().post.script, "  1\n");
}

TEST(DeffileTemplating, NoPlaceholdersMeansParseStages) {
  std::string text = "# c\nBootstrap: docker\nFrom: a\n%post\n  x\nBootstrap: docker\nFrom: b\n";
  auto r = deffile::parse(text, "m.def");
  EXPECT_EQ(r.stages, deffile::parse_stages(text, "m.def"));
}
