// Static glibc cannot load the host's NSS modules safely (a dlopen of libnss_systemd crashes,
// see STATIC.md); pin lookups to the built-in files/dns modules and look users up through the
// host's getent when files have no entry.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace rbox::nss {

// Call first thing in main(). No-op in dynamic builds.
void pin_builtin_modules();

struct User {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string gecos;
  std::string home;
  std::string shell;
};

// The passwd entry of uid: getpwuid, then `getent passwd UID`, then $USER/$HOME.
User current_user();
std::optional<std::string> group_name(gid_t gid);

}  // namespace rbox::nss
