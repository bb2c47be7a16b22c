// Unit tests for oci/layer_apply and oci/root_dir: entry types, whiteouts per the image spec,
// read-only directories, and hostile layers (each must leave the host untouched and either
// apply inside the root or fail clearly), with openat2 and with the fd-walking fallback.
#include "oci/layer_apply.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "oci/root_dir.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::oci;

namespace {

// Builds a pax tar in memory with libarchive's writer (names are kept exactly as given).
class Tar {
 public:
  Tar() {
    a_ = archive_write_new();
    archive_write_set_format_pax_restricted(a_);
    archive_write_open(a_, &data_, nullptr, write_cb, nullptr);
  }
  ~Tar() {
    if (a_) archive_write_free(a_);
  }
  Tar& file(const std::string& name, const std::string& content, unsigned mode = 0644,
            time_t mtime = 1600000000) {
    return add(name, AE_IFREG, mode, content, {}, mtime);
  }
  Tar& dir(const std::string& name, unsigned mode = 0755) { return add(name, AE_IFDIR, mode, {}, {}); }
  Tar& symlink(const std::string& name, const std::string& target) {
    return add(name, AE_IFLNK, 0777, {}, target);
  }
  Tar& hardlink(const std::string& name, const std::string& target) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_hardlink(e, target.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 0);
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  Tar& fifo(const std::string& name) { return add(name, AE_IFIFO, 0640, {}, {}); }
  Tar& chr(const std::string& name) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFCHR);
    archive_entry_set_perm(e, 0666);
    archive_entry_set_rdevmajor(e, 1);
    archive_entry_set_rdevminor(e, 3);
    archive_write_header(a_, e);
    archive_entry_free(e);
    return *this;
  }
  Tar& file_with_xattr(const std::string& name, const std::string& xname, const std::string& xvalue) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, 1);
    archive_entry_xattr_add_entry(e, xname.c_str(), xvalue.data(), xvalue.size());
    archive_write_header(a_, e);
    archive_write_data(a_, "x", 1);
    archive_entry_free(e);
    return *this;
  }
  std::string done() {
    archive_write_close(a_);
    archive_write_free(a_);
    a_ = nullptr;
    return data_;
  }

 private:
  Tar& add(const std::string& name, unsigned type, unsigned mode, const std::string& content,
           const std::string& target, time_t mtime = 1600000000) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, mode);
    archive_entry_set_mtime(e, mtime, 0);
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    if (type == AE_IFLNK) archive_entry_set_symlink(e, target.c_str());
    archive_write_header(a_, e);
    if (!content.empty()) archive_write_data(a_, content.data(), content.size());
    archive_entry_free(e);
    return *this;
  }
  static la_ssize_t write_cb(struct archive*, void* data, const void* buf, size_t n) {
    static_cast<std::string*>(data)->append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  struct archive* a_ = nullptr;
  std::string data_;
};

TarSource once(const std::string& data) {
  auto sent = std::make_shared<bool>(false);
  return [data, sent]() -> std::string_view {
    if (*sent) return {};
    *sent = true;
    return data;
  };
}

struct stat lstat_of(const std::string& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) st.st_mode = 0;
  return st;
}

bool exists(const std::string& p) {
  return lstat_of(p).st_mode != 0;
}

}  // namespace

// Every test runs twice: with openat2(RESOLVE_IN_ROOT) and with the user-space walk.
class LayerApply : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    RootDir::force_fallback(GetParam());
    tmp_ = std::make_unique<fs::TempDir>("rbox-layer-test-");
    root_ = tmp_->path() + "/root";
    outside_ = tmp_->path() + "/outside";
    fs::mkdir_p(root_);
    fs::mkdir_p(outside_);
    fs::write_file(outside_ + "/secret", "host data", 0640);
    secret_before_ = lstat_of(outside_ + "/secret");
  }
  void TearDown() override {
    // The host side is never touched, whatever the layer said.
    struct stat now = lstat_of(outside_ + "/secret");
    EXPECT_EQ(now.st_mode, secret_before_.st_mode);
    EXPECT_EQ(now.st_nlink, 1u);
    EXPECT_EQ(fs::read_file(outside_ + "/secret"), "host data");
    EXPECT_EQ(lstat_of(outside_).st_mode & 07777, 0755u);
    EXPECT_FALSE(exists(outside_ + "/pwned"));
    EXPECT_FALSE(exists(tmp_->path() + "/escape"));
    RootDir::force_fallback(false);
  }
  void apply(const std::vector<std::string>& layers) {
    LayerApplier ap(root_);
    for (size_t i = 0; i < layers.size(); ++i) ap.apply(once(layers[i]), "layer " + std::to_string(i + 1));
    ap.finish();
  }
  std::string in(const std::string& rel) const { return root_ + "/" + rel; }

  std::unique_ptr<fs::TempDir> tmp_;
  std::string root_, outside_;
  struct stat secret_before_ {};
};

INSTANTIATE_TEST_SUITE_P(Resolver, LayerApply, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "walk" : "openat2"; });

TEST(RootDirPath, CleanMemberPath) {
  bool clamped = false;
  EXPECT_EQ(clean_member_path("./a/./b//c/", &clamped), "a/b/c");
  EXPECT_FALSE(clamped);
  EXPECT_EQ(clean_member_path("/etc/passwd", &clamped), "etc/passwd");
  EXPECT_TRUE(clamped);
  EXPECT_EQ(clean_member_path("../../../etc/x", &clamped), "etc/x");
  EXPECT_TRUE(clamped);
  EXPECT_EQ(clean_member_path("a/../../b", &clamped), "b");
  EXPECT_TRUE(clamped);
  EXPECT_EQ(clean_member_path("a/b/../c", &clamped), "a/c");
  EXPECT_FALSE(clamped);
  EXPECT_EQ(clean_member_path("./", &clamped), "");
  EXPECT_EQ(split_parent("a/b/c"), (std::pair<std::string, std::string>{"a/b", "c"}));
  EXPECT_EQ(split_parent("c"), (std::pair<std::string, std::string>{"", "c"}));
}

TEST_P(LayerApply, EntryTypesModesAndTimes) {
  apply({Tar()
             .dir("d", 0750)
             .file("d/f", "hello", 04755, 1000000000)
             .file("zero", "z", 0)
             .symlink("d/l", "../zero")
             .hardlink("d/h", "d/f")
             .fifo("p")
             .file("sgid", "g", 02755)
             .done()});
  EXPECT_EQ(fs::read_file(in("d/f")), "hello");
  EXPECT_EQ(lstat_of(in("d/f")).st_mode & 07777, 04755u);
  EXPECT_EQ(lstat_of(in("d/f")).st_mtime, 1000000000);
  EXPECT_EQ(lstat_of(in("d/f")).st_nlink, 2u);
  EXPECT_EQ(lstat_of(in("d/h")).st_ino, lstat_of(in("d/f")).st_ino);
  EXPECT_EQ(lstat_of(in("zero")).st_mode & 07777, 0u);
  EXPECT_EQ(lstat_of(in("sgid")).st_mode & 07777, 02755u);
  EXPECT_TRUE(S_ISFIFO(lstat_of(in("p")).st_mode));
  EXPECT_EQ(lstat_of(in("p")).st_mode & 0777, 0640u);
  char buf[64] = {0};
  ASSERT_GT(::readlink(in("d/l").c_str(), buf, sizeof buf), 0);
  EXPECT_STREQ(buf, "../zero");
  EXPECT_EQ(lstat_of(in("d")).st_mode & 07777, 0750u);
}

TEST_P(LayerApply, DeviceNodes) {
  apply({Tar().dir("dev").chr("dev/null").done()});
  if (::geteuid() == 0)
    EXPECT_TRUE(S_ISCHR(lstat_of(in("dev/null")).st_mode));
  else
    EXPECT_FALSE(exists(in("dev/null")));
}

TEST_P(LayerApply, Xattrs) {
  apply({Tar().file_with_xattr("x", "user.rbox.t", "v1").done()});
  char buf[16] = {0};
  ASSERT_EQ(::getxattr(in("x").c_str(), "user.rbox.t", buf, sizeof buf), 2);
  EXPECT_STREQ(buf, "v1");
}

TEST_P(LayerApply, WhiteoutsHideLowerLayersOnly) {
  apply({Tar().dir("a").file("a/gone", "1").file("a/keep", "2").dir("a/sub").file("a/sub/x", "3").done(),
         // Same-layer file and whiteout: the file stays (image-spec "Whiteouts").
         Tar().file("a/new", "4").file("a/.wh.gone", "").file("a/.wh.sub", "").file("a/.wh.new", "").done()});
  EXPECT_FALSE(exists(in("a/gone")));
  EXPECT_FALSE(exists(in("a/sub")));
  EXPECT_TRUE(exists(in("a/keep")));
  EXPECT_TRUE(exists(in("a/new")));
  EXPECT_FALSE(exists(in("a/.wh.gone")));
  EXPECT_FALSE(exists(in("a/.wh.new")));
}

TEST_P(LayerApply, OpaqueWhiteoutAfterNewEntries) {
  // The spec's example: the opaque marker comes after this layer's own entries and still only
  // hides the lower ones.
  apply({Tar().dir("o").file("o/old", "1").dir("o/d").file("o/d/olddeep", "2").done(),
         Tar()
             .dir("o")
             .file("o/new", "3")
             .dir("o/d")
             .file("o/d/newdeep", "4")
             .file("o/.wh..wh..opq", "")
             .done()});
  EXPECT_FALSE(exists(in("o/old")));
  EXPECT_FALSE(exists(in("o/d/olddeep")));
  EXPECT_TRUE(exists(in("o/new")));
  EXPECT_TRUE(exists(in("o/d/newdeep")));
  EXPECT_FALSE(exists(in("o/.wh..wh..opq")));
}

TEST_P(LayerApply, ReplaceTypes) {
  apply({Tar().file("f2d", "x").dir("d2f").file("d2f/child", "y").symlink("l2f", "f2d").done(),
         Tar().dir("f2d").file("f2d/in", "z").file("d2f", "now a file").file("l2f", "plain").done()});
  EXPECT_TRUE(S_ISDIR(lstat_of(in("f2d")).st_mode));
  EXPECT_EQ(fs::read_file(in("d2f")), "now a file");
  EXPECT_TRUE(S_ISREG(lstat_of(in("l2f")).st_mode));
}

TEST_P(LayerApply, ReadOnlyDirectoriesDoNotBlockLaterEntries) {
  apply({Tar().dir("ro", 0555).dir("none", 0).file("ro/a", "1").done(),
         Tar().file("ro/b", "2").dir("none/sub").file("none/sub/c", "3").file("ro/.wh.a", "").done()});
  EXPECT_EQ(lstat_of(in("ro")).st_mode & 07777, 0555u);
  EXPECT_EQ(lstat_of(in("none")).st_mode & 07777, 0u);
  ::chmod(in("none").c_str(), 0755);  // to look inside as a non-root user
  EXPECT_EQ(fs::read_file(in("ro/b")), "2");
  EXPECT_FALSE(exists(in("ro/a")));
  EXPECT_EQ(fs::read_file(in("none/sub/c")), "3");
}

// ---- hostile layers ----

TEST_P(LayerApply, DotDotAndAbsoluteNamesStayInside) {
  apply({Tar()
             .file("../escape", "x")
             .file("../../../../../../../../../../../../escape2", "y")
             .file("/abs", "z")
             .file("a/../../outside/pwned", "w")
             .done()});
  EXPECT_EQ(fs::read_file(in("escape")), "x");
  EXPECT_EQ(fs::read_file(in("escape2")), "y");
  EXPECT_EQ(fs::read_file(in("abs")), "z");
  EXPECT_EQ(fs::read_file(in("outside/pwned")), "w");
}

TEST_P(LayerApply, SymlinkedParentResolvesInsideRoot) {
  // Relative and absolute symlinks to the host's "outside" directory, then files through them.
  std::string rel_escape = "../../../../../../../../../../../../.." + outside_;
  apply({Tar().symlink("rel", rel_escape).symlink("abs", outside_).symlink("up", "..").done(),
         Tar().file("rel/pwned", "1").file("abs/pwned", "2").file("up/escape", "3").done()});
  // Both land under root/<outside path> — where the container would see them.
  EXPECT_EQ(fs::read_file(in(outside_.substr(1) + "/pwned")), "2");
  EXPECT_EQ(fs::read_file(in("escape")), "3");
}

TEST_P(LayerApply, FinalSymlinkIsReplacedNotFollowed) {
  apply({Tar().symlink("target", outside_ + "/secret").symlink("dirlink", outside_).done(),
         Tar().file("target", "overwritten?").dir("dirlink", 0777).done()});
  EXPECT_TRUE(S_ISREG(lstat_of(in("target")).st_mode));
  EXPECT_EQ(fs::read_file(in("target")), "overwritten?");
  EXPECT_TRUE(S_ISDIR(lstat_of(in("dirlink")).st_mode));
  EXPECT_EQ(lstat_of(in("dirlink")).st_mode & 07777, 0777u);
}

TEST_P(LayerApply, HardLinkToOutsideFails) {
  for (const std::string& target : {std::string("../outside/secret"), outside_ + "/secret"}) {
    SCOPED_TRACE(target);
    fs::remove_tree(root_);
    fs::mkdir_p(root_);
    try {
      apply({Tar().hardlink("hl", target).done()});
      FAIL() << "a hard link to a missing in-root target must fail";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(exists(in("hl")));
  }
}

TEST_P(LayerApply, HardLinkThroughSymlinkedParentStaysInside) {
  // "evil" points at the host directory; a hard link through it resolves inside the root.
  fs::mkdir_p(root_ + outside_);
  fs::write_file(root_ + outside_ + "/secret", "in-root copy");
  apply({Tar().symlink("evil", outside_).hardlink("hl", "evil/secret").done()});
  EXPECT_EQ(lstat_of(in("hl")).st_ino, lstat_of(root_ + outside_ + "/secret").st_ino);
}

TEST_P(LayerApply, WhiteoutsThroughSymlinksStayInside) {
  apply(
      {Tar().symlink("evil", outside_).symlink("evil2", "../outside").done(),
       Tar().file("evil/.wh.secret", "").file("evil2/.wh.secret", "").file("evil/.wh..wh..opq", "").done()});
  // TearDown checks outside/secret still exists.
}

TEST_P(LayerApply, SymlinkLoopFailsClearly) {
  try {
    apply({Tar().symlink("a", "b").symlink("b", "a").file("a/x", "1").done()});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
}

TEST_P(LayerApply, InvalidEntriesFail) {
  EXPECT_THROW(apply({Tar().file(".wh.", "").done()}), Error);
  EXPECT_THROW(apply({Tar().file("./", "not a dir").done()}), Error);
  EXPECT_THROW(apply({Tar().file("f", "x").file("f/under-a-file", "y").done()}), Error);
}

TEST_P(LayerApply, NotATar) {
  try {
    apply({std::string(4096, 'x')});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1"), std::string::npos) << e.what();
  }
}

TEST(RootlessOwner, MatchesUmociEncoding) {
  // Values observed from `umoci unpack --rootless` (uid 1000 gid 50; 0 → NoopID).
  EXPECT_EQ(rootless_owner_xattr(1000, 50), std::string("\x08\xe8\x07\x10\x32"));
  EXPECT_EQ(rootless_owner_xattr(0, 5), std::string("\x08\xff\xff\xff\xff\x0f\x10\x05"));
  EXPECT_EQ(rootless_owner_xattr(0, 0), "");
}
