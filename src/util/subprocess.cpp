// Implementation of util/subprocess.hpp.
#include "util/subprocess.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace rbox::proc {

int decode_status(int ws) {
  if (WIFEXITED(ws)) return WEXITSTATUS(ws);
  if (WIFSIGNALED(ws)) return 128 + WTERMSIG(ws);
  return 255;
}

std::string which(const std::string& program) {
  if (program.find('/') != std::string::npos) return ::access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
  for (const auto& dir : str::split(p, ':')) {
    if (dir.empty()) continue;
    std::string cand = dir + "/" + program;
    struct stat st;
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0)
      return cand;
  }
  return "";
}

Result run(const std::vector<std::string>& argv, const Options& opts) {
  if (argv.empty()) throw Error("run: empty command");
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : opts.env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  int pipefd[2] = {-1, -1};
  if (opts.capture_stdout && ::pipe2(pipefd, O_CLOEXEC) != 0) throw sys_error("pipe");
  UniqueFd rd(pipefd[0]), wr(pipefd[1]);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (opts.capture_stdout) posix_spawn_file_actions_adddup2(&fa, wr.get(), STDOUT_FILENO);
  if (opts.quiet_stderr) posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  if (!opts.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opts.cwd.c_str());
  pid_t pid;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, cargv.data(),
                          opts.env.empty() ? environ : cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw sys_error("run", argv[0], rc);
  wr.reset();

  Result res;
  if (opts.capture_stdout) {
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(rd.get(), buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      res.output.append(buf, static_cast<size_t>(n));
    }
  }
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0) {
    if (errno != EINTR) throw sys_error("waitpid", argv[0]);
  }
  res.status = decode_status(ws);
  return res;
}

}  // namespace rbox::proc
