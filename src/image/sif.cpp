// SIF reader: loads the header and descriptor table, then checks that every region it will later
// touch lies inside the file and that objects neither overlap each other nor the metadata.
// Nothing here allocates from an untrusted size without first checking it against the file size.
#include "image/sif.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "util/error.hpp"
#include "util/fd.hpp"

namespace rbox::image::sif {
namespace {

class FileSource : public ByteSource {
 public:
  FileSource(UniqueFd fd, uint64_t size, std::string path)
      : fd_(std::move(fd)), size_(size), path_(std::move(path)) {}
  uint64_t size() const override { return size_; }
  void read_at(uint64_t off, void* buf, size_t n) const override {
    auto* p = static_cast<char*>(buf);
    while (n > 0) {
      ssize_t r = ::pread(fd_.get(), p, n, static_cast<off_t>(off));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw sys_error("read", path_);
      if (r == 0) throw Error(path_ + ": file shrank while being read");
      p += r;
      off += static_cast<uint64_t>(r);
      n -= static_cast<size_t>(r);
    }
  }

 private:
  UniqueFd fd_;
  uint64_t size_;
  std::string path_;
};

class MemorySource : public ByteSource {
 public:
  explicit MemorySource(std::string bytes) : bytes_(std::move(bytes)) {}
  uint64_t size() const override { return bytes_.size(); }
  void read_at(uint64_t off, void* buf, size_t n) const override {
    if (off > bytes_.size() || n > bytes_.size() - off) throw Error("read past the end of the buffer");
    std::memcpy(buf, bytes_.data() + off, n);
  }

 private:
  std::string bytes_;
};

std::string trim_nul(const char* p, size_t n) {
  while (n > 0 && p[n - 1] == '\0') --n;
  return std::string(p, n);
}

// [begin, end) byte range with the object it belongs to, for the overlap check.
struct Region {
  uint64_t begin, end;
  std::string what;
};

}  // namespace

Sif Sif::open(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw sys_error("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw sys_error("stat", path);
  if (S_ISDIR(st.st_mode)) throw Error(path + ": is a directory, not a SIF file");
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) throw Error(path + ": not a regular file");
  uint64_t size = static_cast<uint64_t>(st.st_size);
  return from_source(std::make_shared<FileSource>(std::move(fd), size, path), path);
}

Sif Sif::from_memory(std::string bytes, const std::string& name) {
  return from_source(std::make_shared<MemorySource>(std::move(bytes)), name);
}

Sif Sif::from_source(std::shared_ptr<const ByteSource> src, const std::string& name) {
  Sif s;
  s.path_ = name;
  s.src_ = std::move(src);
  s.load();
  return s;
}

void Sif::load() {
  const uint64_t size = src_->size();
  auto fail = [&](const std::string& what) { return Error(path_ + ": " + what); };

  // The magic sits at byte 32; check it before the length so that a short non-SIF file is called
  // what it is rather than "truncated".
  uint8_t head[kHeaderSize] = {};
  size_t have = static_cast<size_t>(std::min<uint64_t>(size, kHeaderSize));
  src_->read_at(0, head, have);
  const size_t magic_end = kLaunchScriptSize + kMagic.size();
  if (have >= magic_end) {
    if (std::memcmp(head + kLaunchScriptSize, kMagic.data(), kMagic.size()) != 0)
      throw fail("not a SIF file (no SIF_MAGIC at byte 32)");
  } else if (have < kLaunchScriptSize ||
             std::memcmp(head + kLaunchScriptSize, kMagic.data(), have - kLaunchScriptSize) != 0) {
    throw fail("not a SIF file (" + std::to_string(size) + " bytes, no SIF_MAGIC)");
  }
  if (have < kHeaderSize)
    throw fail("truncated SIF file (" + std::to_string(size) + " bytes; the header alone is 128)");
  header_ = decode_header(head);
  if (std::memcmp(header_.version.data(), kVersion.data(), kVersion.size()) != 0)
    throw fail("unsupported SIF version \"" + version() + "\" (rbox reads version 01)");

  const Header& h = header_;
  if (h.descriptors_total < 0) throw fail("corrupt header: negative descriptor count");
  if (h.descriptors_offset < static_cast<int64_t>(kHeaderSize))
    throw fail("corrupt header: descriptor table at offset " + std::to_string(h.descriptors_offset) +
               " overlaps the 128-byte header");
  const uint64_t table_off = static_cast<uint64_t>(h.descriptors_offset);
  const uint64_t total = static_cast<uint64_t>(h.descriptors_total);
  // Bound the count by the file size before multiplying, so nothing overflows.
  if (total > size / kDescriptorSize || table_off > size || total * kDescriptorSize > size - table_off)
    throw fail("truncated or corrupt SIF: descriptor table (" + std::to_string(total) +
               " descriptors at offset " + std::to_string(table_off) + ") extends past the end of the " +
               std::to_string(size) + "-byte file");
  const uint64_t table_len = total * kDescriptorSize;
  if (h.descriptors_size < 0 || static_cast<uint64_t>(h.descriptors_size) < table_len)
    throw fail("corrupt header: descriptor table size " + std::to_string(h.descriptors_size) +
               " is smaller than " + std::to_string(total) + " descriptors of 585 bytes");

  std::vector<uint8_t> table(table_len);
  if (table_len > 0) src_->read_at(table_off, table.data(), table_len);

  std::vector<Region> regions;
  regions.push_back({0, kHeaderSize, "the header"});
  regions.push_back({table_off, table_off + table_len, "the descriptor table"});
  const Descriptor* prim = nullptr;
  descriptors_.clear();
  for (uint64_t i = 0; i < total; ++i) {
    Descriptor d = decode_descriptor(table.data() + i * kDescriptorSize);
    if (!d.used) continue;
    const std::string what = "object " + std::to_string(d.id);
    if (d.offset < 0 || d.size < 0)
      throw fail("corrupt descriptor: " + what + " has a negative offset or size");
    const uint64_t off = static_cast<uint64_t>(d.offset), len = static_cast<uint64_t>(d.size);
    if (off > size || len > size - off)
      throw fail("truncated or corrupt SIF: " + what + " (bytes " + std::to_string(off) + "-" +
                 std::to_string(off + std::min(len, UINT64_MAX - off)) + ") extends past the end of the " +
                 std::to_string(size) + "-byte file");
    if (len > 0) regions.push_back({off, off + len, what});
    descriptors_.push_back(d);
  }
  for (const auto& d : descriptors_) {
    if (d.type() != DataType::kPartition || partition_extra(d).part != PartType::kPrimSys) continue;
    if (prim)
      throw fail("corrupt SIF: two primary system partitions (objects " + std::to_string(prim->id) + " and " +
                 std::to_string(d.id) + ")");
    prim = &d;
  }
  std::sort(regions.begin(), regions.end(),
            [](const Region& a, const Region& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < regions.size(); ++i) {
    if (regions[i].begin < regions[i - 1].end && regions[i].begin != regions[i].end)
      throw fail("corrupt SIF: " + regions[i - 1].what + " and " + regions[i].what + " overlap");
  }
}

const Descriptor* Sif::find(uint32_t id) const {
  for (const auto& d : descriptors_) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

const Descriptor* Sif::primary_partition() const {
  for (const auto& d : descriptors_) {
    if (d.type() == DataType::kPartition && partition_extra(d).part == PartType::kPrimSys) return &d;
  }
  return nullptr;
}

std::string Sif::launch_script() const {
  return trim_nul(header_.launch_script.data(), header_.launch_script.size());
}

std::string Sif::version() const {
  return trim_nul(header_.version.data(), header_.version.size());
}

std::string Sif::primary_arch() const {
  return arch_name(header_.arch);
}

std::string Sif::id_string() const {
  return uuid_string(header_.id);
}

std::string Sif::read(const Descriptor& d, uint64_t max_size) const {
  const uint64_t len = static_cast<uint64_t>(d.size);
  if (len > max_size)
    throw Error(path_ + ": object " + std::to_string(d.id) + " is " + std::to_string(len) +
                " bytes, more than the " + std::to_string(max_size) + " rbox reads into memory");
  std::string out(len, '\0');
  if (len > 0) src_->read_at(static_cast<uint64_t>(d.offset), out.data(), len);
  return out;
}

void Sif::copy_to_fd(const Descriptor& d, int fd) const {
  std::vector<char> buf(1 << 20);
  uint64_t off = static_cast<uint64_t>(d.offset);
  uint64_t left = static_cast<uint64_t>(d.size);
  while (left > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    src_->read_at(off, buf.data(), n);
    const char* p = buf.data();
    size_t todo = n;
    while (todo > 0) {
      ssize_t w = ::write(fd, p, todo);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) throw sys_error("write", "standard output");
      p += w;
      todo -= static_cast<size_t>(w);
    }
    off += n;
    left -= n;
  }
}

bool has_sif_magic(const std::string& head) {
  return head.size() >= kLaunchScriptSize + kMagic.size() &&
         head.compare(kLaunchScriptSize, kMagic.size(), kMagic) == 0;
}

std::string uuid_string(const std::array<uint8_t, 16>& id) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[id[i] >> 4];
    s += hex[id[i] & 15];
  }
  return s;
}

}  // namespace rbox::image::sif
