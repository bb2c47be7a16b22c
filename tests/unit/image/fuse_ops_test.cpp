// Unit tests for the FUSE protocol handlers and the SquashFS reader, without /dev/fuse: requests
// are built in memory and replies decoded. Images are packed from a scratch tree with mksquashfs
// (squashfs-tools, installed by scripts/setup-deps.sh); the tests are skipped without it.
#include "image/fuse_ops.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "image/fuse_sqfs.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/subprocess.hpp"

namespace fz = rbox::image::fuse;
namespace fs = rbox::fs;

namespace {

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen() % 7 == 0 ? gen() : 'a' + gen() % 3);  // compressible-ish
  return s;
}

struct Reply {
  int error = 0;
  std::vector<uint8_t> data;
};

class FuseOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (rbox::proc::which("mksquashfs").empty()) GTEST_SKIP() << "mksquashfs not installed";
    tmp_ = std::make_unique<fs::TempDir>("rbox-fuseops-");
    tree_ = tmp_->path() + "/tree";
    fs::mkdir_p(tree_ + "/dir/sub");
    files_["small"] = "hello\n";
    files_["empty"] = "";
    files_["exact"] = random_bytes(4096, 1);
    files_["multi"] = random_bytes(4096 * 5 + 123, 2);  // 5 blocks + a fragment tail
    files_["dir/sub/deep"] = random_bytes(9000, 3);
    for (auto& [name, data] : files_) fs::write_file(tree_ + "/" + name, data);
    for (int i = 0; i < 300; ++i) fs::write_file(tree_ + "/dir/entry-" + std::to_string(i), "x");
    ASSERT_EQ(symlink("dir/sub/deep", (tree_ + "/link").c_str()), 0);
    ASSERT_EQ(link((tree_ + "/small").c_str(), (tree_ + "/hardlink").c_str()), 0);
    // Sparse: 3 empty blocks, then data.
    int fd = open((tree_ + "/sparse").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "end", 3, 4096 * 3), 3);
    close(fd);
    xattrs_ok_ = setxattr((tree_ + "/small").c_str(), "user.note", "value!", 6, 0) == 0;
    image_ = tmp_->path() + "/img.sqfs";
    rbox::proc::Options quiet;
    quiet.capture_stdout = true;
    auto r = rbox::proc::run({"mksquashfs", tree_, image_, "-noappend", "-quiet", "-no-progress", "-b",
                              "4096", "-comp", GetParam()},
                             quiet);
    ASSERT_EQ(r.status, 0) << r.output;
    reader_ = std::make_unique<fz::SquashfsReader>(rbox::UniqueFd(open(image_.c_str(), O_RDONLY | O_CLOEXEC)),
                                                   0, 0, image_);
    ctx_ = reader_->make_context();
    ops_ = std::make_unique<fz::FuseOps>(*reader_, fz::OpsOptions{});
    out_.resize(ops_->reply_capacity());
  }

  Reply call(uint32_t opcode, uint64_t node, const void* arg = nullptr, size_t n = 0) {
    std::vector<uint8_t> req(sizeof(fuse_in_header) + n);
    fuse_in_header h{};
    h.len = static_cast<uint32_t>(req.size());
    h.opcode = opcode;
    h.unique = ++unique_;
    h.nodeid = node;
    std::memcpy(req.data(), &h, sizeof(h));
    if (n) std::memcpy(req.data() + sizeof(h), arg, n);
    size_t len = ops_->handle(*ctx_, req.data(), req.size(), out_.data(), out_.size());
    Reply r;
    if (len == 0) return r;
    fuse_out_header oh{};
    std::memcpy(&oh, out_.data(), sizeof(oh));
    EXPECT_EQ(oh.unique, unique_);
    EXPECT_EQ(oh.len, len);
    r.error = oh.error;
    r.data.assign(out_.begin() + sizeof(oh), out_.begin() + static_cast<long>(len));
    return r;
  }
  void init() {
    fuse_init_in in{};
    in.major = 7, in.minor = 38, in.max_readahead = 131072;
    in.flags = 0xFFFFFFFF;
    Reply r = call(FUSE_INIT, 0, &in, sizeof(in));
    ASSERT_EQ(r.error, 0);
  }
  fuse_entry_out lookup(uint64_t parent, const std::string& name) {
    Reply r = call(FUSE_LOOKUP, parent, name.c_str(), name.size() + 1);
    EXPECT_EQ(r.error, 0);
    fuse_entry_out e{};
    EXPECT_EQ(r.data.size(), sizeof(e));
    if (r.data.size() == sizeof(e)) std::memcpy(&e, r.data.data(), sizeof(e));
    return e;
  }
  uint64_t walk(const std::string& path) {
    uint64_t node = FUSE_ROOT_ID;
    size_t start = 0;
    while (start < path.size()) {
      size_t slash = path.find('/', start);
      std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
      node = lookup(node, part).nodeid;
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    return node;
  }
  std::string read(uint64_t node, uint64_t off, uint32_t size) {
    fuse_read_in in{};
    in.offset = off, in.size = size;
    Reply r = call(FUSE_READ, node, &in, sizeof(in));
    EXPECT_EQ(r.error, 0);
    return std::string(r.data.begin(), r.data.end());
  }
  // READDIR(PLUS) in chunks of `size` bytes, following the offset cookies: name → nodeid.
  std::vector<std::pair<std::string, uint64_t>> list(uint64_t node, bool plus, uint32_t size) {
    std::vector<std::pair<std::string, uint64_t>> names;
    uint64_t off = 0;
    for (int guard = 0; guard < 10000; ++guard) {
      fuse_read_in in{};
      in.offset = off, in.size = size;
      Reply r = call(plus ? FUSE_READDIRPLUS : FUSE_READDIR, node, &in, sizeof(in));
      EXPECT_EQ(r.error, 0);
      if (r.data.empty()) break;
      size_t pos = 0;
      while (pos < r.data.size()) {
        uint64_t nodeid = 0;
        size_t head = 0;
        if (plus) {
          fuse_entry_out e{};
          std::memcpy(&e, r.data.data() + pos, sizeof(e));
          nodeid = e.nodeid, head = offsetof(fuse_direntplus, dirent);
        }
        fuse_dirent d{};
        std::memcpy(&d, r.data.data() + pos + head, sizeof(d));
        names.emplace_back(
            std::string(reinterpret_cast<const char*>(r.data.data() + pos + head + sizeof(d)), d.namelen),
            nodeid);
        off = d.off;
        pos += (head + sizeof(d) + d.namelen + 7) & ~size_t{7};
      }
    }
    return names;
  }

  std::unique_ptr<fs::TempDir> tmp_;
  std::string tree_, image_;
  std::map<std::string, std::string> files_;
  bool xattrs_ok_ = false;
  std::unique_ptr<fz::SquashfsReader> reader_;
  fz::SquashfsReader::ContextPtr ctx_;
  std::unique_ptr<fz::FuseOps> ops_;
  std::vector<uint8_t> out_;
  uint64_t unique_ = 0;
};

TEST_P(FuseOpsTest, InitNegotiatesTheMeasuredFlags) {
  fuse_getattr_in ga{};
  EXPECT_EQ(call(FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga)).error, -EIO);  // nothing before INIT
  fuse_init_in in{};
  in.major = 7, in.minor = 38, in.max_readahead = 131072, in.flags = 0xFFFFFFFF;
  Reply r = call(FUSE_INIT, 0, &in, sizeof(in));
  ASSERT_EQ(r.error, 0);
  fuse_init_out o{};
  ASSERT_EQ(r.data.size(), sizeof(o));
  std::memcpy(&o, r.data.data(), sizeof(o));
  EXPECT_EQ(o.major, 7u);
  uint32_t want = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_CACHE_SYMLINKS |
                  FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;
  EXPECT_EQ(o.flags, want);
  EXPECT_EQ(o.flags & FUSE_AUTO_INVAL_DATA, 0u);
  EXPECT_EQ(o.max_pages, 256);
  EXPECT_EQ(o.max_readahead, 131072u);
  EXPECT_TRUE(ops_->initialized());
}

TEST_P(FuseOpsTest, LookupGetattrAndNegativeEntries) {
  init();
  fuse_entry_out dir = lookup(FUSE_ROOT_ID, "dir");
  EXPECT_GE(dir.nodeid, 2u);
  EXPECT_TRUE(S_ISDIR(dir.attr.mode));
  EXPECT_GE(dir.entry_valid, 1000000u);
  EXPECT_GE(dir.attr_valid, 1000000u);
  fuse_getattr_in ga{};
  Reply r = call(FUSE_GETATTR, dir.nodeid, &ga, sizeof(ga));
  ASSERT_EQ(r.error, 0);
  fuse_attr_out ao{};
  std::memcpy(&ao, r.data.data(), sizeof(ao));
  EXPECT_EQ(std::memcmp(&ao.attr, &dir.attr, sizeof(ao.attr)), 0);
  // A missing name: nodeid 0 with a timeout, which the kernel caches as a negative dentry.
  std::string missing = "no-such-file";
  r = call(FUSE_LOOKUP, FUSE_ROOT_ID, missing.c_str(), missing.size() + 1);
  ASSERT_EQ(r.error, 0);
  fuse_entry_out neg{};
  std::memcpy(&neg, r.data.data(), sizeof(neg));
  EXPECT_EQ(neg.nodeid, 0u);
  EXPECT_GE(neg.entry_valid, 1000000u);
  // Owners: every file reported as the fixed owner (0:0 by default).
  EXPECT_EQ(dir.attr.uid, 0u);
  EXPECT_EQ(dir.attr.gid, 0u);
  // Lookups below a file fail with ENOTDIR.
  uint64_t small = lookup(FUSE_ROOT_ID, "small").nodeid;
  EXPECT_EQ(call(FUSE_LOOKUP, small, "x", 2).error, -ENOTDIR);
}

TEST_P(FuseOpsTest, HardLinksShareANodeAndSymlinksResolve) {
  init();
  fuse_entry_out a = lookup(FUSE_ROOT_ID, "small");
  fuse_entry_out b = lookup(FUSE_ROOT_ID, "hardlink");
  EXPECT_EQ(a.nodeid, b.nodeid);
  EXPECT_EQ(a.attr.ino, b.attr.ino);
  EXPECT_EQ(a.attr.nlink, 2u);
  fuse_entry_out l = lookup(FUSE_ROOT_ID, "link");
  EXPECT_TRUE(S_ISLNK(l.attr.mode));
  Reply r = call(FUSE_READLINK, l.nodeid);
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(std::string(r.data.begin(), r.data.end()), "dir/sub/deep");
  EXPECT_EQ(call(FUSE_READLINK, a.nodeid).error, -EINVAL);
}

TEST_P(FuseOpsTest, ReadsEveryByteRangeCorrectly) {
  init();
  for (auto& [name, data] : files_) {
    uint64_t node = walk(name);
    EXPECT_EQ(read(node, 0, 1 << 20), data) << name;
    // Unaligned windows crossing block and fragment boundaries, twice (the second pass hits
    // the block cache), and reads past the end.
    for (int pass = 0; pass < 2; ++pass) {
      for (uint64_t off : {0ul, 1ul, 4095ul, 4096ul, 8191ul, 20000ul, 20480ul}) {
        for (uint32_t size : {1u, 100u, 4096u, 5000u, 16384u}) {
          std::string want = off < data.size() ? data.substr(off, size) : "";
          ASSERT_EQ(read(node, off, size), want) << name << " off=" << off << " size=" << size;
        }
      }
    }
  }
  uint64_t sparse = walk("sparse");
  std::string got = read(sparse, 0, 1 << 20);
  EXPECT_EQ(got, std::string(4096 * 3, '\0') + "end");
  fuse_read_in in{};
  in.size = 10;
  EXPECT_EQ(call(FUSE_READ, walk("dir"), &in, sizeof(in)).error, -EISDIR);
}

TEST_P(FuseOpsTest, ReaddirPagesThroughEveryEntryInOrder) {
  init();
  uint64_t dir = walk("dir");
  std::vector<std::string> want = {".", ".."};
  std::vector<std::string> names;
  for (int i = 0; i < 300; ++i) names.push_back("entry-" + std::to_string(i));
  names.push_back("sub");
  std::sort(names.begin(), names.end());
  want.insert(want.end(), names.begin(), names.end());
  for (bool plus : {false, true}) {
    for (uint32_t size : {4096u, 200u}) {  // small buffers force many continuation requests
      auto got = list(dir, plus, size);
      std::vector<std::string> got_names;
      for (auto& [n, node] : got) got_names.push_back(n);
      EXPECT_EQ(got_names, want) << "plus=" << plus << " size=" << size;
      if (plus) {
        for (auto& [n, node] : got) {
          if (n == "." || n == "..") {
            EXPECT_EQ(node, 0u);  // listed only, no lookup reference
          } else {
            EXPECT_EQ(node, lookup(dir, n).nodeid) << n;
          }
        }
      }
    }
  }
}

TEST_P(FuseOpsTest, OpenIsEnosysAndForgetHasNoReply) {
  init();
  uint64_t node = walk("small");
  fuse_open_in oi{};
  EXPECT_EQ(call(FUSE_OPEN, node, &oi, sizeof(oi)).error, -ENOSYS);
  EXPECT_EQ(call(FUSE_OPENDIR, FUSE_ROOT_ID, &oi, sizeof(oi)).error, -ENOSYS);
  EXPECT_EQ(call(FUSE_FLUSH, node).error, -ENOSYS);
  fuse_forget_in fi{};
  fi.nlookup = 1;
  std::vector<uint8_t> req(sizeof(fuse_in_header) + sizeof(fi));
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(req.size()), h.opcode = FUSE_FORGET, h.nodeid = node;
  std::memcpy(req.data(), &h, sizeof(h));
  std::memcpy(req.data() + sizeof(h), &fi, sizeof(fi));
  EXPECT_EQ(ops_->handle(*ctx_, req.data(), req.size(), out_.data(), out_.size()), 0u);
  Reply st = call(FUSE_STATFS, FUSE_ROOT_ID);
  ASSERT_EQ(st.error, 0);
  fuse_statfs_out so{};
  std::memcpy(&so, st.data.data(), sizeof(so));
  EXPECT_EQ(so.st.bsize, 4096u);
  EXPECT_GE(so.st.files, 300u);
}

TEST_P(FuseOpsTest, Xattrs) {
  init();
  uint64_t node = walk("small");
  fuse_getxattr_in gx{};
  std::vector<uint8_t> arg(sizeof(gx));
  auto with_name = [&](uint32_t size, const std::string& name) {
    gx.size = size;
    std::vector<uint8_t> a(sizeof(gx) + name.size() + 1, 0);
    std::memcpy(a.data(), &gx, sizeof(gx));
    std::memcpy(a.data() + sizeof(gx), name.c_str(), name.size());
    return a;
  };
  if (!xattrs_ok_ || !reader_->has_xattrs()) {
    // Without xattrs in the image the kernel is told to stop asking.
    auto a = with_name(0, "user.note");
    EXPECT_EQ(call(FUSE_GETXATTR, node, a.data(), a.size()).error, -ENOSYS);
    return;
  }
  auto a = with_name(0, "user.note");
  Reply r = call(FUSE_GETXATTR, node, a.data(), a.size());
  ASSERT_EQ(r.error, 0);
  fuse_getxattr_out go{};
  std::memcpy(&go, r.data.data(), sizeof(go));
  EXPECT_EQ(go.size, 6u);
  a = with_name(64, "user.note");
  r = call(FUSE_GETXATTR, node, a.data(), a.size());
  EXPECT_EQ(std::string(r.data.begin(), r.data.end()), "value!");
  a = with_name(3, "user.note");
  EXPECT_EQ(call(FUSE_GETXATTR, node, a.data(), a.size()).error, -ERANGE);
  a = with_name(64, "user.other");
  EXPECT_EQ(call(FUSE_GETXATTR, node, a.data(), a.size()).error, -ENODATA);
  a = with_name(64, "");
  r = call(FUSE_LISTXATTR, node, a.data(), sizeof(gx));
  ASSERT_EQ(r.error, 0);
  EXPECT_EQ(std::string(r.data.begin(), r.data.end()), std::string("user.note\0", 10));
}

INSTANTIATE_TEST_SUITE_P(Codecs, FuseOpsTest, ::testing::Values("zstd", "gzip", "lz4", "xz"));

TEST(SquashfsReader, NamesAnUnsupportedCompressor) {
  if (rbox::proc::which("mksquashfs").empty()) GTEST_SKIP() << "mksquashfs not installed";
  if (fz::codec_supported(3)) GTEST_SKIP() << "this build reads LZO";
  fs::TempDir tmp("rbox-fuseops-");
  fs::write_file(tmp.path() + "/f", "x");
  std::string img = tmp.path() + "/lzo.sqfs";
  rbox::proc::Options quiet;
  quiet.capture_stdout = true;
  auto r = rbox::proc::run({"mksquashfs", tmp.path() + "/f", img, "-quiet", "-no-progress", "-comp", "lzo"},
                           quiet);
  if (r.status != 0) GTEST_SKIP() << "mksquashfs cannot write LZO";
  try {
    fz::SquashfsReader reader(rbox::UniqueFd(open(img.c_str(), O_RDONLY | O_CLOEXEC)), 0, 0, img);
    FAIL() << "LZO image accepted";
  } catch (const rbox::Error& e) {
    EXPECT_NE(std::string(e.what()).find("'lzo' is not supported"), std::string::npos) << e.what();
  }
}

TEST(SquashfsReader, RejectsWhatIsNotSquashfs) {
  fs::TempDir tmp("rbox-fuseops-");
  std::string path = tmp.path() + "/junk";
  fs::write_file(path, std::string(8192, 'j'));
  try {
    fz::SquashfsReader r(rbox::UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC)), 4096, 0, path);
    FAIL() << "accepted junk";
  } catch (const rbox::Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("SquashFS"), std::string::npos);
  }
  // A partition that lies outside the file.
  EXPECT_THROW(
      fz::SquashfsReader(rbox::UniqueFd(open(path.c_str(), O_RDONLY | O_CLOEXEC)), 4096, 1 << 20, path),
      rbox::Error);
}

}  // namespace
