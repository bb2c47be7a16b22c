// Unit tests for container/plan: Apptainer's default mounts and option rules, from fake host
// facts (no root, no filesystem).
#include "container/plan.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "util/error.hpp"

using namespace rbox;
using namespace rbox::container;

namespace {

HostFacts fake_host() {
  HostFacts h;
  h.user_name = "alice";
  h.uid = 1000;
  h.gid = 1000;
  h.home = "/home/alice";
  h.shell = "/bin/bash";
  h.groups = {{1000, "alice"}, {27, "sudo"}};
  h.cwd = "/home/alice/project";
  h.cwd_real = "/home/alice/project";
  h.environ = {"PATH=/usr/bin", "HOME=/home/alice", "TERM=xterm"};
  static const std::set<std::string> existing = {"/home/alice", "/home/alice/project", "/tmp",
                                                 "/var/tmp",    "/etc/hosts",          "/etc/localtime",
                                                 "/data",       "/srv/x.txt",          "/work/ov"};
  h.realpath = [](const std::string& p) -> std::optional<std::string> {
    if (p == "/etc/localtime") return std::string("/usr/share/zoneinfo/UTC");
    if (existing.count(p)) return p;
    return std::nullopt;
  };
  h.is_dir = [](const std::string& p) {
    return p != "/srv/x.txt" && p != "/usr/share/zoneinfo/UTC" && p != "/etc/hosts";
  };
  h.read_file = [](const std::string&) -> std::string { return "A=1\n"; };
  return h;
}

ImageInfo sif() {
  return {ImageKind::kSif, "/images/a.sif", "/images/a.sif"};
}

const MountEntry* find(const Plan& p, const std::string& target) {
  for (const auto& m : p.mounts)
    if (m.target == target) return &m;
  return nullptr;
}

std::string env_of(const Plan& p, const std::string& name) {
  for (const auto& v : p.env.keep)
    if (v.name == name) return v.value;
  for (const auto& v : p.env.restore)
    if (v.name == name) return v.value;
  return "<unset>";
}

}  // namespace

TEST(Plan, DefaultMounts) {
  LaunchOptions o;
  o.args = {"true"};
  Plan p = make_plan(o, sif(), fake_host());
  std::vector<std::string> targets;
  for (const auto& m : p.mounts) targets.push_back(m.target);
  std::vector<std::string> want = {"/proc",      "/sys",           "/dev",       "/tmp",
                                   "/var/tmp",   "/etc/localtime", "/etc/hosts", "/etc/passwd",
                                   "/etc/group", "/home/alice"};
  EXPECT_EQ(targets, want);  // cwd is inside the bound home: not bound again
  EXPECT_EQ(find(p, "/etc/localtime")->source, "/usr/share/zoneinfo/UTC");
  EXPECT_TRUE(find(p, "/etc/hosts")->read_only);
  EXPECT_TRUE(find(p, "/etc/hosts")->file);
  EXPECT_EQ(find(p, "/dev")->kind, MountKind::kDev);
  EXPECT_EQ(p.cwd, "/home/alice/project");
  EXPECT_EQ(p.ids.uid, 1000u);
  EXPECT_EQ(p.user.home, "/home/alice");
  EXPECT_EQ(env_of(p, "HOME"), "/home/alice");
  EXPECT_EQ(env_of(p, "APPTAINER_NAME"), "a.sif");
  EXPECT_EQ(env_of(p, "SINGULARITY_CONTAINER"), "/images/a.sif");
  EXPECT_EQ(env_of(p, "RBOX_COMMAND"), "exec");
}

TEST(Plan, CwdOutsideHomeIsBound) {
  HostFacts h = fake_host();
  h.cwd = h.cwd_real = "/data";
  Plan p = make_plan(LaunchOptions{}, sif(), h);
  ASSERT_NE(find(p, "/data"), nullptr);
  EXPECT_EQ(find(p, "/data")->origin, "cwd");
  h.cwd = h.cwd_real = "/usr/lib";
  p = make_plan(LaunchOptions{}, sif(), h);
  EXPECT_EQ(find(p, "/usr/lib"), nullptr);  // system directories come from the image
}

TEST(Plan, ContainUsesSessionDirsAndMinimalDev) {
  LaunchOptions o;
  o.contain = true;
  Plan p = make_plan(o, sif(), fake_host());
  EXPECT_EQ(find(p, "/tmp")->kind, MountKind::kSessionDir);
  EXPECT_EQ(find(p, "/home/alice")->kind, MountKind::kSessionDir);
  EXPECT_EQ(find(p, "/dev")->kind, MountKind::kDevMinimal);
  EXPECT_EQ(p.cwd, "/home/alice");
  EXPECT_EQ(find(p, "/home/alice/project"), nullptr);
}

TEST(Plan, ContainallAddsNamespacesAndCleanenv) {
  LaunchOptions o;
  o.containall = true;
  Plan p = make_plan(o, sif(), fake_host());
  EXPECT_TRUE(p.ns.pid);
  EXPECT_TRUE(p.ns.ipc);
  EXPECT_EQ(env_of(p, "LANG"), "C");
}

TEST(Plan, BindsFromEnvironmentAndFlags) {
  HostFacts h = fake_host();
  h.environ.push_back("APPTAINER_BIND=/data:/mnt/data:ro");
  LaunchOptions o;
  o.binds = {"/srv/x.txt:/etc/x.txt", "/data"};
  o.mounts = {"type=bind,src=/data,dst=/m"};
  Plan p = make_plan(o, sif(), h);
  ASSERT_NE(find(p, "/mnt/data"), nullptr);
  EXPECT_TRUE(find(p, "/mnt/data")->read_only);
  EXPECT_TRUE(find(p, "/etc/x.txt")->file);
  ASSERT_NE(find(p, "/m"), nullptr);
  EXPECT_EQ(env_of(p, "APPTAINER_BIND"), "/mnt/data,/etc/x.txt,/data,/m");
  o.binds = {"/nonexistent:/x"};
  EXPECT_THROW(make_plan(o, sif(), h), Error);
}

TEST(Plan, HomeOptions) {
  LaunchOptions o;
  o.home = "/data:/home/other";
  Plan p = make_plan(o, sif(), fake_host());
  EXPECT_EQ(find(p, "/home/other")->source, "/data");
  EXPECT_EQ(p.home, "/home/other");
  EXPECT_EQ(env_of(p, "HOME"), "/home/other");
  o = LaunchOptions{};
  o.no_home = true;
  p = make_plan(o, sif(), fake_host());
  EXPECT_EQ(find(p, "/home/alice"), nullptr);
  EXPECT_EQ(env_of(p, "HOME"), "/home/alice");
  o = LaunchOptions{};
  o.fakeroot = true;
  p = make_plan(o, sif(), fake_host());
  EXPECT_EQ(p.ids.uid, 0u);
  EXPECT_EQ(find(p, "/root")->source, "/home/alice");
  EXPECT_EQ(find(p, "/etc/passwd"), nullptr);  // the image's root entry serves uid 0
}

TEST(Plan, NoMountAndPwd) {
  LaunchOptions o;
  o.no_mount = {"proc,sys", "/etc/hosts", "home"};
  o.pwd = "/srv";
  Plan p = make_plan(o, sif(), fake_host());
  EXPECT_EQ(find(p, "/proc"), nullptr);
  EXPECT_EQ(find(p, "/sys"), nullptr);
  EXPECT_EQ(find(p, "/etc/hosts"), nullptr);
  EXPECT_EQ(find(p, "/home/alice"), nullptr);
  EXPECT_NE(find(p, "/dev"), nullptr);
  EXPECT_EQ(p.cwd, "/srv");
  EXPECT_TRUE(p.cwd_required);
}

TEST(Plan, WritableRules) {
  LaunchOptions o;
  o.writable = true;
  EXPECT_THROW(make_plan(o, sif(), fake_host()), Error);
  ImageInfo sandbox{ImageKind::kSandbox, "/images/dir", "/images/dir"};
  Plan p = make_plan(o, sandbox, fake_host());
  EXPECT_TRUE(p.root.writable_sandbox);
  o = LaunchOptions{};
  o.writable_tmpfs = true;
  o.tmpfs_size_mib = 10;
  p = make_plan(o, sif(), fake_host());
  EXPECT_TRUE(p.root.writable_tmpfs);
  EXPECT_EQ(p.root.tmpfs_size_mib, 10u);
  o = LaunchOptions{};
  o.overlays = {"/work/ov:ro"};
  p = make_plan(o, sif(), fake_host());
  ASSERT_EQ(p.root.overlays.size(), 1u);
  EXPECT_TRUE(p.root.overlays[0].second);
  o.overlays = {"/missing"};
  EXPECT_THROW(make_plan(o, sif(), fake_host()), Error);
}

TEST(Plan, NamespacesAndEnvFile) {
  LaunchOptions o;
  o.hostname = "box";
  o.net = true;
  o.env_files = {"vars.env"};
  o.envs = {"X=1"};
  Plan p = make_plan(o, sif(), fake_host());
  EXPECT_TRUE(p.ns.uts);
  EXPECT_TRUE(p.ns.net);
  ASSERT_NE(find(p, "/etc/hostname"), nullptr);
  EXPECT_EQ(find(p, "/etc/hostname")->source, "box\n");
  ASSERT_EQ(p.env.inject.size(), 2u);
  EXPECT_EQ(p.env.inject[0].name, "A");
  EXPECT_EQ(p.env.inject[1].name, "X");
}

TEST(Plan, PathHelpers) {
  EXPECT_EQ(normalize_path("/a/./b/../c/"), "/a/c");
  EXPECT_EQ(normalize_path("/../.."), "/");
  EXPECT_TRUE(path_within("/a/b", "/a"));
  EXPECT_TRUE(path_within("/a", "/a"));
  EXPECT_FALSE(path_within("/ab", "/a"));
  EXPECT_TRUE(path_within("/x", "/"));
}
