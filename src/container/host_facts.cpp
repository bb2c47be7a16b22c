// gather_host_facts (container/plan.hpp): the invoking user, groups, working directory,
// environment and subordinate id ranges — read once, cheaply (one passwd lookup, one getgrgid
// per group, /etc/subuid only for --fakeroot callers that ask).
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "container/plan.hpp"
#include "util/fs.hpp"
#include "util/nss.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace rbox::container {

namespace {

std::optional<SubIdRange> subid_range(const std::string& file, const std::string& user, uid_t uid) {
  std::string text;
  try {
    text = fs::read_file(file);
  } catch (...) {
    return std::nullopt;
  }
  for (const auto& line : str::split_lines(text)) {
    auto f = str::split(str::trim(line), ':');
    if (f.size() != 3 || (f[0] != user && f[0] != std::to_string(uid))) continue;
    SubIdRange r;
    r.start = std::strtoul(f[1].c_str(), nullptr, 10);
    r.count = std::strtoul(f[2].c_str(), nullptr, 10);
    if (r.count > 0) return r;
  }
  return std::nullopt;
}

}  // namespace

HostFacts gather_host_facts(bool want_subids) {
  HostFacts h;
  nss::User u = nss::current_user();
  h.user_name = u.name;
  h.uid = u.uid;
  h.gid = ::getgid();
  h.gecos = u.gecos;
  h.home = u.home.empty() ? "/" : u.home;
  h.shell = u.shell.empty() ? "/bin/sh" : u.shell;

  std::vector<gid_t> gids = {h.gid};
  int n = ::getgroups(0, nullptr);
  if (n > 0) {
    std::vector<gid_t> more(n);
    n = ::getgroups(n, more.data());
    for (int i = 0; i < n; ++i)
      if (std::find(gids.begin(), gids.end(), more[i]) == gids.end()) gids.push_back(more[i]);
  }
  for (gid_t g : gids)
    if (auto name = nss::group_name(g)) h.groups.emplace_back(g, *name);

  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf)) {
    h.cwd_real = buf;
    h.cwd = buf;
    // Apptainer (Go's os.Getwd) prefers $PWD when it names the same directory.
    const char* pwd = std::getenv("PWD");
    struct stat a {
    }, b{};
    if (pwd && pwd[0] == '/' && ::stat(pwd, &a) == 0 && ::stat(".", &b) == 0 && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino)
      h.cwd = normalize_path(pwd);
  }
  for (char** e = environ; e && *e; ++e) h.environ.emplace_back(*e);

  if (want_subids) {
    h.have_newidmap = ::access("/usr/bin/newuidmap", X_OK) == 0 && ::access("/usr/bin/newgidmap", X_OK) == 0;
  }
  if (h.have_newidmap) {
    h.subuid = subid_range("/etc/subuid", h.user_name, h.uid);
    h.subgid = subid_range("/etc/subgid", h.user_name, h.uid);
  }

  h.realpath = [](const std::string& p) -> std::optional<std::string> {
    char out[PATH_MAX];
    if (!::realpath(p.c_str(), out)) return std::nullopt;
    return std::string(out);
  };
  h.is_dir = [](const std::string& p) { return fs::is_dir(p); };
  h.read_file = [](const std::string& p) { return fs::read_file(p); };
  return h;
}

}  // namespace rbox::container
