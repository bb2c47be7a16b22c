// Tests for %files copying: cp -fLr semantics from the host, stage copies keeping inner links,
// and destinations that try to leave the root through symlinks.
#include "build/files_copy.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace rbox::build {
namespace {

class FilesCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_ = dir_.path() + "/host";
    root_ = dir_.path() + "/root";
    fs::mkdir_p(host_ + "/tree/sub");
    fs::mkdir_p(root_ + "/opt");
    fs::write_file(host_ + "/a.txt", "A", 0640);
    fs::write_file(host_ + "/b.txt", "B");
    fs::write_file(host_ + "/tree/sub/c", "C", 0755);
    ASSERT_EQ(::symlink("a.txt", (host_ + "/link").c_str()), 0);
    ASSERT_EQ(::symlink("../a.txt", (host_ + "/tree/inner").c_str()), 0);
  }
  fs::TempDir dir_;
  std::string host_, root_;
};

TEST_F(FilesCopyTest, HostCopyFollowsCpRules) {
  RootFs r(root_);
  EXPECT_EQ(copy_from_host(host_ + "/a.txt", "/opt", r), 1u);  // into an existing dir
  EXPECT_EQ(fs::read_file(root_ + "/opt/a.txt"), "A");
  EXPECT_EQ(copy_from_host(host_ + "/b.txt", "/etc/new/name", r), 1u);  // parents made, renamed
  EXPECT_EQ(fs::read_file(root_ + "/etc/new/name"), "B");
  EXPECT_EQ(copy_from_host(host_ + "/*.txt", "/globbed/", r), 2u);  // glob, trailing slash = dir
  EXPECT_TRUE(fs::exists(root_ + "/globbed/a.txt") && fs::exists(root_ + "/globbed/b.txt"));
  copy_from_host(host_ + "/link", "/deref", r);  // -L: the link's target is copied
  struct stat st {};
  ASSERT_EQ(::lstat((root_ + "/deref").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  copy_from_host(host_ + "/tree", "/t", r);  // directories recursively, inner links followed
  EXPECT_EQ(fs::read_file(root_ + "/t/sub/c"), "C");
  ASSERT_EQ(::lstat((root_ + "/t/inner").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_EQ(::stat((root_ + "/t/sub/c").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  copy_from_host(host_ + "/b.txt", "", r);  // no destination: the same path inside the root
  EXPECT_EQ(fs::read_file(root_ + host_ + "/b.txt"), "B");
  EXPECT_THROW(copy_from_host(host_ + "/missing*", "/x", r), Error);
}

TEST_F(FilesCopyTest, DestinationsCannotLeaveTheRoot) {
  std::string outside = dir_.path() + "/outside";
  fs::mkdir_p(outside);
  fs::write_file(outside + "/victim", "keep");
  ASSERT_EQ(::symlink(outside.c_str(), (root_ + "/escape").c_str()), 0);
  ASSERT_EQ(::symlink((outside + "/victim").c_str(), (root_ + "/opt/victim").c_str()), 0);
  RootFs r(root_);
  copy_from_host(host_ + "/a.txt", "/escape/x", r);  // resolved as root_/<outside>/x
  EXPECT_FALSE(fs::exists(outside + "/x"));
  EXPECT_TRUE(fs::exists(root_ + outside + "/x"));
  copy_from_host(host_ + "/a.txt", "/opt/victim", r);  // replaces the link, never writes through it
  EXPECT_EQ(fs::read_file(outside + "/victim"), "keep");
  EXPECT_EQ(fs::read_file(root_ + "/opt/victim"), "A");
}

TEST_F(FilesCopyTest, StageCopyKeepsInnerLinks) {
  std::string stage1 = dir_.path() + "/stage1";
  fs::mkdir_p(stage1 + "/app/lib");
  fs::write_file(stage1 + "/app/bin", "#!/bin/sh\n", 04755);
  ASSERT_EQ(::symlink("/app/bin", (stage1 + "/app/lib/abs-link").c_str()), 0);
  ASSERT_EQ(::symlink("app", (stage1 + "/toplink").c_str()), 0);
  RootFs from(stage1), to(root_);
  EXPECT_EQ(copy_from_stage("/app", "", from, to), 1u);
  char buf[64];
  ssize_t n = ::readlink((root_ + "/app/lib/abs-link").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "/app/bin");  // kept as a link, not followed
  copy_from_stage("/toplink", "/copied", from, to);        // the named source is dereferenced
  EXPECT_TRUE(fs::is_dir(root_ + "/copied/lib"));
  copy_from_stage("/app/b*", "/opt/", from, to);
  EXPECT_TRUE(fs::exists(root_ + "/opt/bin"));
  EXPECT_THROW(copy_from_stage("/nope", "", from, to), Error);
}

TEST_F(FilesCopyTest, CopyTreeKeepsEverything) {
  std::string dst = dir_.path() + "/copy";
  fs::mkdir_p(dst);
  RootFs r(dst);
  copy_tree(host_, r);
  char buf[64];
  ssize_t n = ::readlink((dst + "/link").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), "a.txt");
  struct stat st {};
  ASSERT_EQ(::stat((dst + "/a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(fs::read_file(dst + "/tree/sub/c"), "C");
}

TEST(ExpandGlob, NoMatchStaysLiteral) {
  auto v = expand_glob("/definitely/not/here/*.x");
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0], "/definitely/not/here/*.x");
}

}  // namespace
}  // namespace rbox::build
