// Unit tests for image/sif (reader) and image/sif_writer: every file of the sylabs/sif corpus is
// read, and rebuilt by our writer byte for byte; malformed files are rejected with clear errors.
#include "image/sif.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "image/sif_writer.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

using namespace rbox;
using namespace rbox::image::sif;

namespace {

std::string corpus_dir() {
  const char* env = std::getenv("RBOX_CONFORMANCE_DIR");
  return (env ? std::string(env) : std::string(RBOX_SOURCE_DIR) + "/../shared/conformance") + "/sif-images";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string error_of(const std::string& bytes) {
  try {
    Sif::from_memory(bytes, "t.sif");
  } catch (const Error& e) {
    return e.message();
  }
  return "";
}

void put64(std::string& b, size_t off, int64_t v) {
  for (int i = 0; i < 8; ++i) b[off + i] = static_cast<char>(static_cast<uint64_t>(v) >> (8 * i));
}

// A small valid SIF written by our writer: DefFile, GenericJSON and a PrimSys partition.
std::string sample_sif(const std::string& dir) {
  CreateOptions o;
  o.deterministic = true;
  Writer w(dir + "/s.sif", o);
  ObjectSpec def;
  def.type = DataType::kDeffile;
  w.add(def, "bootstrap: scratch\n");
  ObjectSpec js;
  js.type = DataType::kGenericJson;
  js.name = "inspect-metadata.json";
  w.add(js, "{}");
  w.add(partition_spec(FsType::kSquash, PartType::kPrimSys, arch_code("amd64")), std::string(5000, 'q'));
  w.commit();
  return slurp(dir + "/s.sif");
}

}  // namespace

TEST(Sif, ReadsAndRebuildsTheCorpus) {
  std::vector<std::filesystem::path> files;
  if (!std::filesystem::exists(corpus_dir())) GTEST_SKIP() << "conformance corpus not found";
  for (const auto& e : std::filesystem::directory_iterator(corpus_dir())) files.push_back(e.path());
  ASSERT_EQ(files.size(), 21u);
  fs::TempDir tmp;
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    Sif s = Sif::open(f.string());
    const Header& h = s.header();
    CreateOptions o;
    o.launch_script = s.launch_script();
    o.id = h.id;
    o.time = h.created_at;
    o.modified_time = h.modified_at;
    o.data_offset = h.data_offset;  // 32768 in files from older writers
    o.descriptor_capacity = h.descriptors_total;
    const std::string out = tmp.path() + "/" + f.filename().string();
    Writer w(out, o);
    int64_t end = h.data_offset;
    for (const auto& d : s.descriptors()) {
      ObjectSpec spec;
      spec.type = d.type();
      spec.name = d.name_str();
      spec.group = d.group();
      spec.link = d.link();
      spec.link_is_group = d.link_is_group();
      spec.extra = d.extra;
      spec.alignment = d.offset == end ? 0 : 4096;
      spec.time = d.created_at;
      spec.uid = d.uid;
      spec.gid = d.gid;
      uint32_t id = w.add(spec, s.read(d));
      EXPECT_EQ(id, d.id);
      end = d.offset + d.size;
    }
    w.commit();
    const std::string got = slurp(out), want = slurp(f.string());
    size_t at = 0;
    while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
    EXPECT_TRUE(got == want) << "rebuilt file differs at byte " << at << " (sizes " << got.size() << ", "
                             << want.size() << ")";
  }
}

TEST(Sif, FindsPrimaryPartitionAtCustomOffsets) {
  const std::string path = corpus_dir() + "/../apptainer-images/busybox_amd64.sif";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "busybox_amd64.sif not found";
  Sif s = Sif::open(path);
  EXPECT_EQ(s.header().data_offset, 32768);
  const Descriptor* p = s.primary_partition();
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->id, 4u);
  EXPECT_EQ(p->offset, 45056);
  EXPECT_EQ(s.primary_arch(), "amd64");
  EXPECT_EQ(s.id_string(), "4f307b4c-58a8-4753-9c0f-21dceefed4a6");
  EXPECT_EQ(s.read(*s.find(1)), "BootStrap: docker\nFrom: busybox:1.33.1\n");
}

TEST(Sif, WriterLayout) {
  fs::TempDir tmp;
  std::string b = sample_sif(tmp.path());
  Sif s = Sif::from_memory(b, "s.sif");
  ASSERT_EQ(s.descriptors().size(), 3u);
  const auto& d = s.descriptors();
  EXPECT_EQ(d[0].offset, 32176);  // DefFile right after the table, unaligned
  EXPECT_EQ(d[1].offset, 32176 + 19);
  EXPECT_EQ(d[2].offset, 32768);  // partition aligned to 4096
  EXPECT_EQ(d[2].size_with_padding, 32768 - (32176 + 19 + 2) + 5000);
  EXPECT_EQ(b.size(), 32768u + 5000u);
  EXPECT_EQ(s.header().data_size, static_cast<int64_t>(b.size()) - 32176);
  EXPECT_EQ(s.header().descriptors_free, 45);
  EXPECT_EQ(s.primary_arch(), "amd64");
  EXPECT_EQ(s.launch_script(), "#!/usr/bin/env run-singularity\n");
  EXPECT_EQ(s.id_string(), "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(s.header().created_at, kGoZeroTime);
  for (const auto& x : d) {
    EXPECT_EQ(x.group_id, 0xF0000001u);
    EXPECT_EQ(x.created_at, kGoZeroTime);
  }
  EXPECT_EQ(std::string(b.data() + 128, 4096 - 128), std::string(4096 - 128, '\0'));
}

TEST(Sif, WriterRefusesSecondPrimaryPartition) {
  fs::TempDir tmp;
  Writer w(tmp.path() + "/x.sif");
  auto spec = partition_spec(FsType::kSquash, PartType::kPrimSys, arch_code("amd64"));
  w.add(spec, "a");
  EXPECT_THROW(w.add(spec, "b"), Error);
}

TEST(Sif, WriterLeavesOldFileOnAbort) {
  fs::TempDir tmp;
  const std::string path = tmp.path() + "/keep.sif";
  fs::write_file(path, "old");
  {
    Writer w(path);
    w.add(ObjectSpec{}, "data");
    // destroyed without commit(), as when an exception unwinds a build
  }
  EXPECT_EQ(slurp(path), "old");
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(tmp.path())) ++n;
  EXPECT_EQ(n, 1u) << "temporary file left behind";
}

TEST(Sif, RandomIdIsVersion4) {
  auto id = random_uuid();
  EXPECT_EQ(id[6] >> 4, 4);
  EXPECT_EQ(id[8] & 0xC0, 0x80);
}

TEST(Sif, RejectsMalformedFiles) {
  fs::TempDir tmp;
  const std::string good = sample_sif(tmp.path());
  EXPECT_EQ(error_of(good), "");

  EXPECT_NE(error_of(good.substr(0, 100)).find("truncated SIF file"), std::string::npos);
  EXPECT_NE(error_of(good.substr(0, 20)).find("not a SIF file"), std::string::npos);
  EXPECT_NE(error_of(good.substr(0, 5000)).find("descriptor table"), std::string::npos);
  EXPECT_NE(error_of(good.substr(0, good.size() - 1)).find("extends past the end"), std::string::npos);
  EXPECT_NE(error_of(std::string(4096, 'x')).find("not a SIF file"), std::string::npos);

  std::string bad = good;
  bad[32] = 'X';
  EXPECT_NE(error_of(bad).find("no SIF_MAGIC"), std::string::npos);
  bad = good;
  bad[43] = '2';
  EXPECT_NE(error_of(bad).find("unsupported SIF version \"02\""), std::string::npos);
  bad = good;
  put64(bad, 96, 1 << 30);  // descriptors offset far past the end
  EXPECT_NE(error_of(bad).find("descriptor table"), std::string::npos);
  bad = good;
  put64(bad, 96, 64);  // table overlapping the header
  EXPECT_NE(error_of(bad).find("overlaps the 128-byte header"), std::string::npos);
  bad = good;
  put64(bad, 88, -1);
  EXPECT_NE(error_of(bad).find("negative descriptor count"), std::string::npos);
  bad = good;
  put64(bad, 88, INT64_MAX / 2);  // huge count: must not overflow or allocate
  EXPECT_NE(error_of(bad).find("descriptor table"), std::string::npos);
  bad = good;
  put64(bad, 104, 585);  // table size smaller than the count says
  EXPECT_NE(error_of(bad).find("smaller than 48 descriptors"), std::string::npos);

  const size_t d1 = 4096 + 585;  // second descriptor (the JSON object)
  bad = good;
  put64(bad, d1 + 17, 32176);  // JSON now overlaps the DefFile
  EXPECT_NE(error_of(bad).find("object 1 and object 2 overlap"), std::string::npos);
  bad = good;
  put64(bad, d1 + 17, 100);  // inside the header
  EXPECT_NE(error_of(bad).find("the header and object 2 overlap"), std::string::npos);
  bad = good;
  put64(bad, d1 + 17, 5000);  // inside the descriptor table
  EXPECT_NE(error_of(bad).find("the descriptor table and object 2 overlap"), std::string::npos);
  bad = good;
  put64(bad, d1 + 25, INT64_MAX);  // size overflowing offset + size
  EXPECT_NE(error_of(bad).find("object 2"), std::string::npos);
  bad = good;
  put64(bad, d1 + 17, -5);
  EXPECT_NE(error_of(bad).find("negative offset"), std::string::npos);

  // Turn the JSON object into a second PrimSys partition.
  bad = good;
  const size_t d2 = 4096 + 2 * 585;
  std::memcpy(bad.data() + d1, bad.data() + d2, 4);               // DataType = Partition
  std::memcpy(bad.data() + d1 + 201, bad.data() + d2 + 201, 12);  // same extra
  EXPECT_NE(error_of(bad).find("two primary system partitions (objects 2 and 3)"), std::string::npos);
  EXPECT_NE(error_of(bad).find("t.sif: "), std::string::npos);
}

TEST(Sif, MagicCheck) {
  EXPECT_TRUE(has_sif_magic(std::string(32, ' ') + std::string("SIF_MAGIC\0", 10)));
  EXPECT_FALSE(has_sif_magic("hsqs"));
}
