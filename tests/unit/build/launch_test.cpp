// Tests for build::launch: a real command in a real root filesystem (the host's static busybox),
// as fake root in a root-mapped user namespace, with /dev, /proc, binds and the seccomp filter.
#include "build/launch.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/subprocess.hpp"

namespace rbox::build {
namespace {

std::string busybox() {
  for (const char* p : {"/bin/busybox", "/usr/bin/busybox"})
    if (::access(p, X_OK) == 0) return p;
  return "";
}

container::FakerootPlan root_mapped() {
  container::FakerootPlan p;
  p.mode = container::FakerootMode::kRootMapped;
  p.uid = ::getuid();
  p.gid = ::getgid();
  p.uid_map = {{0, static_cast<uint32_t>(p.uid), 1}};
  p.gid_map = {{0, static_cast<uint32_t>(p.gid), 1}};
  return p;
}

class LaunchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (busybox().empty()) GTEST_SKIP() << "needs a static busybox (busybox-static)";
    if (!container::user_namespace_problem().empty()) GTEST_SKIP() << container::user_namespace_problem();
    root_ = dir_.path() + "/root";
    for (const char* d : {"bin", "proc", "dev", "sys", "tmp", "etc", "mnt"}) fs::mkdir_p(root_ + "/" + d);
    auto r = proc::run({"cp", busybox(), root_ + "/bin/busybox"});
    ASSERT_EQ(r.status, 0);
    ASSERT_EQ(::symlink("busybox", (root_ + "/bin/sh").c_str()), 0);
    fs::write_file(root_ + "/etc/resolv.conf", "");
    fs::write_file(dir_.path() + "/staged", "nameserver 192.0.2.1\n\n");
    fs::mkdir_p(dir_.path() + "/share");
    fs::write_file(dir_.path() + "/share/hello", "from host\n");
  }

  // Runs script with /bin/sh in the root as fake root; returns {status, output}.
  std::pair<int, std::string> run(const std::string& script, bool writable = true) {
    auto prog = container::build_fakeroot_filter(container::FakerootMode::kRootMapped);
    std::string out_file = dir_.path() + "/out";
    int rc = container::run_in_user_namespace(root_mapped(), [&] {
      LaunchSpec s;
      s.rootfs = root_;
      s.argv = {"/bin/sh", "-c", script};
      s.env = {"PATH=/bin", "HOME=/root"};
      s.writable = writable;
      s.binds = {{dir_.path() + "/staged", "/etc/resolv.conf", false, true},
                 {dir_.path() + "/share", "/mnt", true, false}};
      s.filter = &prog;
      std::string out;
      s.on_line = [&](std::string_view l) { out += std::string(l) + "\n"; };
      int status = launch(s);
      fs::write_file(out_file, out);
      return status;
    });
    return {rc, fs::read_file(out_file)};
  }

  fs::TempDir dir_;
  std::string root_;
};

TEST_F(LaunchTest, RunsAsFakeRootWithDevProcAndBinds) {
  auto [rc, out] =
      run("echo uid=$(busybox id -u); echo pid=$$; busybox cat /etc/resolv.conf | busybox head -1;"
          "busybox cat /mnt/hello; echo x > /dev/null && echo devnull-ok;"
          "echo data > /tmp/f; busybox chown 4242:4242 /tmp/f && echo chown-ok;"
          "busybox mknod /tmp/n c 1 3 && echo mknod-ok; busybox test -e /tmp/n || echo no-node;"
          "busybox grep NoNewPrivs /proc/self/status; echo oops > /mnt/x 2>/dev/null || echo ro-bind;"
          "exit 3");
  EXPECT_EQ(rc, 3);
  EXPECT_NE(out.find("uid=0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("pid=2\n"), std::string::npos) << out;  // PID 1 is the reaper
  EXPECT_NE(out.find("nameserver 192.0.2.1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("from host\n"), std::string::npos) << out;
  EXPECT_NE(out.find("devnull-ok\n"), std::string::npos) << out;
  EXPECT_NE(out.find("chown-ok\n"), std::string::npos) << out;
  EXPECT_NE(out.find("mknod-ok\nno-node\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ro-bind\n"), std::string::npos) << out;
  EXPECT_EQ(fs::read_file(root_ + "/tmp/f"), "data\n");
  EXPECT_EQ(fs::read_file(root_ + "/etc/resolv.conf"), "");  // the staged copy was only bound
}

TEST_F(LaunchTest, ReadOnlyRootAndMissingCommand) {
  auto [rc, out] =
      run("(echo x > /etc/g) 2>/dev/null || echo read-only; echo y > /tmp/scratch && echo tmp-ok", false);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "read-only\ntmp-ok\n");
  EXPECT_FALSE(fs::exists(root_ + "/tmp/scratch"));  // a tmpfs, not the image's /tmp
  std::string msg;
  int rc2 = container::run_in_user_namespace(root_mapped(), [&] {
    LaunchSpec s;
    s.rootfs = root_;
    s.argv = {"/bin/nonexistent"};
    try {
      launch(s);
    } catch (const Error& e) {
      return std::string(e.what()).find("/bin/nonexistent") != std::string::npos ? 0 : 2;
    }
    return 1;
  });
  EXPECT_EQ(rc2, 0);
}

}  // namespace
}  // namespace rbox::build
