// The tree of hostile symlinks that path-resolution tests walk: links that climb out of the
// root, absolute links, magic /proc links, loops and dangling links. Shared by the kernel walk
// (mounts_test) and the image reader's walk (image_facts_test), which must agree on it.
#pragma once

#include <unistd.h>

#include <string>

#include "util/fs.hpp"

namespace rbox::test_trees {

inline void make_hostile_tree(const std::string& r) {
  fs::mkdir_p(r + "/etc");
  fs::mkdir_p(r + "/usr/share/zoneinfo");
  fs::write_file(r + "/etc/hosts", "x");
  fs::write_file(r + "/usr/share/zoneinfo/UTC", "z");
  ::symlink("/usr/share/zoneinfo/UTC", (r + "/etc/localtime").c_str());
  ::symlink("../../../../../../etc", (r + "/escape").c_str());
  ::symlink("/proc/self/root/etc", (r + "/procroot").c_str());
  ::symlink("loop2", (r + "/loop1").c_str());
  ::symlink("loop1", (r + "/loop2").c_str());
  ::symlink("var/home", (r + "/home").c_str());
}

}  // namespace rbox::test_trees
