// Implementation of container/action.hpp. Dispatch order and messages follow runtime/action.sh,
// which follows Apptainer's action script (APPTAINER.md 4.3).
#include "container/action.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/embedded.hpp"
#include "util/strings.hpp"

namespace rbox::container {

std::string env_lookup(const std::vector<std::string>& env, const std::string& name) {
  std::string prefix = name + "=";
  for (const auto& e : env)
    if (str::starts_with(e, prefix)) return e.substr(prefix.size());
  return "";
}

ActionCommand resolve_action(Action action, const std::vector<std::string>& args, const std::string& app,
                             const std::string& singularity_shell,
                             const std::function<bool(const std::string&)>& exe) {
  ActionCommand c;
  auto with_args = [&](std::vector<std::string> head) {
    head.insert(head.end(), args.begin(), args.end());
    return head;
  };
  switch (action) {
    case Action::kExec:
      c.argv = args;
      return c;
    case Action::kShell:
      if (!singularity_shell.empty() && exe(singularity_shell)) {
        c.argv = with_args({singularity_shell});
      } else if (exe("/bin/bash")) {
        c.argv = with_args({"/bin/bash", "--norc"});
        c.env.push_back("SHELL=/bin/bash");
      } else if (exe("/bin/sh")) {
        c.argv = with_args({"/bin/sh"});
        c.env.push_back("SHELL=/bin/sh");
      } else {
        c.error = "/bin/sh does not exist in the container";
        c.status = 1;
      }
      return c;
    case Action::kRun:
      if (!app.empty()) {
        std::string rs = "/scif/apps/" + app + "/scif/runscript";
        if (exe(rs)) {
          c.argv = with_args({rs});
        } else {
          c.error = "no runscript for app " + app + " in the container";
          c.status = 1;
        }
      } else if (exe("/.singularity.d/runscript")) {
        c.argv = with_args({"/.singularity.d/runscript"});
      } else if (exe("/apptainer")) {
        c.argv = with_args({"/apptainer"});
      } else if (exe("/bin/sh")) {
        c.note = "no runscript in the container, running /bin/sh";
        c.argv = with_args({"/bin/sh"});
      } else {
        c.error = "no runscript and no /bin/sh in the container";
        c.status = 1;
      }
      return c;
    case Action::kTest:
      if (!app.empty()) {
        std::string t = "/scif/apps/" + app + "/scif/test";
        if (exe(t)) {
          c.argv = with_args({t});
        } else {
          c.error = "no test for app " + app + " in the container";
          c.status = 1;
        }
      } else if (exe("/.singularity.d/test")) {
        c.argv = with_args({"/.singularity.d/test"});
      } else {
        c.note = "no test script in the container";
        c.status = 0;
      }
      return c;
  }
  return c;
}

std::vector<std::string> shell_action_argv(Action action, const std::vector<std::string>& args) {
  const embedded::File* f = embedded::find("action.sh");
  std::vector<std::string> argv = {"/bin/sh", "-c", f ? std::string(embedded::contents(*f)) : "exit 255",
                                   "/.singularity.d/actions/" + std::string(action_name(action))};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

namespace {

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// execve, then /bin/sh FILE ARGS for ENOEXEC (a script without #!).
void exec_one(const std::string& path, const std::vector<std::string>& argv, char* const* envp) {
  auto a = c_strings(argv);
  ::execve(path.c_str(), a.data(), envp);
  if (errno == ENOEXEC) {
    std::vector<std::string> sh = {"/bin/sh", path};
    sh.insert(sh.end(), argv.begin() + 1, argv.end());
    auto b = c_strings(sh);
    ::execve("/bin/sh", b.data(), envp);
    errno = ENOEXEC;
  }
}

}  // namespace

void exec_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  std::string& tried, const std::vector<std::string>* absent_in) {
  auto envp = c_strings(env);
  if (argv.empty()) {
    errno = EINVAL;
    return;
  }
  const std::string& cmd = argv[0];
  tried = cmd;
  if (cmd.find('/') != std::string::npos) {
    exec_one(cmd, argv, envp.data());
    return;
  }
  std::string path = env_lookup(env, "PATH");
  if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  int best = ENOENT;
  for (const auto& dir : str::split(path, ':')) {
    if (absent_in && std::find(absent_in->begin(), absent_in->end(), dir) != absent_in->end()) continue;
    std::string full = (dir.empty() ? "." : dir) + "/" + cmd;
    exec_one(full, argv, envp.data());
    // Like execvp: remember EACCES but keep looking; stop on errors other than "not here".
    if (errno == EACCES) {
      best = EACCES;
      tried = full;
    } else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG) {
      tried = full;
      return;
    }
  }
  errno = best;
}

}  // namespace rbox::container
