// Unit tests for image/sif_format: header and descriptor bytes against hand-computed layouts
// (APPTAINER.md 1.2-1.4), and decode/encode round trips over the sylabs/sif conformance files.
#include "image/sif_format.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

using namespace rbox::image::sif;

namespace {

std::string conformance_file(const std::string& name) {
  const char* env = std::getenv("RBOX_CONFORMANCE_DIR");
  std::string dir = env ? env : std::string(RBOX_SOURCE_DIR) + "/../shared/conformance";
  std::ifstream in(dir + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

template <size_t N>
std::string hex(const std::array<uint8_t, N>& a, size_t off, size_t len) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = off; i < off + len; ++i) {
    s += d[a[i] >> 4];
    s += d[a[i] & 15];
  }
  return s;
}

}  // namespace

TEST(SifFormat, HeaderBytes) {
  Header h;
  std::memcpy(h.launch_script.data(), "#!x\n", 4);
  std::memcpy(h.magic.data(), "SIF_MAGIC\0", 10);
  std::memcpy(h.version.data(), "01\0", 3);
  h.arch = arch_code("amd64");
  for (uint8_t i = 0; i < 16; ++i) h.id[i] = i;
  h.created_at = kGoZeroTime;
  h.modified_at = 1;
  h.descriptors_free = 47;
  h.descriptors_total = 48;
  h.descriptors_offset = 4096;
  h.descriptors_size = 48 * 585;
  h.data_offset = 32176;
  h.data_size = 2;
  auto b = encode_header(h);
  ASSERT_EQ(b.size(), 128u);
  EXPECT_EQ(hex(b, 0, 5), "2321780a00");                          // launch script, NUL padded
  EXPECT_EQ(hex(b, 32, 10), "5349465f4d4147494300");              // "SIF_MAGIC\0"
  EXPECT_EQ(hex(b, 42, 3), "303100");                             // "01\0"
  EXPECT_EQ(hex(b, 45, 3), "303200");                             // "02\0" amd64
  EXPECT_EQ(hex(b, 48, 16), "000102030405060708090a0b0c0d0e0f");  // UUID raw
  EXPECT_EQ(hex(b, 64, 8), "00096e88f1ffffff");                   // -62135596800 LE
  EXPECT_EQ(hex(b, 72, 8), "0100000000000000");
  EXPECT_EQ(hex(b, 80, 8), "2f00000000000000");   // 47
  EXPECT_EQ(hex(b, 88, 8), "3000000000000000");   // 48
  EXPECT_EQ(hex(b, 96, 8), "0010000000000000");   // 4096
  EXPECT_EQ(hex(b, 104, 8), "b06d000000000000");  // 28080
  EXPECT_EQ(hex(b, 112, 8), "b07d000000000000");  // 32176
  EXPECT_EQ(hex(b, 120, 8), "0200000000000000");
  Header d = decode_header(b.data());
  EXPECT_EQ(encode_header(d), b);
  EXPECT_EQ(d.created_at, kGoZeroTime);
  EXPECT_EQ(arch_name(d.arch), "amd64");
}

TEST(SifFormat, DescriptorBytes) {
  Descriptor d;
  d.data_type = static_cast<int32_t>(DataType::kPartition);
  d.used = true;
  d.id = 4;
  d.group_id = 1 | kGroupMask;
  d.linked_id = 0;
  d.offset = 45056;
  d.size = 745472;
  d.size_with_padding = 745472 + 3048;
  d.created_at = 0x0102030405060708;
  d.modified_at = -1;
  std::memcpy(d.name.data(), "squashfs", 8);
  set_partition_extra(d, PartitionExtra{FsType::kSquash, PartType::kPrimSys, arch_code("amd64")});
  auto b = encode_descriptor(d);
  ASSERT_EQ(b.size(), 585u);
  EXPECT_EQ(hex(b, 0, 4), "04400000");           // DataType 0x4004
  EXPECT_EQ(hex(b, 4, 1), "01");                 // Used
  EXPECT_EQ(hex(b, 5, 4), "04000000");           // ID
  EXPECT_EQ(hex(b, 9, 4), "010000f0");           // GroupID | 0xF0000000
  EXPECT_EQ(hex(b, 13, 4), "00000000");          // LinkedID
  EXPECT_EQ(hex(b, 17, 8), "00b0000000000000");  // 45056
  EXPECT_EQ(hex(b, 25, 8), "00600b0000000000");  // 745472
  EXPECT_EQ(hex(b, 33, 8), "e86b0b0000000000");  // 748520
  EXPECT_EQ(hex(b, 41, 8), "0807060504030201");
  EXPECT_EQ(hex(b, 49, 8), "ffffffffffffffff");
  EXPECT_EQ(hex(b, 57, 16), std::string(32, '0'));  // UID, GID
  EXPECT_EQ(hex(b, 73, 9),
            "7371756173686673"
            "00");
  EXPECT_EQ(hex(b, 201, 12),
            "0100000002000000"
            "30320000");  // Squashfs, PrimSys, "02\0", then zero
  Descriptor r = decode_descriptor(b.data());
  EXPECT_EQ(encode_descriptor(r), b);
  EXPECT_EQ(r.group(), 1u);
  EXPECT_EQ(r.name_str(), "squashfs");
  auto p = partition_extra(r);
  EXPECT_EQ(p.fs, FsType::kSquash);
  EXPECT_EQ(p.part, PartType::kPrimSys);
  EXPECT_EQ(arch_name(p.arch), "amd64");
}

TEST(SifFormat, LinksAndExtras) {
  Descriptor d;
  d.group_id = kGroupMask;  // no group
  d.linked_id = 2 | kGroupMask;
  EXPECT_EQ(d.group(), 0u);
  EXPECT_EQ(d.link(), 2u);
  EXPECT_TRUE(d.link_is_group());
  SignatureExtra s;
  s.hash = HashType::kSha384;
  s.entity[0] = 0xAB;
  set_signature_extra(d, s);
  EXPECT_EQ(d.extra[0], 2);
  EXPECT_EQ(d.extra[4], 0xAB);
  EXPECT_EQ(signature_extra(d).hash, HashType::kSha384);
  set_crypto_message_extra(d, {FormatType::kPem, MessageType::kRsaOaep});
  EXPECT_EQ(d.extra[0], 2);
  EXPECT_EQ(d.extra[4], 0x00);
  EXPECT_EQ(d.extra[5], 0x02);
  set_sbom_extra(d, SbomFormat::kSpdxJson);
  EXPECT_EQ(sbom_extra(d), SbomFormat::kSpdxJson);
  set_digest_extra(d, "sha256:abc");
  EXPECT_EQ(digest_extra(d), "sha256:abc");
}

TEST(SifFormat, ArchCodes) {
  EXPECT_EQ(std::string(arch_code("386").data()), "01");
  EXPECT_EQ(std::string(arch_code("riscv64").data()), "12");
  EXPECT_EQ(std::string(arch_code("loong64").data()), "13");
  EXPECT_EQ(std::string(arch_code("sparc").data()), "00");
  EXPECT_EQ(arch_name(ArchCode{'1', '1', '\0'}), "s390x");
  EXPECT_EQ(arch_name(ArchCode{'0', '0', '\0'}), "unknown");
  EXPECT_EQ(arch_name(ArchCode{'0', '2', 'x'}), "unknown");
}

TEST(SifFormat, Names) {
  EXPECT_EQ(data_type_name(0x4001), "Def.FILE");
  EXPECT_EQ(data_type_name(0x4006), "JSON.Generic");
  EXPECT_EQ(data_type_name(0x400B), "Unknown");  // siftool 2.8 predates the OCI types
  EXPECT_EQ(part_type_name(2), "*System");
  EXPECT_EQ(fs_type_name(5), "Encrypted squashfs");
  EXPECT_EQ(hash_type_name(1), "SHA-256");
  EXPECT_EQ(hash_type_name(9), "");
  EXPECT_EQ(message_type_name(0x100), "Clear Signature");
  EXPECT_EQ(sbom_format_name(1), "cyclonedx-json");
  EXPECT_EQ(sbom_format_name(99), "unknown");
}

TEST(SifFormat, RoundTripsRealFiles) {
  const std::string bytes = conformance_file("sif-images/two-groups-signed-pgp.sif");
  if (bytes.empty()) GTEST_SKIP() << "conformance corpus not found";
  auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  Header h = decode_header(p);
  auto hb = encode_header(h);
  EXPECT_EQ(std::memcmp(hb.data(), p, 128), 0);
  for (int64_t i = 0; i < h.descriptors_total; ++i) {
    const uint8_t* at = p + h.descriptors_offset + i * 585;
    auto db = encode_descriptor(decode_descriptor(at));
    EXPECT_EQ(std::memcmp(db.data(), at, 585), 0) << "descriptor " << i;
  }
}
