// Tests for the cached base trees: fill once, hit afterwards, eviction of unpinned entries, and a
// real overlay over an entry in a user namespace (writes land in the upper directory only).
#include "build/base_cache.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "container/fakeroot.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace rbox::build {
namespace {

TEST(BaseCache, FillsOnceThenHits) {
  fs::TempDir dir;
  BaseCache cache(dir.path() + "/rootfs", "root-mapped 1:1");
  int fills = 0;
  auto fill = [&](const std::string& d) {
    ++fills;
    fs::write_file(d + "/etc-marker", "base");
  };
  bool hit = true;
  std::string tree;
  {
    auto e = cache.get("oci\nsha256:aa", fill, &hit);
    EXPECT_FALSE(hit);
    tree = e.tree;
    EXPECT_EQ(fs::read_file(e.tree + "/etc-marker"), "base");
  }
  {
    auto e = cache.get("oci\nsha256:aa", fill, &hit);
    EXPECT_TRUE(hit);
    EXPECT_EQ(e.tree, tree);
  }
  EXPECT_EQ(fills, 1);
  // Another mode never shares an entry.
  BaseCache other(dir.path() + "/rootfs", "subuid u0,1,1");
  auto e2 = other.get("oci\nsha256:aa", fill, &hit);
  EXPECT_FALSE(hit);
  EXPECT_NE(e2.tree, tree);
  // A failing fill leaves nothing behind.
  EXPECT_THROW(cache.get(
                   "oci\nsha256:bb", [](const std::string&) { throw Error("boom"); }, &hit),
               Error);
  auto e3 = cache.get("oci\nsha256:bb", fill, &hit);
  EXPECT_FALSE(hit);
}

TEST(BaseCache, EvictsUnpinnedLeastRecentlyUsed) {
  fs::TempDir dir;
  BaseCache cache(dir.path() + "/rootfs", "m");
  bool hit;
  auto fill = [](const std::string& d) { fs::write_file(d + "/f", "x"); };
  auto pinned = cache.get("k0", fill, &hit);
  std::string t1, t2;
  {
    auto e1 = cache.get("k1", fill, &hit);
    t1 = e1.tree;
  }
  ::sleep(1);  // distinct mtimes
  {
    auto e2 = cache.get("k2", fill, &hit);
    t2 = e2.tree;
  }
  cache.evict(1);
  EXPECT_TRUE(fs::exists(pinned.tree));  // in use: kept even though it is old
  EXPECT_FALSE(fs::exists(t1));
  EXPECT_TRUE(fs::exists(t2));
}

TEST(BaseCache, CleanRemovesUnpinnedEntries) {
  if (!container::user_namespace_problem().empty()) GTEST_SKIP() << container::user_namespace_problem();
  fs::TempDir dir;
  BaseCache cache(dir.path() + "/rootfs", "m");
  bool hit;
  auto fill = [](const std::string& d) { fs::write_file(d + "/f", "x"); };
  auto pinned = cache.get("k0", fill, &hit);
  { cache.get("k1", fill, &hit); }
  EXPECT_EQ(clean_base_cache(dir.path()), 1u);
  EXPECT_TRUE(fs::exists(pinned.tree));
  EXPECT_EQ(clean_base_cache(dir.path() + "/nothing-here"), 0u);
}

TEST(BaseCache, OverlayKeepsTheEntryUntouched) {
  if (!container::user_namespace_problem().empty()) GTEST_SKIP() << container::user_namespace_problem();
  fs::TempDir dir;
  const std::string lower = dir.path() + "/lower", upper = dir.path() + "/upper", work = dir.path() + "/work",
                    merged = dir.path() + "/merged";
  for (const auto& d : {lower, upper, work, merged}) fs::mkdir_p(d);
  fs::write_file(lower + "/base", "base");
  container::FakerootPlan p;
  p.mode = container::FakerootMode::kRootMapped;
  p.uid = ::getuid();
  p.gid = ::getgid();
  p.uid_map = {{0, static_cast<uint32_t>(p.uid), 1}};
  p.gid_map = {{0, static_cast<uint32_t>(p.gid), 1}};
  int rc = container::run_in_user_namespace(p, [&] {
    if (!private_mount_namespace().empty()) return 10;
    std::string why = mount_overlay(lower, upper, work, merged);
    if (!why.empty()) return 77;  // kernel without unprivileged overlay
    fs::write_file(merged + "/base", "changed");
    fs::write_file(merged + "/new", "new");
    return fs::read_file(merged + "/base") == "changed" ? 0 : 11;
  });
  if (rc == 77) GTEST_SKIP() << "unprivileged overlayfs unavailable";
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(fs::read_file(lower + "/base"), "base");
  EXPECT_FALSE(fs::exists(lower + "/new"));
  EXPECT_EQ(fs::read_file(upper + "/base"), "changed");
  EXPECT_EQ(mount_overlay(lower + ",x", upper, work, merged).empty(), false);
}

}  // namespace
}  // namespace rbox::build
