// Unit tests for container/environment: Apptainer's precedence, and the native evaluation
// agreeing with runtime/action.sh run by a real /bin/sh over the same files.
#include "container/environment.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

using namespace rbox;
using namespace rbox::container;

namespace {

std::string lookup(const std::vector<std::string>& env, const std::string& k) {
  for (const auto& e : env)
    if (e.rfind(k + "=", 0) == 0) return e.substr(k.size() + 1);
  return "<unset>";
}

EnvInputs base_inputs() {
  EnvInputs in;
  in.host_environ = {"TERM=xterm",
                     "HOME=/host/home",
                     "PATH=/host/bin",
                     "LD_LIBRARY_PATH=/host/lib",
                     "FOO=host",
                     "APPTAINER_BIND=/x",
                     "RBOX_TMPDIR=/t",
                     "APPTAINERENV_BAR=bar",
                     "SINGULARITYENV_BAR=old",
                     "SINGULARITYENV_BAZ=baz",
                     "APPTAINERENV_PATH=/only",
                     "APPTAINERENV_HOME=/nope",
                     "http_proxy=http://p",
                     "EMPTY="};
  in.home = "/home/u";
  in.pwd = "/work";
  in.runtime = {{"APPTAINER_CONTAINER", "/img.sif"},
                {"APPTAINER_NAME", "img.sif"},
                {"SINGULARITY_NAME", "img.sif"},
                {"RBOX_COMMAND", "exec"}};
  return in;
}

ImageEnvironment stock_image() {
  ImageEnvironment img;
  img.has_env_dir = true;
  for (const char* f :
       {"01-base.sh", "90-environment.sh", "94-appsbase.sh", "95-apps.sh", "99-base.sh", "99-runtimevars.sh"})
    img.files.push_back({f, fs::read_file(std::string(RBOX_SOURCE_DIR) + "/runtime/env/" + f)});
  img.files.insert(img.files.begin() + 1, EnvFile{"10-docker2singularity.sh",
                                                  "export PATH=/opt/tool/bin:/usr/bin\nexport FOO=image\n"});
  img.files[2].text += "export LANG=en_US.UTF-8\nexport IMG_ONLY=1\n";
  return img;
}

}  // namespace

TEST(Environment, HostFilteringAndInjection) {
  EnvPlan p = plan_environment(base_inputs());
  auto has = [](const std::vector<EnvVar>& l, const std::string& k) {
    return std::any_of(l.begin(), l.end(), [&](const EnvVar& v) { return v.name == k; });
  };
  EXPECT_TRUE(has(p.restore, "TERM"));
  EXPECT_TRUE(has(p.restore, "FOO"));
  EXPECT_FALSE(has(p.restore, "LD_LIBRARY_PATH"));
  EXPECT_FALSE(has(p.restore, "APPTAINER_BIND"));
  EXPECT_FALSE(has(p.restore, "RBOX_TMPDIR"));
  EXPECT_TRUE(has(p.keep, "HOME"));
  EXPECT_TRUE(has(p.keep, "APPTAINER_NAME"));
  EXPECT_FALSE(has(p.keep, "SINGULARITY_NAME"));
  EXPECT_TRUE(has(p.restore, "SINGULARITY_NAME"));
  // APPTAINERENV_ beats SINGULARITYENV_, PATH becomes SING_USER_DEFINED_PATH, HOME refused.
  EXPECT_EQ(p.inject[0].name, "BAR");
  EXPECT_EQ(p.inject[0].value, "bar");
  EXPECT_TRUE(has(p.inject, "BAZ"));
  EXPECT_TRUE(has(p.inject, "SING_USER_DEFINED_PATH"));
  EXPECT_FALSE(has(p.inject, "HOME"));
  EXPECT_FALSE(p.warnings.empty());
}

TEST(Environment, CleanenvKeepsTermAndProxies) {
  EnvInputs in = base_inputs();
  in.cleanenv = true;
  EnvPlan p = plan_environment(in);
  std::set<std::string> names;
  for (const auto& v : p.restore) names.insert(v.name);
  EXPECT_TRUE(names.count("TERM"));
  EXPECT_TRUE(names.count("http_proxy"));
  EXPECT_TRUE(names.count("LANG"));
  EXPECT_FALSE(names.count("FOO"));
}

TEST(Environment, CliEnvBeatsEnvFileBeatsHostPrefix) {
  EnvInputs in = base_inputs();
  in.env_file_vars = {{"BAR", "file"}, {"FILEONLY", "f"}};
  in.cli_envs = {{"BAR", "cli"}};
  EnvPlan p = plan_environment(in);
  for (const auto& v : p.inject) {
    if (v.name == "BAR") {
      EXPECT_EQ(v.value, "cli");
    }
  }
}

TEST(Environment, NativePrecedence) {
  EnvInputs in = base_inputs();
  in.cli_envs = {{"FOO", "cli-$HOME"}};
  EnvPlan p = plan_environment(in);
  auto n = evaluate_natively(p, stock_image(), {});
  ASSERT_TRUE(n.supported) << n.reason;
  EXPECT_EQ(lookup(n.environ, "FOO"), "cli-/home/u");   // --env after the image, evaluated
  EXPECT_EQ(lookup(n.environ, "PATH"), "/only");        // APPTAINERENV_PATH wins last
  EXPECT_EQ(lookup(n.environ, "LANG"), "en_US.UTF-8");  // image beats nothing on host
  EXPECT_EQ(lookup(n.environ, "TERM"), "xterm");        // host restored
  EXPECT_EQ(lookup(n.environ, "HOME"), "/home/u");
  EXPECT_EQ(lookup(n.environ, "LD_LIBRARY_PATH"), "/.singularity.d/libs");
  EXPECT_EQ(lookup(n.environ, "PS1"), "Apptainer> ");
  EXPECT_EQ(lookup(n.environ, "EMPTY"), "");
  EXPECT_EQ(lookup(n.environ, "SINGULARITY_NAME"), "img.sif");
  EXPECT_EQ(lookup(n.environ, "APPTAINER_ENVIRONMENT"), "/.singularity.d/env/91-environment.sh");
  EXPECT_EQ(lookup(n.environ, "SING_USER_DEFINED_PATH"), "<unset>");
}

TEST(Environment, NativeWithoutEnvDirAndNoEval) {
  EnvInputs in = base_inputs();
  in.cli_envs = {{"Q", "$HOME"}};
  in.no_eval = true;
  EnvPlan p = plan_environment(in);
  auto n = evaluate_natively(p, ImageEnvironment{}, {});
  ASSERT_TRUE(n.supported);
  EXPECT_EQ(lookup(n.environ, "Q"), "$HOME");
  EXPECT_EQ(lookup(n.environ, "PATH"), "/only");
}

TEST(Environment, NativeGivesUpOnCommandSubstitution) {
  EnvPlan p = plan_environment(base_inputs());
  ImageEnvironment img;
  img.has_env_dir = true;
  img.files = {{"90-environment.sh", "export X=$(uname)\n"}};
  auto n = evaluate_natively(p, img, {});
  EXPECT_FALSE(n.supported);
  EXPECT_EQ(n.failed_file, "/.singularity.d/env/90-environment.sh");
}

TEST(Environment, EnvFileEvaluation) {
  auto vars = evaluate_env_file("f.env", "# c\nA=1\nexport B=\"$HOME/x\"\n", {"HOME=/h", "KEEP=k"});
  ASSERT_EQ(vars.size(), 2u);
  EXPECT_EQ(vars[0].name, "A");
  EXPECT_EQ(vars[1].value, "/h/x");
  EXPECT_THROW(evaluate_env_file("f.env", "A=$(id)\n", {}), Error);
  EXPECT_THROW(parse_env_assignment("NOEQUALS", "--env"), Error);
  EXPECT_EQ(parse_env_assignment("A=b=c", "--env").value, "b=c");
}

// runtime/action.sh under a real /bin/sh must produce what the native path produces.
TEST(Environment, ShellPathAgreesWithNative) {
  if (::access("/bin/sh", X_OK) != 0) GTEST_SKIP() << "no /bin/sh";
  fs::TempDir dir("rbox-envtest-");
  ImageEnvironment img = stock_image();
  fs::mkdir_p(dir.path() + "/env");
  for (const auto& f : img.files) fs::write_file(dir.path() + "/env/" + f.name, f.text);
  EnvInputs in = base_inputs();
  in.cli_envs = {{"FOO", "cli-$HOME"}, {"QUOTE", "a\"b\\c"}};
  EnvPlan p = plan_environment(in);
  auto native = evaluate_natively(p, img, {});
  ASSERT_TRUE(native.supported);

  std::string script = fs::read_file(std::string(RBOX_SOURCE_DIR) + "/runtime/action.sh");
  for (size_t pos; (pos = script.find("/.singularity.d/env")) != std::string::npos;)
    script.replace(pos, 19, dir.path() + "/env");
  std::vector<std::string> env = shell_environment(p, "exec");
  std::vector<std::string> argv = {"/bin/sh", "-c", script, "action", "/usr/bin/env", "-0"};
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    std::vector<char*> a, e;
    for (auto& s : argv) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : env) e.push_back(s.data());
    e.push_back(nullptr);
    ::execve("/bin/sh", a.data(), e.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  std::set<std::string> from_shell, from_native(native.environ.begin(), native.environ.end());
  for (auto kv : str::split(out, '\0')) {
    if (kv.empty() || kv.rfind("PWD=", 0) == 0 || kv.rfind("SHLVL=", 0) == 0 || kv.rfind("_=", 0) == 0 ||
        kv.rfind("OLDPWD=", 0) == 0)
      continue;
    // The test moved /.singularity.d/env into a temporary directory; undo that in values.
    if (auto pos = kv.find(dir.path() + "/env"); pos != std::string::npos)
      kv.replace(pos, dir.path().size() + 4, "/.singularity.d/env");
    from_shell.insert(kv);
  }
  from_native.erase("PWD=/work");
  EXPECT_EQ(from_shell, from_native);
}
