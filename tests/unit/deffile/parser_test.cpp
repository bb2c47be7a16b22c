// Unit tests for the definition-file parser: one test per Apptainer rule and per error message.
#include "deffile/parser.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

using namespace rbox;
using deffile::parse_definition;
using deffile::parse_stages;

namespace {

// The message of the rbox::Error fn throws ("" and a test failure when it does not throw).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "error is not one line: " << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

deffile::Definition parse(const std::string& text) {
  return parse_definition(text, "env.def");
}

}  // namespace

TEST(DeffileParser, HeaderKeysLowerCasedCommentsTruncated) {
  auto d =
      parse("# top comment\nBootStrap: docker   # trailing\nFROM: alpine:3.19#tag lost\nIncludeCmd: yes\n");
  ASSERT_TRUE(d.header);
  EXPECT_EQ(*d.header, (std::map<std::string, std::string>{
                           {"bootstrap", "docker"}, {"from", "alpine:3.19"}, {"includecmd", "yes"}}));
  EXPECT_EQ(d.bootstrap(), "docker");
}

TEST(DeffileParser, HeaderContinuation) {
  auto d = parse("Bootstrap: zypper\nProductPGP: line one\\n\\\n  line two\\n\\\nend\nInclude: a \\\n b\n");
  EXPECT_EQ(d.header_value("productpgp"), "line one\nline two\nend");
  EXPECT_EQ(d.header_value("include"), "a b");
}

TEST(DeffileParser, HeaderContinuationAtEndOfHeaderIsDropped) {
  // Apptainer drops a value whose continuation never ends before the first section.
  auto d = parse("Bootstrap: docker\nFrom: alpine \\\n%post\necho\n");
  EXPECT_EQ(d.header_value("from"), "");
  EXPECT_FALSE(d.header->count("from"));
}

TEST(DeffileParser, HeaderContinuationIntoBlankLineIsAnError) {
  // Apptainer crashes here (a nil map write); rbox names the line.
  EXPECT_EQ(error_of([] { parse("Bootstrap: docker\nFrom: alpine \\\n\nStage: x\n"); }),
            "env.def:3: the value of header keyword 'From' ends with '\\' but the next line is blank or a "
            "comment; remove the '\\' or continue the value on this line");
}

TEST(DeffileParser, UnknownHeaderKeywordWithHint) {
  EXPECT_EQ(error_of([] { parse("Bootstrap: docker\n\n\n\n\n\nForm: alpine\n"); }),
            "env.def:7: unknown header keyword 'Form' (did you mean 'From'?)");
  EXPECT_EQ(error_of([] { parse("Bootstrap: debootstrap\nOSVersoin: bookworm\n"); }),
            "env.def:2: unknown header keyword 'OSVersoin' (did you mean 'OSVersion'?)");
  std::string far = error_of([] { parse("Bootstrap: docker\nzzzzzzzzzz: 1\n"); });
  EXPECT_EQ(far.rfind("env.def:2: unknown header keyword 'zzzzzzzzzz'; valid keywords: Bootstrap, From,", 0),
            0u)
      << far;
}

TEST(DeffileParser, OtherUrlNeedsDigits) {
  auto d = parse("Bootstrap: zypper\nOtherURL0: a\notherurl12: b\n");
  EXPECT_EQ(d.header_value("otherurl0"), "a");
  EXPECT_EQ(d.header_value("otherurl12"), "b");
  EXPECT_NE(
      error_of([] { parse("Bootstrap: zypper\nOtherURL: a\n"); }).find("unknown header keyword 'OtherURL'"),
      std::string::npos);
}

TEST(DeffileParser, HeaderLineWithoutColon) {
  EXPECT_EQ(error_of([] { parse("Bootstrap: docker\nalpine\n"); }),
            "env.def:2: header line 'alpine' has no ':'; header lines are 'Keyword: value' (e.g. 'Bootstrap: "
            "docker')");
}

TEST(DeffileParser, SectionsVerbatimAndLowerCased) {
  auto d = parse("Bootstrap: docker\n%POST\n  echo a # kept\n\n# kept too\n%RunScript arg1  arg2\nexec x\n");
  EXPECT_EQ(d.post.script, "  echo a # kept\n\n# kept too\n");
  EXPECT_EQ(d.runscript.args, "arg1  arg2");
  EXPECT_EQ(d.runscript.script, "exec x\n");
}

TEST(DeffileParser, RepeatedSectionsConcatenateAndLaterArgsWin) {
  auto d = parse("Bootstrap: docker\n%post -c /bin/sh\na\n%post -c /bin/bash\nb\n%post\nc\n");
  EXPECT_EQ(d.post.script, "a\nb\nc\n");
  EXPECT_EQ(d.post.args, "-c /bin/bash");  // "%post" without a space keeps the earlier args
}

TEST(DeffileParser, IndentedPercentStartsASection) {
  // A script line whose first word starts with '%' ends the section, as in Apptainer.
  EXPECT_EQ(
      error_of([] { parse("Bootstrap: docker\n%post\n  echo a\n  %foo\n"); }),
      "env.def:4: line '%foo' is indented but its first word starts with '%', so Apptainer reads it as a "
      "section, and it is not one; start section lines in column 1 and do not begin script lines with "
      "'%'");
  EXPECT_EQ(error_of([] { parse("Bootstrap: docker\n%post\necho\n%enviroment\nA=1\n"); }),
            "env.def:4: unknown section '%enviroment' (did you mean '%environment'?)");
}

TEST(DeffileParser, FirstSectionWithoutHeaderIsTrimmed) {
  auto d = parse("%help\nHello\n\n\n%post\necho\n\n");
  EXPECT_FALSE(d.header);
  EXPECT_EQ(d.help.script, "Hello");     // the first token is trimmed as a whole
  EXPECT_EQ(d.post.script, "echo\n\n");  // later ones are verbatim
  EXPECT_EQ(
      error_of([] { parse("%runscript  \n  \n"); }),
      "env.def:1: section '%runscript' has no body, and Apptainer cannot read a file that starts with an "
      "empty section; add its content or a header line above it");
}

TEST(DeffileParser, CrLfLineEndings) {
  auto d = parse("Bootstrap: docker\r\nFrom: alpine\r\n%post\r\necho a\r\n");
  EXPECT_EQ(d.header_value("from"), "alpine");
  EXPECT_EQ(d.post.script, "echo a\n");
  EXPECT_EQ(d.raw, "Bootstrap: docker\r\nFrom: alpine\r\n%post\r\necho a\r\n");
}

TEST(DeffileParser, FilesQuotingAndMerging) {
  auto d = parse(
      "Bootstrap: docker\n%files\n  a\n  \"b c\" /d\n  # comment\n  e 'f g' h\n%files from build\n  /x /y\n"
      "%files\n  z\n");
  ASSERT_EQ(d.files.size(), 2u);
  EXPECT_EQ(d.files[0].args, "");
  EXPECT_EQ(d.files[0].files,
            (std::vector<deffile::FileTransfer>{{"a", ""}, {"b c", "/d"}, {"e", "'f g"}, {"z", ""}}));
  EXPECT_EQ(d.files[1].args, "from build");
  EXPECT_EQ(d.files[1].files, (std::vector<deffile::FileTransfer>{{"/x", "/y"}}));
}

TEST(DeffileParser, FilesTemplatePiecesStayTogether) {
  auto d = parse("Bootstrap: docker\n%files\n  {{ SRC }}/bin/{{ NAME }} /opt/{{ NAME }}.d\n");
  ASSERT_EQ(d.files.size(), 1u);
  EXPECT_EQ(d.files[0].files,
            (std::vector<deffile::FileTransfer>{{"{{ SRC }}/bin/{{ NAME }}", "/opt/{{ NAME }}.d"}}));
}

TEST(DeffileParser, FilesSectionWithoutLinesIsKept) {
  auto d = parse("Bootstrap: docker\n%files\n\n");
  ASSERT_EQ(d.files.size(), 1u);
  EXPECT_TRUE(d.files[0].files.empty());
}

TEST(DeffileParser, FilesLoneQuoteIsAnError) {
  // Apptainer indexes a match that does not exist and crashes.
  EXPECT_EQ(
      error_of([] { parse("Bootstrap: docker\n%files\n  a b\n  \"\n"); }),
      "env.def:4: %files line '\"' names no path; write 'SOURCE [DESTINATION]', quoting paths with spaces");
}

TEST(DeffileParser, Labels) {
  auto d = parse(
      "Bootstrap: docker\n%labels\n  Maintainer  Jane Doe \n  # no\n  Solo\n%labels\nVersion\t1 2\nA 1\nA "
      "2\n");
  EXPECT_EQ(d.labels, (std::map<std::string, std::string>{
                          {"Maintainer", "Jane Doe"}, {"Solo", ""}, {"Version\t1", "2"}, {"A", "2"}}));
}

TEST(DeffileParser, AppsAndOrder) {
  auto d = parse(
      "Bootstrap: docker\n%apprun foo\n  run foo\n%appinstall bar\n  make\n%appinstall foo extra words\n  "
      "make foo\n"
      "%applabels bar\n  K V\n");
  EXPECT_EQ(d.app_order, (std::vector<std::string>{"foo", "bar"}));
  ASSERT_TRUE(d.custom);
  EXPECT_EQ(d.custom->at("appinstall foo"), "  make foo\n");
  auto apps = d.apps();
  ASSERT_EQ(apps.size(), 2u);
  EXPECT_EQ(apps[0].name, "foo");
  EXPECT_EQ(apps[0].run, "  run foo\n");
  EXPECT_EQ(apps[1].labels, "  K V\n");
  EXPECT_EQ(deffile::parse_labels(apps[1].labels).at("K"), "V");
}

TEST(DeffileParser, AppSectionErrors) {
  EXPECT_EQ(error_of([] { parse("Bootstrap: docker\n%appinstall\nx\n"); }),
            "env.def:2: '%appinstall' needs the app's name: '%appinstall NAME'");
  // App section names are not lower-cased when stored, so Apptainer rejects upper case.
  EXPECT_EQ(error_of([] { parse("Bootstrap: docker\n%APPINSTALL foo\nx\n"); }),
            "env.def:2: unknown section '%APPINSTALL' (did you mean '%appinstall'?)");
}

TEST(DeffileParser, EmptyDefinitions) {
  for (const char* text : {"", "\n\n", "# only\n# comments\n", "# c\n%post\n", "  \t\n"}) {
    EXPECT_EQ(error_of([&] { parse(text); }),
              "env.def:1: empty definition: no header keywords and no sections; start with 'Bootstrap: …'")
        << text;
  }
  // A section with only args, or an empty %files, is not empty.
  EXPECT_EQ(parse("#\n%post -c /bin/bash\n").post.args, "-c /bin/bash");
}

TEST(DeffileParser, Stages) {
  std::string text =
      "# leading comment\nBootstrap: docker\nFrom: golang\nStage: build\n%post\n  go build\n"
      "bootstrap: docker\nFrom: alpine\nStage: final\n%files from build\n  /src/app /usr/bin/app\n";
  auto stages = parse_stages(text, "multi.def");
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].stage_name(), "build");
  EXPECT_EQ(stages[0].first_line, 2);
  EXPECT_EQ(stages[0].raw, "Bootstrap: docker\nFrom: golang\nStage: build\n%post\n  go build\n");
  EXPECT_EQ(stages[1].stage_name(), "final");
  EXPECT_EQ(stages[1].first_line, 7);
  EXPECT_EQ(stages[0].fullraw, text);
  EXPECT_EQ(stages[1].fullraw, text);
  auto src = deffile::files_source(stages[1].files[0]);
  EXPECT_EQ(src.kind, deffile::FilesSource::Kind::kStage);
  EXPECT_EQ(src.stage, "build");
  // Errors in later stages name the line in the whole file.
  EXPECT_EQ(
      error_of([] { parse_stages("Bootstrap: docker\n%post\nx\nBootstrap: docker\nForm: a\n", "m.def"); }),
      "m.def:5: unknown header keyword 'Form' (did you mean 'From'?)");
}

TEST(DeffileParser, StagesNeedHeaders) {
  EXPECT_EQ(error_of([] { parse_stages("%post\n  echo\nBootstrap: docker\nFrom: alpine\n", "m.def"); }),
            "m.def:1: multiple stages detected, all must have headers, and the stage starting here has none; "
            "begin it with 'Bootstrap: …'");
}

TEST(DeffileParser, BootstrapSplitFollowsGoCaseFolding) {
  // (?i) in Go folds U+017F LATIN SMALL LETTER LONG S to 's': Apptainer splits there too.
  // The new stage's header keyword is then unknown (Go lower-cases U+017F to itself).
  EXPECT_EQ(
      error_of([] { parse_stages("Bootstrap: docker\n%post\nx\nBOOT\xC5\xBFTRAP: scratch\n", "m.def"); }),
      "m.def:4: unknown header keyword 'BOOT\xC5\xBFTRAP' (did you mean 'Bootstrap'?)");
  // A Bootstrap line inside a section still starts a new stage (the split happens first).
  auto two = parse_stages("Bootstrap: docker\n%post\n  echo\nbootstrap: scratch\n", "m.def");
  EXPECT_EQ(two.size(), 2u);
  // Indented "  Bootstrap:" does not split.
  EXPECT_EQ(parse_stages("Bootstrap: docker\n%post\n  Bootstrap: x\n", "m.def").size(), 1u);
}

TEST(DeffileParser, UnicodeSpacesAreWhitespace) {
  // TrimSpace removes Unicode spaces around header values.
  auto d = parse(
      "Bootstrap:\xC2\xA0"
      "docker\xE3\x80\x80\n%post\n  x\n");
  EXPECT_EQ(d.bootstrap(), "docker");
  // An NBSP before '%' still makes the line a section line (bufio.ScanWords), an indented one.
  EXPECT_NE(error_of([] {
              parse("Bootstrap: docker\n%post\n\xC2\xA0%x\n");
            }).find("env.def:3: line '%x' is indented"),
            std::string::npos);
}

TEST(DeffileParser, KeywordLists) {
  EXPECT_EQ(deffile::header_keywords().front(), "Bootstrap");
  EXPECT_EQ(deffile::section_names().size(), 19u);
}
