// Unit tests for container/passwd and container/action.
#include <gtest/gtest.h>

#include <set>

#include "container/action.hpp"
#include "container/passwd.hpp"

using namespace rbox::container;

TEST(Passwd, ReplacesSameNameOrUidAndAppends) {
  std::string image =
      "root:x:0:0:root:/root:/bin/sh\nalice:x:5:5::/old:/bin/sh\nbob:x:1000:1000::/b:/bin/sh\n";
  PasswdEntry u{"alice", 1000, 1000, "Alice", "/home/alice", "/bin/bash"};
  std::string out = render_passwd(image, u);
  EXPECT_EQ(out, "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n");
  EXPECT_EQ(render_passwd("", u), "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n");
}

TEST(Group, AppendsUserGroups) {
  std::string image = "root:x:0:\nusers:x:100:\nsudo:x:27:someone\n";
  std::string out = render_group(image, "alice", {{1000, "alice"}, {27, "sudo"}});
  EXPECT_EQ(out, "root:x:0:\nusers:x:100:\nalice:x:1000:alice\nsudo:x:27:alice\n");
}

TEST(Action, Dispatch) {
  std::set<std::string> present;
  auto exe = [&](const std::string& p) { return present.count(p) > 0; };
  auto c = resolve_action(Action::kExec, {"ls", "-l"}, "", "", exe);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"ls", "-l"}));

  c = resolve_action(Action::kRun, {"a"}, "", "", exe);
  EXPECT_TRUE(c.argv.empty());
  EXPECT_EQ(c.status, 1);
  present = {"/bin/sh"};
  c = resolve_action(Action::kRun, {"a"}, "", "", exe);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"/bin/sh", "a"}));
  EXPECT_FALSE(c.note.empty());
  present.insert("/.singularity.d/runscript");
  c = resolve_action(Action::kRun, {"a"}, "", "", exe);
  EXPECT_EQ(c.argv[0], "/.singularity.d/runscript");

  c = resolve_action(Action::kShell, {}, "", "", exe);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"/bin/sh"}));
  EXPECT_EQ(c.env, (std::vector<std::string>{"SHELL=/bin/sh"}));
  present.insert("/bin/bash");
  c = resolve_action(Action::kShell, {"-c", "x"}, "", "", exe);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"/bin/bash", "--norc", "-c", "x"}));
  present.insert("/bin/zsh");
  c = resolve_action(Action::kShell, {}, "", "/bin/zsh", exe);
  EXPECT_EQ(c.argv, (std::vector<std::string>{"/bin/zsh"}));

  c = resolve_action(Action::kTest, {}, "", "", exe);
  EXPECT_TRUE(c.argv.empty());
  EXPECT_EQ(c.status, 0);
  present.insert("/scif/apps/foo/scif/test");
  c = resolve_action(Action::kTest, {}, "foo", "", exe);
  EXPECT_EQ(c.argv[0], "/scif/apps/foo/scif/test");
}

TEST(Action, ShellArgvCarriesEmbeddedScript) {
  auto argv = shell_action_argv(Action::kRun, {"x"});
  ASSERT_EQ(argv.size(), 5u);
  EXPECT_EQ(argv[0], "/bin/sh");
  EXPECT_NE(argv[2].find("__rbox_eval_chunks"), std::string::npos);
  EXPECT_EQ(argv[3], "/.singularity.d/actions/run");
  EXPECT_EQ(env_lookup({"A=1", "PATH=/x"}, "PATH"), "/x");
}
