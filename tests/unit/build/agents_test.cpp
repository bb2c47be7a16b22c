// Tests for the bootstrap agents' up-front checks, the host apt mirror lookup, the OCI source
// strings, the build workspace (state, clean-up, stale sweeping) and the %post/%test environments.
#include "build/agents.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "build/builder.hpp"
#include "build/stage.hpp"
#include "build/workspace.hpp"
#include "deffile/parser.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace rbox::build {
namespace {

deffile::Definition stage(const std::string& text) {
  return deffile::parse(text, "t.def").last();
}

std::string error_of(const std::string& text) {
  try {
    check_bootstrap(stage(text));
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

TEST(Agents, KnownAgentsAndTheirKeys) {
  EXPECT_EQ(check_bootstrap(stage("Bootstrap: scratch\n")), Agent::kScratch);
  EXPECT_EQ(check_bootstrap(stage("Bootstrap: docker\nFrom: debian:12\n")), Agent::kDocker);
  EXPECT_EQ(check_bootstrap(stage("bootstrap: OCI-ARCHIVE\nfrom: x.tar\n")), Agent::kOciArchive);
  EXPECT_EQ(check_bootstrap(stage("Bootstrap: debootstrap\nOSVersion: bookworm\n")), Agent::kDebootstrap);
  EXPECT_NE(error_of("Bootstrap: docker\n").find("needs a From:"), std::string::npos);
  EXPECT_NE(error_of("Bootstrap: nonsense\nFrom: x\n").find("unknown Bootstrap"), std::string::npos);
  EXPECT_EQ(error_of("Bootstrap: docker\nFrom: x\n").find("t.def:"), std::string::npos);  // no error
}

TEST(Agents, UnsupportedAgentsNameTheAlternative) {
  for (const char* a : {"yum", "dnf", "zypper"}) {
    std::string e = error_of(std::string("Bootstrap: ") + a + "\nOSVersion: 9\n");
    EXPECT_NE(e.find("not supported"), std::string::npos) << a;
    EXPECT_NE(e.find("Bootstrap: docker"), std::string::npos) << a;
    EXPECT_EQ(e.rfind("t.def:1: ", 0), 0u) << e;
  }
}

TEST(Agents, LocalimageWithARegistryReference) {
  std::string e = error_of("Bootstrap: localimage\nFrom: fedora:39\n");
  EXPECT_NE(e.find("use 'Bootstrap: docker' with 'From: fedora:39'"), std::string::npos) << e;
  e = error_of("Bootstrap: localimage\nFrom: ./missing.sif\n");
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
  EXPECT_EQ(e.find("Bootstrap: docker"), std::string::npos) << e;
  for (const char* ref : {"ubuntu:24.04", "ghcr.io/org/app:1.2", "127.0.0.1:5000/x/y",
                          "alpine@sha256:"
                          "0000000000000000000000000000000000000000000000000000000000000000"}) {
    e = error_of(std::string("Bootstrap: localimage\nFrom: ") + ref + "\n");
    EXPECT_NE(e.find("Bootstrap: docker"), std::string::npos) << ref;
  }
  for (const char* file : {"base.sif", "./dir/base", "my image.sif", "plain"}) {
    e = error_of(std::string("Bootstrap: localimage\nFrom: ") + file + "\n");
    EXPECT_EQ(e.find("Bootstrap: docker"), std::string::npos) << file;
  }
  fs::TempDir d;
  EXPECT_EQ(check_bootstrap(stage("Bootstrap: localimage\nFrom: " + d.path() + "\n")), Agent::kLocalimage);
}

TEST(Agents, OciSources) {
  EXPECT_EQ(oci_source(stage("Bootstrap: docker\nFrom: debian:12\n"), Agent::kDocker), "docker://debian:12");
  EXPECT_EQ(oci_source(stage("Bootstrap: docker\nFrom: app:1\nNamespace: team\nRegistry: reg.example:5000\n"),
                       Agent::kDocker),
            "docker://reg.example:5000/team/app:1");
  EXPECT_EQ(oci_source(stage("Bootstrap: oci\nFrom: /l:tag\n"), Agent::kOci), "oci:/l:tag");
  EXPECT_EQ(*definition_for_uri("docker://busybox:1"), "bootstrap: docker\nfrom: busybox:1\n");
  EXPECT_EQ(*definition_for_uri("oci-archive:/x.tar"), "bootstrap: oci-archive\nfrom: /x.tar\n");
  EXPECT_FALSE(definition_for_uri("env.def"));
}

TEST(Agents, HostAptMirrorFromBothFormats) {
  fs::TempDir d;
  fs::mkdir_p(d.path() + "/etc/apt/sources.list.d");
  EXPECT_EQ(host_apt_mirror(d.path()), "");
  fs::write_file(d.path() + "/etc/apt/sources.list.d/debian.sources",
                 "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
                 "# comment\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n\n"
                 "Types: deb\nURIs: http://security.example/debian-security\n");
  EXPECT_EQ(host_apt_mirror(d.path()), "http://mirror.example/debian");
  fs::write_file(d.path() + "/etc/apt/sources.list",
                 "# deb http://commented.example/ bookworm main\n"
                 "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main\n");
  EXPECT_EQ(host_apt_mirror(d.path()), "http://one.example/debian");
}

TEST(Agents, DynamicElfDetection) {
  EXPECT_TRUE(is_dynamic_elf("/bin/sh"));
  if (::access("/bin/busybox", X_OK) == 0) {
    EXPECT_FALSE(is_dynamic_elf("/bin/busybox"));  // busybox-static
  }
  EXPECT_FALSE(is_dynamic_elf("/etc/passwd"));
}

TEST(Workspace, StateCleanupAndStaleSweep) {
  fs::TempDir parent;
  std::string kept;
  {
    auto ws = Workspace::create(parent.path(), "--tmpdir");
    EXPECT_TRUE(fs::exists(ws.path() + "/lock"));
    std::string target = parent.path() + "/out.sif";
    fs::write_file(target + ".tmp-abc123", "partial");
    fs::write_file(target, "old image");
    ws.record("target", target);
    fs::mkdir_p(ws.path() + "/stage1");
    fs::write_file(ws.path() + "/stage1/evidence", "x");
    ws.record("rootfs", ws.path() + "/stage1");
    // A second, live workspace is never swept.
    EXPECT_EQ(Workspace::sweep_stale(parent.path()), 0u);
    kept = ws.discard_failed(true);
    EXPECT_FALSE(fs::exists(ws.path()));
    EXPECT_FALSE(fs::exists(target + ".tmp-abc123"));
    EXPECT_EQ(fs::read_file(target), "old image");
  }
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(fs::read_file(kept + "/evidence"), "x");

  // A workspace whose owner died (its lock is free) is swept, partial output included.
  std::string dead;
  {
    auto ws = Workspace::create(parent.path(), "--tmpdir");
    dead = ws.path();
    ws.record("target", parent.path() + "/other.sif");
    fs::write_file(parent.path() + "/other.sif.tmp-zzz", "partial");
    // Leave it behind: drop the object without clean-up (the lock fd closes).
  }
  EXPECT_TRUE(fs::exists(dead));
  EXPECT_EQ(Workspace::sweep_stale(parent.path()), 1u);
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_FALSE(fs::exists(parent.path() + "/other.sif.tmp-zzz"));
  // Directories with the prefix that are not workspaces are left alone.
  fs::mkdir_p(parent.path() + "/rbox-build-foreign");
  EXPECT_EQ(Workspace::sweep_stale(parent.path()), 0u);
  EXPECT_TRUE(fs::exists(parent.path() + "/rbox-build-foreign"));
}

TEST(Workspace, ChooseParent) {
  ::setenv("RBOX_TMPDIR", "/var/tmp/x", 1);
  EXPECT_EQ(Workspace::choose_parent("").second, "RBOX_TMPDIR");
  EXPECT_EQ(Workspace::choose_parent("/opt/t").first, "/opt/t");
  ::unsetenv("RBOX_TMPDIR");
  ::setenv("TMPDIR", "/var/tmp/y", 1);
  EXPECT_EQ(Workspace::choose_parent(""), std::make_pair(std::string("/var/tmp/y"), std::string("TMPDIR")));
  ::unsetenv("TMPDIR");
  EXPECT_EQ(Workspace::choose_parent("").first, "/tmp");
}

TEST(StageEnvironment, PostIsCleanTestKeepsHost) {
  std::vector<std::string> host = {
      "PATH=/host/bin", "HOME=/home/u",    "TERM=xterm",      "https_proxy=http://p:3128",
      "SECRET=x",       "APPTAINER_FOO=1", "LANG=de_DE.UTF-8"};
  auto post = post_environment("/tmp/ws/stage1", host);
  auto has = [](const std::vector<std::string>& v, const std::string& kv) {
    return std::find(v.begin(), v.end(), kv) != v.end();
  };
  EXPECT_TRUE(has(post, "HOME=/root"));
  EXPECT_TRUE(has(post, "TERM=xterm"));
  EXPECT_TRUE(has(post, "https_proxy=http://p:3128"));
  EXPECT_TRUE(has(post, "APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh"));
  EXPECT_TRUE(has(post, "SINGULARITY_LABELS=/.build.labels"));
  EXPECT_TRUE(has(post, "LANG=C"));
  EXPECT_FALSE(has(post, "SECRET=x"));
  EXPECT_FALSE(has(post, "PATH=/host/bin"));
  auto test = test_environment("/tmp/ws/stage1", host);
  EXPECT_TRUE(has(test, "SECRET=x"));
  EXPECT_FALSE(has(test, "APPTAINER_FOO=1"));
  EXPECT_FALSE(has(test, "PATH=/host/bin"));
}

}  // namespace
}  // namespace rbox::build
