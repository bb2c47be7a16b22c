// Unit tests for container/env_script: the sh subset evaluated without a shell, and the
// constructs that must send rbox back to the real shell.
#include "container/env_script.hpp"

#include <gtest/gtest.h>

#include "util/fs.hpp"

using namespace rbox::container;

namespace {

ShellVars vars(std::initializer_list<std::pair<const char*, const char*>> kv) {
  ShellVars v;
  for (auto& [k, val] : kv) v[k] = ShellVar{std::string(val), true};
  return v;
}

std::string get(const ShellVars& v, const std::string& k) {
  auto it = v.find(k);
  return it == v.end() || !it->second.value ? "<unset>" : *it->second.value;
}

}  // namespace

TEST(EnvScript, ExportsAndAssignments) {
  ShellVars v = vars({{"HOME", "/home/u"}});
  auto r = run_env_script(
      "#!/bin/sh\n# comment\nexport A=1 B=\"two words\"\nC='$HOME lit'\nD=$HOME/x\nexport E=\"${HOME}/y\"\n",
      v);
  ASSERT_TRUE(r.supported) << r.reason;
  EXPECT_EQ(get(v, "A"), "1");
  EXPECT_EQ(get(v, "B"), "two words");
  EXPECT_EQ(get(v, "C"), "$HOME lit");
  EXPECT_FALSE(v["C"].exported);
  EXPECT_EQ(get(v, "D"), "/home/u/x");
  EXPECT_EQ(get(v, "E"), "/home/u/y");
  EXPECT_TRUE(v["E"].exported);
}

TEST(EnvScript, ParameterForms) {
  ShellVars v = vars({{"SET", "s"}, {"EMPTY", ""}});
  auto r = run_env_script(
      "A=${SET:-d}\nB=${EMPTY:-d}\nC=${EMPTY-d}\nD=${NOPE-d}\nE=${SET:+alt}\nF=${EMPTY:+alt}\nG=${#SET}\n",
      v);
  ASSERT_TRUE(r.supported) << r.reason;
  EXPECT_EQ(get(v, "A"), "s");
  EXPECT_EQ(get(v, "B"), "d");
  EXPECT_EQ(get(v, "C"), "");
  EXPECT_EQ(get(v, "D"), "d");
  EXPECT_EQ(get(v, "E"), "alt");
  EXPECT_EQ(get(v, "F"), "");
  EXPECT_EQ(get(v, "G"), "1");
}

TEST(EnvScript, ApptainerBaseFile) {
  // The body of Apptainer's (and rbox's) 99-base.sh.
  const char* text =
      "if [ -z \"$LD_LIBRARY_PATH\" ]; then\n    LD_LIBRARY_PATH=\"/.singularity.d/libs\"\nelse\n"
      "    LD_LIBRARY_PATH=\"$LD_LIBRARY_PATH:/.singularity.d/libs\"\nfi\n\nPS1=\"Singularity> \"\n"
      "export LD_LIBRARY_PATH PS1\n";
  ShellVars v;
  ASSERT_TRUE(run_env_script(text, v).supported);
  EXPECT_EQ(get(v, "LD_LIBRARY_PATH"), "/.singularity.d/libs");
  EXPECT_TRUE(v["PS1"].exported);
  ShellVars w = vars({{"LD_LIBRARY_PATH", "/x"}});
  ASSERT_TRUE(run_env_script(text, w).supported);
  EXPECT_EQ(get(w, "LD_LIBRARY_PATH"), "/x:/.singularity.d/libs");
}

TEST(EnvScript, RuntimeVarsFileWithContinuation) {
  std::string text = rbox::fs::read_file(std::string(RBOX_SOURCE_DIR) + "/runtime/env/99-runtimevars.sh");
  ShellVars v = vars({{"PATH", "/bin"}, {"SING_USER_DEFINED_PREPEND_PATH", "/pre"}});
  auto r = run_env_script(text, v);
  ASSERT_TRUE(r.supported) << r.reason;
  EXPECT_EQ(get(v, "PATH"), "/pre:/bin");
  EXPECT_EQ(v.count("SING_USER_DEFINED_PREPEND_PATH"), 0u);
}

TEST(EnvScript, UntakenBranchOnlyHasToParse) {
  // 95-apps.sh: everything inside is skipped when no app is selected.
  std::string text = rbox::fs::read_file(std::string(RBOX_SOURCE_DIR) + "/runtime/env/95-apps.sh");
  ShellVars v;
  auto r = run_env_script(text, v);
  EXPECT_TRUE(r.supported) << r.reason;
  ShellVars w = vars({{"SINGULARITY_APPNAME", "foo"}});
  auto dir_test = [](char, const std::string&) { return true; };
  EXPECT_FALSE(run_env_script(text, w, dir_test).supported);  // the for loop needs a shell
}

TEST(EnvScript, ElifAndLists) {
  ShellVars v = vars({{"X", "b"}});
  auto r = run_env_script(
      "if [ \"$X\" = a ]; then R=1; elif test \"$X\" = b; then R=2; else R=3; fi\n"
      "[ -n \"$X\" ] && S=yes || S=no\n[ -z \"$X\" ] && T=yes || T=no\n",
      v);
  ASSERT_TRUE(r.supported) << r.reason;
  EXPECT_EQ(get(v, "R"), "2");
  EXPECT_EQ(get(v, "S"), "yes");
  EXPECT_EQ(get(v, "T"), "no");
}

TEST(EnvScript, UnsupportedLeavesVarsUntouched) {
  for (const char* text : {"A=1\nB=$(date)\n", "A=1\necho hi\n", "A=1 cmd\n", "A=`id`\n", "A=1 | cat\n",
                           "A=1\nfor x in 1; do B=$x; done\n", "cat <<EOF\nx\nEOF\n", "A=$1\n",
                           "A=1 > /tmp/f\n", "f() { A=1; }\n", "[ -d /x ]\n"}) {
    ShellVars v = vars({{"KEEP", "k"}});
    auto r = run_env_script(text, v);
    EXPECT_FALSE(r.supported) << text;
    EXPECT_FALSE(r.reason.empty());
    EXPECT_EQ(v.size(), 1u) << text;
  }
}

TEST(EnvScript, FileTestsUseCallback) {
  ShellVars v;
  auto ft = [](char op, const std::string& p) { return op == 'd' && p == "/opt"; };
  ASSERT_TRUE(run_env_script("if [ -d /opt ]; then A=1; fi\nif [ -d /no ]; then B=1; fi\n", v, ft).supported);
  EXPECT_EQ(get(v, "A"), "1");
  EXPECT_EQ(get(v, "B"), "<unset>");
}

TEST(EnvScript, UnsetAndDeclaredExport) {
  ShellVars v = vars({{"A", "1"}, {"B", "2"}});
  ASSERT_TRUE(run_env_script("unset A\nexport C\n", v).supported);
  EXPECT_EQ(v.count("A"), 0u);
  EXPECT_TRUE(v["C"].exported);
  EXPECT_FALSE(v["C"].value.has_value());
}

TEST(EnvScript, ExpandDoubleQuoted) {
  ShellVars v = vars({{"HOME", "/h"}});
  EXPECT_EQ(*expand_double_quoted("$HOME/a \\\"q\\\" \\\\", v), "/h/a \"q\" \\");
  EXPECT_FALSE(expand_double_quoted("$(id)", v).has_value());
  EXPECT_TRUE(is_shell_name("_A1"));
  EXPECT_FALSE(is_shell_name("1A"));
  EXPECT_FALSE(is_shell_name("A-B"));
}
