// Implementation of container/passwd.hpp.
#include "container/passwd.hpp"

#include <set>

#include "util/strings.hpp"

namespace rbox::container {

namespace {

// Field i of a colon-separated line, or "".
std::string field(std::string_view line, size_t i) {
  auto f = str::split(line, ':');
  return i < f.size() ? f[i] : "";
}

}  // namespace

std::string render_passwd(std::string_view image_passwd, const PasswdEntry& user) {
  std::string out;
  std::string uid = std::to_string(user.uid);
  for (const auto& line : str::split_lines(image_passwd)) {
    if (!line.empty() && line[0] != '#' && (field(line, 0) == user.name || field(line, 2) == uid)) continue;
    out += line;
    out += '\n';
  }
  out += user.name + ":x:" + uid + ":" + std::to_string(user.gid) + ":" + user.gecos + ":" + user.home + ":" +
         user.shell + "\n";
  return out;
}

std::string render_group(std::string_view image_group, const std::string& user_name,
                         const std::vector<std::pair<gid_t, std::string>>& groups) {
  std::set<std::string> names, gids;
  for (const auto& [gid, name] : groups) {
    names.insert(name);
    gids.insert(std::to_string(gid));
  }
  std::string out;
  for (const auto& line : str::split_lines(image_group)) {
    if (!line.empty() && line[0] != '#' && (names.count(field(line, 0)) || gids.count(field(line, 2))))
      continue;
    out += line;
    out += '\n';
  }
  for (const auto& [gid, name] : groups) out += name + ":x:" + std::to_string(gid) + ":" + user_name + "\n";
  return out;
}

}  // namespace rbox::container
