// Writing SIF files the way Apptainer does (sylabs/sif CreateContainer): header at 0, a table of
// 48 descriptors at 4096, objects appended from byte 32176, partitions aligned to 4096, everything
// in group 1. Output goes to a temporary file renamed over the target on commit(), so an
// interrupted write leaves any previous file untouched. Does not read or validate existing SIFs.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "image/sif_format.hpp"
#include "util/fs.hpp"

namespace rbox::image::sif {

struct CreateOptions {
  std::string launch_script{kDefaultLaunchScript};  // < 32 bytes
  // Deterministic (SOURCE_DATE_EPOCH / reproducible builds): nil UUID and Go's zero time in the
  // header and every descriptor, as OptCreateDeterministic writes them.
  bool deterministic = false;
  std::optional<std::array<uint8_t, 16>> id;  // default: random version-4 UUID
  std::optional<int64_t> time;                // default: now (ignored when deterministic)
  std::optional<int64_t> modified_time;       // header ModifiedAt; default: the creation time
  std::optional<int64_t> data_offset;         // default: right after the table (old writers: 32768)
  int64_t descriptor_capacity = kDefaultDescriptorCapacity;
  int64_t descriptors_offset = kDefaultDescriptorsOffset;
  mode_t mode = 0755;  // SIFs are executable: `./image.sif` runs the launch script
};

// One object to append. Extra-area metadata is set with the set_*_extra helpers of sif_format.hpp
// through `extra` (applied to the descriptor as is).
struct ObjectSpec {
  DataType type = DataType::kGeneric;
  std::string name;
  uint32_t group = 1;  // 0 = no group
  uint32_t link = 0;   // object id, or a group id when link_is_group
  bool link_is_group = false;
  int64_t alignment = -1;       // -1: 4096 for partitions, none for everything else
  std::optional<int64_t> time;  // created/modified time; default: the SIF's creation time
  int64_t uid = 0, gid = 0;     // deprecated owner fields (old writers filled them); keep 0
  std::array<uint8_t, kExtraSize> extra{};
};

ObjectSpec partition_spec(FsType fs, PartType part, const ArchCode& arch);

class Writer {
 public:
  explicit Writer(std::string path, CreateOptions opts = {});
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  ~Writer();

  // Appends an object; returns its id.
  uint32_t add(const ObjectSpec& spec, std::string_view data);
  // Appends an object whose bytes fill(fd, offset) writes at offset (e.g. a SquashFS packed in
  // place); fill returns the number of bytes it wrote. Returns the object id.
  uint32_t add_streamed(const ObjectSpec& spec, const std::function<uint64_t(int fd, uint64_t offset)>& fill);
  // The offset the next object with this alignment would start at.
  uint64_t next_offset(int64_t alignment) const;
  // Writes header and descriptors, fsyncs, renames over the target.
  void commit();
  // The header and descriptors as they stand (for tests).
  const Header& header() const { return header_; }
  const std::vector<Descriptor>& descriptors() const { return descriptors_; }

 private:
  Descriptor& begin_object(const ObjectSpec& spec, uint64_t offset);
  void finish_object(Descriptor& d, uint64_t offset, uint64_t size);

  std::string path_;
  CreateOptions opts_;
  std::unique_ptr<fs::AtomicFile> out_;
  Header header_;
  std::vector<Descriptor> descriptors_;
  int64_t time_ = 0;
};

// Builds the header a fresh SIF starts with (no objects yet). Exposed for unit tests.
Header new_header(const CreateOptions& opts, int64_t time, const std::array<uint8_t, 16>& id);
std::array<uint8_t, 16> random_uuid();

}  // namespace rbox::image::sif
