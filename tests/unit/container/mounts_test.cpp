// Unit tests for container/mounts path resolution inside a root (no mounts; a temp tree with
// hostile symlinks) and container/host_check parsing.
#include "container/mounts.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container/host_check.hpp"
#include "hostile_tree.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::container;

namespace {

struct Tree {
  fs::TempDir dir{"rbox-mounts-"};
  UniqueFd fd;
  Tree() {
    test_trees::make_hostile_tree(dir.path());
    fd.reset(::open(dir.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  }
};

}  // namespace

TEST(ResolveInRoot, SymlinksStayInsideTheRoot) {
  Tree t;
  auto r = sys::resolve_in_root(t.fd.get(), "/etc/localtime");
  EXPECT_EQ(r.canonical(), "/usr/share/zoneinfo/UTC");
  EXPECT_FALSE(r.last_is_dir);
  EXPECT_TRUE(r.missing.empty());

  r = sys::resolve_in_root(t.fd.get(), "/escape/passwd");  // ../../.. clamps at the root
  EXPECT_EQ(r.canonical(), "/etc");
  EXPECT_EQ(r.missing, (std::vector<std::string>{"passwd"}));

  r = sys::resolve_in_root(t.fd.get(), "/procroot/shadow");  // no magic links: proc is not in the root
  EXPECT_EQ(r.full(), "/proc/self/root/etc/shadow");
  EXPECT_TRUE(r.existing.empty());

  r = sys::resolve_in_root(t.fd.get(), "/home/alice/work");  // dangling: created under var/home
  EXPECT_EQ(r.full(), "/var/home/alice/work");
  EXPECT_THROW(sys::resolve_in_root(t.fd.get(), "/loop1/x"), Error);
  EXPECT_THROW(sys::resolve_in_root(t.fd.get(), "/etc/hosts/x"), Error);
}

TEST(ResolveInRoot, CreateMountPointInLayer) {
  Tree t;
  fs::TempDir layer("rbox-layer-");
  UniqueFd lfd(::open(layer.path().c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  auto r = sys::resolve_in_root(t.fd.get(), "/etc/new/dir");
  sys::create_mount_point(lfd.get(), t.fd.get(), r, false);
  EXPECT_TRUE(fs::is_dir(layer.path() + "/etc/new/dir"));
  r = sys::resolve_in_root(t.fd.get(), "/etc/file.conf");
  sys::create_mount_point(lfd.get(), t.fd.get(), r, true);
  struct stat st {};
  ASSERT_EQ(::stat((layer.path() + "/etc/file.conf").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_FALSE(fs::exists(t.dir.path() + "/etc/new"));  // the image is never written
  EXPECT_EQ(sys::overlay_escape("/a,b:c\\d"), "/a\\,b\\:c\\\\d");
}

TEST(HostCheck, KernelVersion) {
  EXPECT_EQ(parse_kernel_version("6.1.0-18-amd64"), std::make_pair(6, 1));
  EXPECT_EQ(parse_kernel_version("4.18.0-513.el8.x86_64"), std::make_pair(4, 18));
  EXPECT_EQ(parse_kernel_version("garbage"), std::make_pair(0, 0));
  auto [major, minor] = kernel_version();
  EXPECT_GT(major * 100 + minor, 300);
  EXPECT_NE(apparmor_profile("/opt/rbox/bin/rbox").find("profile rbox /opt/rbox/bin/rbox"),
            std::string::npos);
}
