// SIF v2 on-disk format (sylabs/sif, as written by Apptainer): the 128-byte global header, the
// 585-byte descriptors, their type-specific "extra" areas and every enumeration, encoded and decoded
// byte-exactly (little-endian, packed). Pure data and byte shuffling: no I/O, no validation of
// offsets against a file (that is sif.cpp's job).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace rbox::image::sif {

inline constexpr size_t kHeaderSize = 128;
inline constexpr size_t kDescriptorSize = 585;
inline constexpr size_t kLaunchScriptSize = 32;
inline constexpr size_t kNameSize = 128;
inline constexpr size_t kExtraSize = 384;
inline constexpr size_t kEntitySize = 256;
inline constexpr uint32_t kGroupMask = 0xF0000000;  // set on every GroupID; on a LinkedID = "a group"
inline constexpr int64_t kDefaultDescriptorsOffset = 4096;
inline constexpr int64_t kDefaultDescriptorCapacity = 48;
inline constexpr int64_t kPartitionAlignment = 4096;
// Go's zero time.Time as Unix seconds: what deterministic SIFs (OptCreateDeterministic) store.
inline constexpr int64_t kGoZeroTime = -62135596800;
inline constexpr std::string_view kMagic{"SIF_MAGIC\0", 10};
inline constexpr std::string_view kVersion{"01\0", 3};
// Apptainer's launch line: `./image.sif args` runs `run-singularity image.sif args`.
inline constexpr std::string_view kDefaultLaunchScript = "#!/usr/bin/env run-singularity\n";

enum class DataType : int32_t {
  kDeffile = 0x4001,
  kEnvVar = 0x4002,
  kLabels = 0x4003,
  kPartition = 0x4004,
  kSignature = 0x4005,
  kGenericJson = 0x4006,
  kGeneric = 0x4007,
  kCryptoMessage = 0x4008,
  kSbom = 0x4009,
  kOciRootIndex = 0x400A,
  kOciBlob = 0x400B,
};

enum class FsType : int32_t {
  kSquash = 1,
  kExt3 = 2,
  kImmuObj = 3,
  kRaw = 4,
  kEncryptedSquashfs = 5,
  kGocryptfsSquashfs = 6,  // Apptainer's fork of the library only
};

enum class PartType : int32_t { kSystem = 1, kPrimSys = 2, kData = 3, kOverlay = 4 };
enum class HashType : int32_t { kSha256 = 1, kSha384 = 2, kSha512 = 3, kBlake2s = 4, kBlake2b = 5 };
enum class FormatType : int32_t { kOpenPgp = 1, kPem = 2 };
enum class MessageType : int32_t { kClearSignature = 0x100, kRsaOaep = 0x200 };
enum class SbomFormat : int32_t {
  kCycloneDxJson = 1,
  kCycloneDxXml = 2,
  kGitHubJson = 3,
  kSpdxJson = 4,
  kSpdxRdf = 5,
  kSpdxTagValue = 6,
  kSpdxYaml = 7,
  kSyftJson = 8,
};

// Three bytes: two ASCII digits and a NUL ("02\0" = amd64).
using ArchCode = std::array<char, 3>;

struct Header {
  std::array<char, kLaunchScriptSize> launch_script{};
  std::array<char, 10> magic{};
  std::array<char, 3> version{};
  ArchCode arch{'0', '0', '\0'};
  std::array<uint8_t, 16> id{};
  int64_t created_at = 0;
  int64_t modified_at = 0;
  int64_t descriptors_free = 0;
  int64_t descriptors_total = 0;
  int64_t descriptors_offset = 0;
  int64_t descriptors_size = 0;
  int64_t data_offset = 0;
  int64_t data_size = 0;
};

struct Descriptor {
  int32_t data_type = 0;
  bool used = false;
  uint32_t id = 0;
  uint32_t group_id = 0;   // raw, with kGroupMask
  uint32_t linked_id = 0;  // raw: object id, or group id | kGroupMask
  int64_t offset = 0;
  int64_t size = 0;
  int64_t size_with_padding = 0;
  int64_t created_at = 0;
  int64_t modified_at = 0;
  int64_t uid = 0;  // deprecated, written 0
  int64_t gid = 0;  // deprecated, written 0
  std::array<char, kNameSize> name{};
  std::array<uint8_t, kExtraSize> extra{};

  DataType type() const { return static_cast<DataType>(data_type); }
  uint32_t group() const { return group_id & ~kGroupMask; }  // 0 = no group
  uint32_t link() const { return linked_id & ~kGroupMask; }  // 0 = none
  bool link_is_group() const { return (linked_id & kGroupMask) == kGroupMask; }
  std::string name_str() const;  // NUL padding trimmed
};

// Extra areas (APPTAINER.md 1.4). Decoding never fails: the area is always 384 bytes.
struct PartitionExtra {
  FsType fs = FsType::kSquash;
  PartType part = PartType::kPrimSys;
  ArchCode arch{'0', '0', '\0'};
};
struct SignatureExtra {
  HashType hash = HashType::kSha256;
  std::array<uint8_t, kEntitySize> entity{};
};
struct CryptoMessageExtra {
  FormatType format = FormatType::kOpenPgp;
  MessageType message = MessageType::kClearSignature;
};

std::array<uint8_t, kHeaderSize> encode_header(const Header& h);
Header decode_header(const uint8_t* bytes);  // reads exactly kHeaderSize bytes
std::array<uint8_t, kDescriptorSize> encode_descriptor(const Descriptor& d);
Descriptor decode_descriptor(const uint8_t* bytes);  // reads exactly kDescriptorSize bytes

void set_partition_extra(Descriptor& d, const PartitionExtra& p);
PartitionExtra partition_extra(const Descriptor& d);
void set_signature_extra(Descriptor& d, const SignatureExtra& s);
SignatureExtra signature_extra(const Descriptor& d);
void set_crypto_message_extra(Descriptor& d, const CryptoMessageExtra& c);
CryptoMessageExtra crypto_message_extra(const Descriptor& d);
void set_sbom_extra(Descriptor& d, SbomFormat f);
SbomFormat sbom_extra(const Descriptor& d);
// OCIRootIndex / OCIBlob: "sha256:<hex>" text, NUL padded.
void set_digest_extra(Descriptor& d, std::string_view digest);
std::string digest_extra(const Descriptor& d);

// Architecture codes (APPTAINER.md 1.6) by Go GOARCH name: "amd64" → "02". Unknown → "00".
ArchCode arch_code(std::string_view goarch);
// "02" → "amd64"; anything not in the table → "unknown" (as siftool prints it).
std::string arch_name(const ArchCode& code);

// Names as the reference siftool prints them (Debian's sif 2.8.3 build: OCI types are "Unknown").
std::string data_type_name(int32_t t);
std::string fs_type_name(int32_t t);
std::string part_type_name(int32_t t);
std::string hash_type_name(int32_t t);  // "" when not a known hash
std::string format_type_name(int32_t t);
std::string message_type_name(int32_t t);
std::string sbom_format_name(int32_t t);

}  // namespace rbox::image::sif
