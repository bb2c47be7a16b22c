// Reading SIF files: every offset comes from the header and the descriptors (Singularity 3.8
// images start data at 32768, sylabs/sif at 32176), and the layout is validated before anything
// is used, so a truncated or corrupt file is rejected with one line naming it. Never reads outside
// the file; never trusts a size to allocate more than the file holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image/sif_format.hpp"

namespace rbox::image::sif {

// Random access to the bytes of a SIF: a file (pread) or a buffer (tests, fuzzing).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly n bytes at off; callers keep off + n <= size(). Throws rbox::Error on I/O errors.
  virtual void read_at(uint64_t off, void* buf, size_t n) const = 0;
};

class Sif {
 public:
  // Opens and validates path. Throws rbox::Error("PATH: what is wrong") for anything malformed.
  static Sif open(const std::string& path);
  // Validates bytes held in memory; name stands for the file in messages.
  static Sif from_memory(std::string bytes, const std::string& name);
  static Sif from_source(std::shared_ptr<const ByteSource> src, const std::string& name);

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return src_->size(); }
  const Header& header() const { return header_; }
  // Used descriptors in table order (siftool's order).
  const std::vector<Descriptor>& descriptors() const { return descriptors_; }
  const Descriptor* find(uint32_t id) const;
  // The primary system partition, or nullptr when the file has none.
  const Descriptor* primary_partition() const;

  // Header fields as siftool shows them.
  std::string launch_script() const;  // NULs trimmed
  std::string version() const;        // NULs trimmed
  std::string primary_arch() const;   // "amd64", or "unknown"
  std::string id_string() const;      // 8-4-4-4-12 lower-case hex

  // An object's bytes. Refuses objects larger than max_size (default 64 MiB) to keep memory bounded.
  std::string read(const Descriptor& d, uint64_t max_size = 64ull << 20) const;
  // Streams an object's bytes to fd (rbox sif dump).
  void copy_to_fd(const Descriptor& d, int fd) const;
  void read_at(uint64_t off, void* buf, size_t n) const { src_->read_at(off, buf, n); }

 private:
  void load();

  std::string path_;
  std::shared_ptr<const ByteSource> src_;
  Header header_;
  std::vector<Descriptor> descriptors_;
};

// True when the first bytes of a file look like a SIF (magic at byte 32). Cheap pre-check for
// image detection; Sif::open does the real validation.
bool has_sif_magic(const std::string& head);

// Formats a 16-byte UUID as 8-4-4-4-12 lower-case hex.
std::string uuid_string(const std::array<uint8_t, 16>& id);

}  // namespace rbox::image::sif
