// /etc/passwd and /etc/group for the container: the image's own files with the invoking user's
// entry and groups added (APPTAINER.md 5.2; binding the host's files breaks under LDAP). Pure
// text in, text out; the launcher reads the image's files and binds the result.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rbox::container {

struct PasswdEntry {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string gecos;
  std::string home;  // home as seen in the container
  std::string shell;
};

// The image's passwd with lines for the same name or uid replaced by the user's line, which is
// appended (so getpwuid and getpwnam both find it).
std::string render_passwd(std::string_view image_passwd, const PasswdEntry& user);

// The image's group with "name:x:gid:user" for each of the user's groups appended; image lines
// with the same gid or name are dropped so the membership is what lookups see.
std::string render_group(std::string_view image_group, const std::string& user_name,
                         const std::vector<std::pair<gid_t, std::string>>& groups);

}  // namespace rbox::container
