// Tests for container/fakeroot: subid parsing, mode choice, and the seccomp no-op filter run for
// real in a root-mapped user namespace (needs unprivileged user namespaces, as rbox does).
#include "container/fakeroot.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace rbox::container {
namespace {

TEST(SubidRange, PicksExact65536ThenLargest) {
  std::string text =
      "# comment\n"
      "alice:100000:1000\n"
      "bob:200000:65536\n"
      "alice:300000:200000\n"
      "1001:500000:65536\n"
      "!alice:900000:65536\n"
      "broken line\n";
  auto a = find_subid_range(text, "alice", 1001);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->start, 500000u);  // the numeric entry has exactly 65536
  auto b = find_subid_range(text, "bob", 1002);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->start, 200000u);
  EXPECT_FALSE(find_subid_range(text, "carol", 1003));
  auto largest = find_subid_range("alice:1:10\nalice:50:70000\n", "alice", 7);
  ASSERT_TRUE(largest);
  EXPECT_EQ(largest->count, 70000u);
}

TEST(FakerootPlan, ChoosesModes) {
  fs::TempDir dir;
  std::string su = dir.path() + "/subuid", sg = dir.path() + "/subgid";
  FakerootOptions o;
  o.subuid_file = su;
  o.subgid_file = sg;

  EXPECT_EQ(plan_fakeroot("root", 0, 0, o).mode, FakerootMode::kRealRoot);

  // No files at all: root-mapped, with the reason.
  auto p = plan_fakeroot("alice", 1001, 1001, o);
  EXPECT_EQ(p.mode, FakerootMode::kRootMapped);
  EXPECT_NE(p.reason.find("no "), std::string::npos);
  ASSERT_EQ(p.uid_map.size(), 1u);
  EXPECT_EQ(p.uid_map[0].outside, 1001u);
  EXPECT_NE(p.describe().find("root-mapped"), std::string::npos);

  fs::write_file(su, "alice:100000:65536\n");
  fs::write_file(sg, "alice:100000:1000\n");
  p = plan_fakeroot("alice", 1001, 1001, o);
  EXPECT_EQ(p.mode, FakerootMode::kRootMapped);  // subgid range too small
  EXPECT_NE(p.reason.find("65536"), std::string::npos);

  fs::write_file(sg, "alice:300000:65536\n");
  p = plan_fakeroot("alice", 1001, 1001, o);
  if (p.mode == FakerootMode::kSubuid) {  // newuidmap installed
    ASSERT_EQ(p.uid_map.size(), 2u);
    EXPECT_EQ(p.uid_map[1].inside, 1u);
    EXPECT_EQ(p.uid_map[1].outside, 100000u);
    EXPECT_EQ(p.gid_map[1].outside, 300000u);
    EXPECT_EQ(p.mapped_count(), 65537u);
    EXPECT_NE(p.describe().find("/etc/subuid"), std::string::npos);
  }
  o.ignore_subuid = true;
  EXPECT_EQ(plan_fakeroot("alice", 1001, 1001, o).mode, FakerootMode::kRootMapped);
}

// A root-mapped plan for whoever runs the test (root in CI maps 0 → 0, which behaves the same:
// ids other than 0 are unmapped inside).
FakerootPlan root_mapped_plan() {
  FakerootPlan p;
  p.mode = FakerootMode::kRootMapped;
  p.uid = ::getuid();
  p.gid = ::getgid();
  p.uid_map = {{0, static_cast<uint32_t>(p.uid), 1}};
  p.gid_map = {{0, static_cast<uint32_t>(p.gid), 1}};
  return p;
}

TEST(FakerootFilter, BuildsForEachMode) {
  EXPECT_TRUE(build_fakeroot_filter(FakerootMode::kRealRoot).empty());
  auto full = build_fakeroot_filter(FakerootMode::kRootMapped);
  auto dev = build_fakeroot_filter(FakerootMode::kSubuid);
  EXPECT_FALSE(full.empty());
  EXPECT_FALSE(dev.empty());
  EXPECT_GT(full.insns.size(), dev.insns.size());
}

TEST(FakerootFilter, ChownBecomesNoOpInRootMappedNamespace) {
  if (!user_namespace_problem().empty()) GTEST_SKIP() << user_namespace_problem();
  fs::TempDir dir;
  std::string file = dir.path() + "/f";
  fs::write_file(file, "x");
  auto plan = root_mapped_plan();
  auto prog = build_fakeroot_filter(plan.mode);
  EXPECT_EQ(self_test_compat_abi(prog, plan.mode), "");
  int rc = run_in_user_namespace(plan, [&] {
    if (::getuid() != 0) return 10;
    // Without the filter a chown to an unmapped id fails (EINVAL) ...
    if (::chown(file.c_str(), 4242, 4242) == 0) return 11;
    if (install_filter(prog) != 0) return 12;
    if (verify_filter(plan.mode) != nullptr) return 13;
    // ... with it, it "succeeds" and changes nothing.
    if (::chown(file.c_str(), 4242, 4242) != 0) return 14;
    struct stat st {};
    if (::stat(file.c_str(), &st) != 0 || st.st_uid != 0) return 15;
    if (::setresuid(42, 42, 42) != 0 || ::setgroups(0, nullptr) != 0) return 16;
    if (::getuid() != 0) return 17;  // the lazy lie: nothing really changed
    // Device nodes "succeed" without appearing; FIFOs are real.
    std::string dev = dir.path() + "/null", fifo = dir.path() + "/fifo";
    if (::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) return 18;
    if (fs::exists(dev)) return 19;
    if (::mknod(fifo.c_str(), S_IFIFO | 0600, 0) != 0 || !fs::exists(fifo)) return 20;
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(FakerootFilter, RuntimeEntryPointInstallsTheRootMappedFilter) {
  if (!user_namespace_problem().empty()) GTEST_SKIP() << user_namespace_problem();
  EXPECT_FALSE(fakeroot_filter_active());
  int rc = run_in_user_namespace(root_mapped_plan(), [] {
    install_fakeroot_filter();  // what container/child.cpp calls for --fakeroot
    if (!fakeroot_filter_active()) return 1;
    return ::setgroups(0, nullptr) == 0 && ::syscall(SYS_kexec_load, 0, 0, nullptr, 0) == 0 ? 0 : 2;
  });
  EXPECT_EQ(rc, 0);
}

TEST(FakerootFilter, BodyExitCodeAndExceptionsPropagate) {
  if (!user_namespace_problem().empty()) GTEST_SKIP() << user_namespace_problem();
  auto plan = root_mapped_plan();
  EXPECT_EQ(run_in_user_namespace(plan, [] { return 7; }), 7);
  EXPECT_EQ(run_in_user_namespace(plan, []() -> int { throw Error("boom", 3); }), 3);
}

}  // namespace
}  // namespace rbox::container
