// Implementation of util/nss.hpp.
#include "util/nss.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

#include "util/strings.hpp"
#include "util/subprocess.hpp"

#ifdef RBOX_STATIC
extern "C" int __nss_configure_lookup(const char* db, const char* service_line);
#endif

namespace rbox::nss {

void pin_builtin_modules() {
#ifdef RBOX_STATIC
  for (const char* db :
       {"passwd", "group", "shadow", "initgroups", "services", "protocols", "networks", "netgroup"})
    __nss_configure_lookup(db, "files");
  __nss_configure_lookup("hosts", "files dns");
#endif
}

static std::optional<User> from_getent(uid_t uid) {
  for (const char* getent : {"/usr/bin/getent", "/bin/getent"}) {
    if (::access(getent, X_OK) != 0) continue;
    try {
      proc::Options o;
      o.capture_stdout = true;
      o.quiet_stderr = true;
      auto r = proc::run({getent, "passwd", std::to_string(uid)}, o);
      if (r.status != 0) return std::nullopt;
      auto f = str::split(str::trim(r.output), ':');
      if (f.size() < 7) return std::nullopt;
      return User{f[0], uid, static_cast<gid_t>(std::strtoul(f[3].c_str(), nullptr, 10)), f[4], f[5], f[6]};
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

User current_user() {
  uid_t uid = ::getuid();
  if (struct passwd* pw = ::getpwuid(uid))
    return User{pw->pw_name, uid, pw->pw_gid, pw->pw_gecos ? pw->pw_gecos : "", pw->pw_dir, pw->pw_shell};
  if (auto u = from_getent(uid)) return *u;
  User u;
  u.uid = uid;
  u.gid = ::getgid();
  const char* name = std::getenv("USER");
  u.name = name && *name ? name : std::to_string(uid);
  const char* home = std::getenv("HOME");
  u.home = home && *home ? home : "/";
  u.shell = "/bin/sh";
  return u;
}

std::optional<std::string> group_name(gid_t gid) {
  if (struct group* gr = ::getgrgid(gid)) return std::string(gr->gr_name);
  return std::nullopt;
}

}  // namespace rbox::nss
