// Byte-exact encoding of SIF headers and descriptors (see sif_format.hpp). Every multi-byte field
// is little-endian and fields are packed without padding, as Go's encoding/binary writes them.
#include "image/sif_format.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace rbox::image::sif {
namespace {

// Little-endian cursor over a fixed buffer; the callers size the buffers, so no bounds checks here.
class Writer {
 public:
  explicit Writer(uint8_t* p) : p_(p) {}
  void bytes(const void* src, size_t n) {
    std::memcpy(p_, src, n);
    p_ += n;
  }
  template <typename T>
  void le(T v) {
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    for (size_t i = 0; i < sizeof(T); ++i) *p_++ = static_cast<uint8_t>(u >> (8 * i));
  }

 private:
  uint8_t* p_;
};

class Reader {
 public:
  explicit Reader(const uint8_t* p) : p_(p) {}
  void bytes(void* dst, size_t n) {
    std::memcpy(dst, p_, n);
    p_ += n;
  }
  template <typename T>
  T le() {
    std::make_unsigned_t<T> u = 0;
    for (size_t i = 0; i < sizeof(T); ++i) u |= static_cast<std::make_unsigned_t<T>>(p_[i]) << (8 * i);
    p_ += sizeof(T);
    return static_cast<T>(u);
  }

 private:
  const uint8_t* p_;
};

struct ArchEntry {
  const char* goarch;
  const char* code;
};
constexpr ArchEntry kArches[] = {
    {"386", "01"},     {"amd64", "02"},   {"arm", "03"},     {"arm64", "04"},  {"ppc64", "05"},
    {"ppc64le", "06"}, {"mips", "07"},    {"mipsle", "08"},  {"mips64", "09"}, {"mips64le", "10"},
    {"s390x", "11"},   {"riscv64", "12"}, {"loong64", "13"},
};

}  // namespace

std::string Descriptor::name_str() const {
  size_t n = kNameSize;
  while (n > 0 && name[n - 1] == '\0') --n;
  return std::string(name.data(), n);
}

std::array<uint8_t, kHeaderSize> encode_header(const Header& h) {
  std::array<uint8_t, kHeaderSize> out{};
  Writer w(out.data());
  w.bytes(h.launch_script.data(), h.launch_script.size());
  w.bytes(h.magic.data(), h.magic.size());
  w.bytes(h.version.data(), h.version.size());
  w.bytes(h.arch.data(), h.arch.size());
  w.bytes(h.id.data(), h.id.size());
  w.le(h.created_at);
  w.le(h.modified_at);
  w.le(h.descriptors_free);
  w.le(h.descriptors_total);
  w.le(h.descriptors_offset);
  w.le(h.descriptors_size);
  w.le(h.data_offset);
  w.le(h.data_size);
  return out;
}

Header decode_header(const uint8_t* bytes) {
  Header h;
  Reader r(bytes);
  r.bytes(h.launch_script.data(), h.launch_script.size());
  r.bytes(h.magic.data(), h.magic.size());
  r.bytes(h.version.data(), h.version.size());
  r.bytes(h.arch.data(), h.arch.size());
  r.bytes(h.id.data(), h.id.size());
  h.created_at = r.le<int64_t>();
  h.modified_at = r.le<int64_t>();
  h.descriptors_free = r.le<int64_t>();
  h.descriptors_total = r.le<int64_t>();
  h.descriptors_offset = r.le<int64_t>();
  h.descriptors_size = r.le<int64_t>();
  h.data_offset = r.le<int64_t>();
  h.data_size = r.le<int64_t>();
  return h;
}

std::array<uint8_t, kDescriptorSize> encode_descriptor(const Descriptor& d) {
  std::array<uint8_t, kDescriptorSize> out{};
  Writer w(out.data());
  w.le(d.data_type);
  w.le(static_cast<uint8_t>(d.used ? 1 : 0));
  w.le(d.id);
  w.le(d.group_id);
  w.le(d.linked_id);
  w.le(d.offset);
  w.le(d.size);
  w.le(d.size_with_padding);
  w.le(d.created_at);
  w.le(d.modified_at);
  w.le(d.uid);
  w.le(d.gid);
  w.bytes(d.name.data(), d.name.size());
  w.bytes(d.extra.data(), d.extra.size());
  return out;
}

Descriptor decode_descriptor(const uint8_t* bytes) {
  Descriptor d;
  Reader r(bytes);
  d.data_type = r.le<int32_t>();
  d.used = r.le<uint8_t>() != 0;  // Go decodes any non-zero byte as true
  d.id = r.le<uint32_t>();
  d.group_id = r.le<uint32_t>();
  d.linked_id = r.le<uint32_t>();
  d.offset = r.le<int64_t>();
  d.size = r.le<int64_t>();
  d.size_with_padding = r.le<int64_t>();
  d.created_at = r.le<int64_t>();
  d.modified_at = r.le<int64_t>();
  d.uid = r.le<int64_t>();
  d.gid = r.le<int64_t>();
  r.bytes(d.name.data(), d.name.size());
  r.bytes(d.extra.data(), d.extra.size());
  return d;
}

void set_partition_extra(Descriptor& d, const PartitionExtra& p) {
  d.extra.fill(0);
  Writer w(d.extra.data());
  w.le(static_cast<int32_t>(p.fs));
  w.le(static_cast<int32_t>(p.part));
  w.bytes(p.arch.data(), p.arch.size());
}

PartitionExtra partition_extra(const Descriptor& d) {
  PartitionExtra p;
  Reader r(d.extra.data());
  p.fs = static_cast<FsType>(r.le<int32_t>());
  p.part = static_cast<PartType>(r.le<int32_t>());
  r.bytes(p.arch.data(), p.arch.size());
  return p;
}

void set_signature_extra(Descriptor& d, const SignatureExtra& s) {
  d.extra.fill(0);
  Writer w(d.extra.data());
  w.le(static_cast<int32_t>(s.hash));
  w.bytes(s.entity.data(), s.entity.size());
}

SignatureExtra signature_extra(const Descriptor& d) {
  SignatureExtra s;
  Reader r(d.extra.data());
  s.hash = static_cast<HashType>(r.le<int32_t>());
  r.bytes(s.entity.data(), s.entity.size());
  return s;
}

void set_crypto_message_extra(Descriptor& d, const CryptoMessageExtra& c) {
  d.extra.fill(0);
  Writer w(d.extra.data());
  w.le(static_cast<int32_t>(c.format));
  w.le(static_cast<int32_t>(c.message));
}

CryptoMessageExtra crypto_message_extra(const Descriptor& d) {
  CryptoMessageExtra c;
  Reader r(d.extra.data());
  c.format = static_cast<FormatType>(r.le<int32_t>());
  c.message = static_cast<MessageType>(r.le<int32_t>());
  return c;
}

void set_sbom_extra(Descriptor& d, SbomFormat f) {
  d.extra.fill(0);
  Writer(d.extra.data()).le(static_cast<int32_t>(f));
}

SbomFormat sbom_extra(const Descriptor& d) {
  return static_cast<SbomFormat>(Reader(d.extra.data()).le<int32_t>());
}

void set_digest_extra(Descriptor& d, std::string_view digest) {
  d.extra.fill(0);
  std::memcpy(d.extra.data(), digest.data(), std::min(digest.size(), kExtraSize));
}

std::string digest_extra(const Descriptor& d) {
  size_t n = kExtraSize;
  while (n > 0 && d.extra[n - 1] == 0) --n;
  return std::string(reinterpret_cast<const char*>(d.extra.data()), n);
}

ArchCode arch_code(std::string_view goarch) {
  for (const auto& a : kArches) {
    if (goarch == a.goarch) return ArchCode{a.code[0], a.code[1], '\0'};
  }
  return ArchCode{'0', '0', '\0'};
}

std::string arch_name(const ArchCode& code) {
  if (code[2] != '\0') return "unknown";
  for (const auto& a : kArches) {
    if (code[0] == a.code[0] && code[1] == a.code[1]) return a.goarch;
  }
  return "unknown";
}

std::string data_type_name(int32_t t) {
  switch (static_cast<DataType>(t)) {
    case DataType::kDeffile:
      return "Def.FILE";
    case DataType::kEnvVar:
      return "Env.Vars";
    case DataType::kLabels:
      return "JSON.Labels";
    case DataType::kPartition:
      return "FS";
    case DataType::kSignature:
      return "Signature";
    case DataType::kGenericJson:
      return "JSON.Generic";
    case DataType::kGeneric:
      return "Generic/Raw";
    case DataType::kCryptoMessage:
      return "Cryptographic Message";
    case DataType::kSbom:
      return "SBOM";
    default:
      return "Unknown";
  }
}

std::string fs_type_name(int32_t t) {
  switch (static_cast<FsType>(t)) {
    case FsType::kSquash:
      return "Squashfs";
    case FsType::kExt3:
      return "Ext3";
    case FsType::kImmuObj:
      return "Archive";
    case FsType::kRaw:
      return "Raw";
    case FsType::kEncryptedSquashfs:
      return "Encrypted squashfs";
    default:
      return "Unknown";
  }
}

std::string part_type_name(int32_t t) {
  switch (static_cast<PartType>(t)) {
    case PartType::kSystem:
      return "System";
    case PartType::kPrimSys:
      return "*System";
    case PartType::kData:
      return "Data";
    case PartType::kOverlay:
      return "Overlay";
    default:
      return "Unknown";
  }
}

std::string hash_type_name(int32_t t) {
  switch (static_cast<HashType>(t)) {
    case HashType::kSha256:
      return "SHA-256";
    case HashType::kSha384:
      return "SHA-384";
    case HashType::kSha512:
      return "SHA-512";
    case HashType::kBlake2s:
      return "BLAKE2s-256";
    case HashType::kBlake2b:
      return "BLAKE2b-256";
    default:
      return "";
  }
}

std::string format_type_name(int32_t t) {
  switch (static_cast<FormatType>(t)) {
    case FormatType::kOpenPgp:
      return "OpenPGP";
    case FormatType::kPem:
      return "PEM";
    default:
      return "Unknown";
  }
}

std::string message_type_name(int32_t t) {
  switch (static_cast<MessageType>(t)) {
    case MessageType::kClearSignature:
      return "Clear Signature";
    case MessageType::kRsaOaep:
      return "RSA-OAEP";
    default:
      return "Unknown";
  }
}

std::string sbom_format_name(int32_t t) {
  switch (static_cast<SbomFormat>(t)) {
    case SbomFormat::kCycloneDxJson:
      return "cyclonedx-json";
    case SbomFormat::kCycloneDxXml:
      return "cyclonedx-xml";
    case SbomFormat::kGitHubJson:
      return "github-json";
    case SbomFormat::kSpdxJson:
      return "spdx-json";
    case SbomFormat::kSpdxRdf:
      return "spdx-rdf";
    case SbomFormat::kSpdxTagValue:
      return "spdx-tag-value";
    case SbomFormat::kSpdxYaml:
      return "spdx-yaml";
    case SbomFormat::kSyftJson:
      return "syft-json";
    default:
      return "unknown";
  }
}

}  // namespace rbox::image::sif
