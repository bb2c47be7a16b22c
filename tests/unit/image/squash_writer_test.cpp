// Unit tests for image/squash_writer, squash_extract_reader and squash_extract: a tree with every
// file type is packed, read back in place, extracted and compared; packing is reproducible.
#include "image/squash_writer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/squash_extract.hpp"
#include "image/squash_extract_reader.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::image;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void set_mtime(const std::string& path, time_t t) {
  struct timespec ts[2] = {{t, 0}, {t, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Builds the test tree; returns whether user xattrs are supported here.
bool make_tree(const std::string& root) {
  fs::mkdir_p(root + "/etc/sub/deep");
  fs::mkdir_p(root + "/empty");
  fs::write_file(root + "/etc/hello", "hello world\n");
  fs::write_file(root + "/etc/empty", "");
  std::string big;
  for (int64_t i = 0; i < 300000; ++i) big += std::to_string(i * 7919 % 1000003) + ",";
  fs::write_file(root + "/etc/sub/big", big);
  fs::write_file(root + "/etc/sub/deep/zeros", std::string(200000, '\0'));
  fs::write_file(root + "/run.sh", "#!/bin/sh\necho hi\n", 0755);
  ::chmod((root + "/run.sh").c_str(), 04755);  // setuid bit survives packing
  ::chmod((root + "/empty").c_str(), 0555);
  ::symlink("etc/hello", (root + "/link").c_str());
  ::symlink("/nonexistent/abs", (root + "/dangling").c_str());
  ::link((root + "/etc/hello").c_str(), (root + "/etc/sub/hardlink").c_str());
  ::link((root + "/run.sh").c_str(), (root + "/etc/run-link").c_str());  // a hard link without xattrs
  ::mkfifo((root + "/fifo").c_str(), 0640);
  bool xattrs = ::setxattr((root + "/etc/hello").c_str(), "user.rbox", "v1", 2, 0) == 0;
  ::setxattr((root + "/etc").c_str(), "user.dir", "d", 1, 0);
  set_mtime(root + "/etc/hello", 1000000000);
  set_mtime(root + "/run.sh", 2000000000);
  set_mtime(root + "/link", 1500000000);
  return xattrs;
}

SquashStats pack(const std::string& dir, const std::string& out, SquashOptions o = {}) {
  o.workers = 2;
  return pack_squashfs_file(dir, out, o);
}

}  // namespace

TEST(SquashWriter, PacksEveryFileType) {
  fs::TempDir tmp;
  const std::string tree = tmp.path() + "/tree";
  const bool xattrs = make_tree(tree);
  auto stats = pack(tree, tmp.path() + "/img.sqfs");
  EXPECT_EQ(stats.image_bytes % 4096, 0u);
  EXPECT_EQ(stats.image_bytes, static_cast<uint64_t>(std::filesystem::file_size(tmp.path() + "/img.sqfs")));

  SquashImage img(tmp.path() + "/img.sqfs");
  EXPECT_EQ(img.compressor(), "zstd");
  EXPECT_EQ(img.block_size(), 65536u);
  EXPECT_EQ(img.read_file("/etc/hello"), "hello world\n");
  EXPECT_EQ(img.read_file("/link"), "hello world\n");  // followed inside the image
  EXPECT_EQ(img.read_file("/etc/sub/big"), slurp(tree + "/etc/sub/big"));
  EXPECT_EQ(img.read_file("/etc/sub/deep/zeros"), std::string(200000, '\0'));
  EXPECT_EQ(img.read_file("/etc/empty"), "");
  EXPECT_EQ(img.read_file("/nope"), std::nullopt);
  EXPECT_EQ(img.read_file("/etc"), std::nullopt);
  EXPECT_EQ(img.read_file("/etc/sub/../hello"), "hello world\n");

  auto root = img.list_dir("/");
  ASSERT_TRUE(root);
  std::vector<std::string> names;
  for (const auto& e : *root) names.push_back(e.name);
  EXPECT_EQ(names, (std::vector<std::string>{"dangling", "empty", "etc", "fifo", "link", "run.sh"}));

  auto hello = img.stat("/etc/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->nlink, 2u);
  EXPECT_EQ(hello->uid, 0u);  // all-root by default
  EXPECT_EQ(hello->mtime, 1000000000u);
  EXPECT_EQ(img.stat("/etc/sub/hardlink")->inode_number, hello->inode_number);
  EXPECT_EQ(img.stat("/run.sh")->nlink, 2u);
  EXPECT_EQ(img.stat("/etc/run-link")->inode_number, img.stat("/run.sh")->inode_number);
  EXPECT_EQ(img.stat("/link")->target, "etc/hello");
  EXPECT_EQ(img.stat("/dangling")->target, "/nonexistent/abs");
  EXPECT_EQ(img.stat("/run.sh")->mode, static_cast<uint32_t>(S_IFREG | 04755));
  EXPECT_EQ(img.stat("/empty")->mode, static_cast<uint32_t>(S_IFDIR | 0555));
  EXPECT_TRUE(S_ISFIFO(img.stat("/fifo")->mode));
  EXPECT_EQ(img.stat("/etc")->nlink, 3u);  // ".", "..", sub
  if (xattrs) {
    auto x = img.stat("/etc/hello")->xattrs;
    ASSERT_EQ(x.size(), 1u);
    EXPECT_EQ(x[0].first, "user.rbox");
    EXPECT_EQ(x[0].second, "v1");
    EXPECT_EQ(img.stat("/etc")->xattrs.size(), 1u);
  }
}

TEST(SquashWriter, ReproducibleWithSourceDateEpoch) {
  fs::TempDir tmp;
  const std::string tree = tmp.path() + "/tree";
  make_tree(tree);
  SquashOptions o;
  o.source_date_epoch = 1700000000;
  pack(tree, tmp.path() + "/a.sqfs", o);
  ::utimensat(AT_FDCWD, (tree + "/etc").c_str(), nullptr, 0);  // now > SOURCE_DATE_EPOCH: clamped
  o.workers = 1;
  pack(tree, tmp.path() + "/b.sqfs", o);
  EXPECT_TRUE(slurp(tmp.path() + "/a.sqfs") == slurp(tmp.path() + "/b.sqfs"));
  SquashImage img(tmp.path() + "/a.sqfs");
  EXPECT_EQ(img.stat("/etc")->mtime, 1700000000u);        // clamped
  EXPECT_EQ(img.stat("/run.sh")->mtime, 1700000000u);     // 2000000000 clamped
  EXPECT_EQ(img.stat("/etc/hello")->mtime, 1000000000u);  // older: kept
}

TEST(SquashWriter, CompressorsAndOptions) {
  fs::TempDir tmp;
  const std::string tree = tmp.path() + "/tree";
  make_tree(tree);
  for (const char* c : {"gzip", "xz", "lz4", "lz4hc", "zstd"}) {
    SCOPED_TRACE(c);
    SquashOptions o;
    o.compressor = c;
    o.block_size = 131072;
    pack(tree, tmp.path() + "/" + c + ".sqfs", o);
    SquashImage img(tmp.path() + "/" + c + ".sqfs");
    EXPECT_EQ(img.compressor(), std::string(c) == "lz4hc" ? "lz4" : c);
    EXPECT_EQ(img.block_size(), 131072u);
    EXPECT_EQ(img.read_file("/etc/sub/big"), slurp(tree + "/etc/sub/big"));
  }
  SquashOptions bad;
  bad.compressor = "lzo";
  EXPECT_THROW(check_squash_options(bad), Error);
  bad = {};
  bad.level = 23;
  EXPECT_THROW(check_squash_options(bad), Error);
  bad = {};
  bad.block_size = 100000;
  EXPECT_THROW(check_squash_options(bad), Error);
  bad = {};
  bad.compressor = "lz4";
  bad.level = 5;
  EXPECT_THROW(check_squash_options(bad), Error);
}

TEST(SquashExtract, RoundTrip) {
  fs::TempDir tmp;
  const std::string tree = tmp.path() + "/tree";
  const bool xattrs = make_tree(tree);
  pack(tree, tmp.path() + "/img.sqfs");
  const std::string out = tmp.path() + "/out";
  auto st = extract_squashfs(tmp.path() + "/img.sqfs", 0, 0, out);
  EXPECT_EQ(st.hardlinks, 2u);
  EXPECT_EQ(slurp(out + "/etc/sub/big"), slurp(tree + "/etc/sub/big"));
  EXPECT_EQ(slurp(out + "/etc/sub/deep/zeros"), std::string(200000, '\0'));
  struct stat a, b;
  ASSERT_EQ(::lstat((out + "/etc/hello").c_str(), &a), 0);
  ASSERT_EQ(::lstat((out + "/etc/sub/hardlink").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(a.st_mtime, 1000000000);
  ASSERT_EQ(::lstat((out + "/link").c_str(), &a), 0);
  EXPECT_TRUE(S_ISLNK(a.st_mode));
  EXPECT_EQ(a.st_mtime, 1500000000);
  char target[64] = {};
  ASSERT_GT(::readlink((out + "/dangling").c_str(), target, sizeof target), 0);
  EXPECT_STREQ(target, "/nonexistent/abs");
  ASSERT_EQ(::lstat((out + "/empty").c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, 0555u);
  ASSERT_EQ(::lstat((out + "/fifo").c_str(), &a), 0);
  EXPECT_TRUE(S_ISFIFO(a.st_mode));
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  ASSERT_EQ(::lstat((out + "/run.sh").c_str(), &a), 0);
  EXPECT_EQ(a.st_mode & 07777, ::geteuid() == 0 ? 0755u : 04755u);  // setuid dropped as root
  EXPECT_EQ(a.st_uid, ::geteuid());
  if (xattrs) {
    char v[8] = {};
    EXPECT_EQ(::getxattr((out + "/etc/hello").c_str(), "user.rbox", v, sizeof v), 2);
    EXPECT_STREQ(v, "v1");
  }
  // The destination must be new or empty.
  EXPECT_THROW(extract_squashfs(tmp.path() + "/img.sqfs", 0, 0, out), Error);
  fs::remove_tree(out);
}

TEST(SquashExtract, RejectsNonSquashfs) {
  fs::TempDir tmp;
  fs::write_file(tmp.path() + "/junk", std::string(8192, 'x'));
  try {
    SquashImage img(tmp.path() + "/junk");
    FAIL() << "opened junk";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("junk: not a readable SquashFS image"), std::string::npos) << e.message();
  }
}

TEST(SquashWriter, DevicesOwnersAndCapabilitiesAsRoot) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for mknod, chown and security.capability";
  fs::TempDir tmp;
  const std::string tree = tmp.path() + "/tree";
  fs::mkdir_p(tree + "/dev");
  ASSERT_EQ(::mknod((tree + "/dev/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((tree + "/dev/big").c_str(), S_IFBLK | 0600, makedev(259, 300000)), 0);
  fs::write_file(tree + "/ping", "binary");
  ASSERT_EQ(::chown((tree + "/ping").c_str(), 1234, 5678), 0);
  // VFS_CAP_REVISION_2 with CAP_NET_RAW permitted and effective.
  const unsigned char cap[20] = {0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00,
                                 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  const bool caps = ::setxattr((tree + "/ping").c_str(), "security.capability", cap, sizeof cap, 0) == 0;
  SquashOptions o;
  o.owners = SquashOptions::Owners::kPreserve;
  pack(tree, tmp.path() + "/img.sqfs", o);
  SquashImage img(tmp.path() + "/img.sqfs");
  EXPECT_TRUE(S_ISCHR(img.stat("/dev/null")->mode));
  EXPECT_EQ(img.stat("/ping")->uid, 1234u);
  EXPECT_EQ(img.stat("/ping")->gid, 5678u);
  if (caps) {
    auto x = img.stat("/ping")->xattrs;
    ASSERT_EQ(x.size(), 1u);
    EXPECT_EQ(x[0].first, "security.capability");
    EXPECT_EQ(x[0].second, std::string(reinterpret_cast<const char*>(cap), sizeof cap));
  }
  ExtractOptions eo;
  eo.preserve_owners = true;
  extract_squashfs(tmp.path() + "/img.sqfs", 0, 0, tmp.path() + "/out", eo);
  struct stat st;
  ASSERT_EQ(::lstat((tmp.path() + "/out/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(::lstat((tmp.path() + "/out/dev/big").c_str(), &st), 0);
  EXPECT_TRUE(S_ISBLK(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(259, 300000));
  ASSERT_EQ(::lstat((tmp.path() + "/out/ping").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  if (caps) {
    unsigned char back[32] = {};
    EXPECT_EQ(::getxattr((tmp.path() + "/out/ping").c_str(), "security.capability", back, sizeof back),
              static_cast<ssize_t>(sizeof cap));
  }
  // All-root packing of the same tree.
  pack(tree, tmp.path() + "/root.sqfs");
  EXPECT_EQ(SquashImage(tmp.path() + "/root.sqfs").stat("/ping")->uid, 0u);
}
