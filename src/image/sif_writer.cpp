// SIF writer (see sif_writer.hpp). Object placement follows sylabs/sif create.go: each object starts
// at DataOffset + DataSize rounded up to its alignment; SizeWithPadding counts the gap; DataSize
// ends at the last object's end. Bytes between the header and the table stay zero (a hole).
#include "image/sif_writer.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "util/error.hpp"

namespace rbox::image::sif {
namespace {

void pwrite_all(int fd, const void* data, size_t n, uint64_t off, const std::string& path) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw sys_error("write", path);
    p += w;
    off += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
}

uint64_t align_up(uint64_t off, int64_t alignment) {
  if (alignment <= 0) return off;
  uint64_t a = static_cast<uint64_t>(alignment);
  return (off + a - 1) / a * a;
}

}  // namespace

std::array<uint8_t, 16> random_uuid() {
  std::array<uint8_t, 16> id{};
  size_t got = 0;
  while (got < id.size()) {
    ssize_t n = ::getrandom(id.data() + got, id.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw sys_error("getrandom");
    got += static_cast<size_t>(n);
  }
  id[6] = static_cast<uint8_t>((id[6] & 0x0F) | 0x40);  // version 4
  id[8] = static_cast<uint8_t>((id[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return id;
}

Header new_header(const CreateOptions& opts, int64_t time, const std::array<uint8_t, 16>& id) {
  if (opts.launch_script.size() >= kLaunchScriptSize)
    throw Error("SIF launch script is " + std::to_string(opts.launch_script.size()) +
                " bytes; it must be shorter than 32");
  Header h;
  std::memcpy(h.launch_script.data(), opts.launch_script.data(), opts.launch_script.size());
  std::memcpy(h.magic.data(), kMagic.data(), kMagic.size());
  std::memcpy(h.version.data(), kVersion.data(), kVersion.size());
  h.arch = ArchCode{'0', '0', '\0'};
  h.id = id;
  h.created_at = time;
  h.modified_at = time;
  h.descriptors_free = opts.descriptor_capacity;
  h.descriptors_total = opts.descriptor_capacity;
  h.descriptors_offset = opts.descriptors_offset;
  h.descriptors_size = opts.descriptor_capacity * static_cast<int64_t>(kDescriptorSize);
  h.data_offset = opts.data_offset ? *opts.data_offset : h.descriptors_offset + h.descriptors_size;
  h.data_size = 0;
  return h;
}

ObjectSpec partition_spec(FsType fs, PartType part, const ArchCode& arch) {
  ObjectSpec spec;
  spec.type = DataType::kPartition;
  Descriptor tmp;
  set_partition_extra(tmp, PartitionExtra{fs, part, arch});
  spec.extra = tmp.extra;
  return spec;
}

Writer::Writer(std::string path, CreateOptions opts) : path_(std::move(path)), opts_(std::move(opts)) {
  if (opts_.descriptor_capacity <= 0 || opts_.descriptors_offset < static_cast<int64_t>(kHeaderSize))
    throw Error("SIF writer: bad descriptor table placement");
  std::array<uint8_t, 16> id{};
  if (opts_.deterministic) {
    time_ = kGoZeroTime;
  } else {
    time_ = opts_.time ? *opts_.time : static_cast<int64_t>(::time(nullptr));
    id = opts_.id ? *opts_.id : random_uuid();
  }
  header_ = new_header(opts_, time_, id);
  if (opts_.modified_time && !opts_.deterministic) header_.modified_at = *opts_.modified_time;
  if (header_.data_offset < header_.descriptors_offset + header_.descriptors_size)
    throw Error("SIF writer: data offset inside the descriptor table");
  descriptors_.resize(static_cast<size_t>(opts_.descriptor_capacity));
  out_ = std::make_unique<fs::AtomicFile>(path_, opts_.mode);
}

Writer::~Writer() = default;

uint64_t Writer::next_offset(int64_t alignment) const {
  return align_up(static_cast<uint64_t>(header_.data_offset + header_.data_size), alignment);
}

Descriptor& Writer::begin_object(const ObjectSpec& spec, uint64_t offset) {
  (void)offset;
  int64_t used = header_.descriptors_total - header_.descriptors_free;
  if (used >= header_.descriptors_total)
    throw Error(path_ + ": no free SIF descriptor left (capacity " +
                std::to_string(header_.descriptors_total) + ")");
  if (spec.type == DataType::kPartition) {
    Descriptor tmp;
    tmp.extra = spec.extra;
    PartitionExtra p = partition_extra(tmp);
    if (p.part == PartType::kPrimSys) {
      for (const auto& d : descriptors_) {
        if (d.used && d.type() == DataType::kPartition && partition_extra(d).part == PartType::kPrimSys)
          throw Error(path_ + ": the SIF already has a primary system partition");
      }
      header_.arch = p.arch;  // the header's arch follows the primary partition
    }
  }
  if (spec.name.size() > kNameSize)
    throw Error("SIF object name \"" + spec.name + "\" is longer than 128 bytes");
  Descriptor& d = descriptors_[static_cast<size_t>(used)];
  d = Descriptor{};
  d.data_type = static_cast<int32_t>(spec.type);
  d.id = static_cast<uint32_t>(used) + 1;
  d.group_id = spec.group | kGroupMask;
  d.linked_id = spec.link == 0 ? 0 : (spec.link | (spec.link_is_group ? kGroupMask : 0));
  d.created_at = spec.time && !opts_.deterministic ? *spec.time : time_;
  d.modified_at = d.created_at;
  d.uid = spec.uid;
  d.gid = spec.gid;
  std::memcpy(d.name.data(), spec.name.data(), spec.name.size());
  d.extra = spec.extra;
  return d;
}

void Writer::finish_object(Descriptor& d, uint64_t offset, uint64_t size) {
  const uint64_t unaligned = static_cast<uint64_t>(header_.data_offset + header_.data_size);
  d.used = true;
  d.offset = static_cast<int64_t>(offset);
  d.size = static_cast<int64_t>(size);
  d.size_with_padding = static_cast<int64_t>(offset - unaligned + size);
  header_.descriptors_free--;
  header_.data_size += d.size_with_padding;
}

static int64_t effective_alignment(const ObjectSpec& spec) {
  if (spec.alignment >= 0) return spec.alignment;
  return spec.type == DataType::kPartition ? kPartitionAlignment : 0;
}

uint32_t Writer::add(const ObjectSpec& spec, std::string_view data) {
  const uint64_t offset = next_offset(effective_alignment(spec));
  Descriptor& d = begin_object(spec, offset);
  pwrite_all(out_->fd(), data.data(), data.size(), offset, out_->temp_path());
  finish_object(d, offset, data.size());
  return d.id;
}

uint32_t Writer::add_streamed(const ObjectSpec& spec,
                              const std::function<uint64_t(int fd, uint64_t offset)>& fill) {
  const uint64_t offset = next_offset(effective_alignment(spec));
  Descriptor& d = begin_object(spec, offset);
  uint64_t size = fill(out_->fd(), offset);
  finish_object(d, offset, size);
  return d.id;
}

void Writer::commit() {
  const int fd = out_->fd();
  auto hdr = encode_header(header_);
  pwrite_all(fd, hdr.data(), hdr.size(), 0, out_->temp_path());
  std::vector<uint8_t> table(descriptors_.size() * kDescriptorSize);
  for (size_t i = 0; i < descriptors_.size(); ++i) {
    if (!descriptors_[i].used) continue;  // unused slots are all zero
    auto b = encode_descriptor(descriptors_[i]);
    std::memcpy(table.data() + i * kDescriptorSize, b.data(), b.size());
  }
  pwrite_all(fd, table.data(), table.size(), static_cast<uint64_t>(header_.descriptors_offset),
             out_->temp_path());
  // The file ends where the last object ends (sylabs/sif does not pad the tail).
  const uint64_t end = static_cast<uint64_t>(header_.data_offset + header_.data_size);
  if (::ftruncate(fd, static_cast<off_t>(end)) != 0) throw sys_error("truncate", out_->temp_path());
  out_->commit();
}

}  // namespace rbox::image::sif
