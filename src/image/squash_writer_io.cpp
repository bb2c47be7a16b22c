// sqfs_file_t over (fd, base offset): pread/pwrite shifted by base. libsquashfs treats a non-zero
// return from read_at/write_at as an error code, so short reads past the end return
// SQFS_ERROR_OUT_OF_BOUNDS instead of reading the next SIF object. Writes are gathered into a
// 4 MiB buffer: the block writer appends one compressed block at a time, and one pwrite(2) per
// block was a few thousand syscalls per image on the thread that also feeds the compressors.
#include "image/squash_writer_io.hpp"

#include <sqfs/error.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace rbox::image {
namespace {

constexpr size_t kWriteBuffer = 4 << 20;

struct OffsetFile {
  sqfs_file_t base;  // must stay first: libsquashfs passes &base around
  int fd;
  uint64_t offset;
  uint64_t size;
  bool writable;
  std::vector<char> pending;  // bytes not yet written, for [pending_off, pending_off + size)
  uint64_t pending_off = 0;
};

int pwrite_all(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return SQFS_ERROR_IO;
    p += w;
    off += static_cast<uint64_t>(w);
    n -= static_cast<size_t>(w);
  }
  return 0;
}

int flush(OffsetFile* s) {
  if (s->pending.empty()) return 0;
  int rc = pwrite_all(s->fd, s->pending.data(), s->pending.size(), s->offset + s->pending_off);
  s->pending.clear();
  return rc;
}

OffsetFile* self(sqfs_file_t* f) {
  return reinterpret_cast<OffsetFile*>(f);
}
const OffsetFile* self(const sqfs_file_t* f) {
  return reinterpret_cast<const OffsetFile*>(f);
}

int file_read_at(sqfs_file_t* f, sqfs_u64 off, void* buf, size_t n) {
  OffsetFile* s = reinterpret_cast<OffsetFile*>(f);
  if (off > s->size || n > s->size - off) return SQFS_ERROR_OUT_OF_BOUNDS;
  if (int rc = flush(s)) return rc;  // reads (deduplication checks) see everything written
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t r = ::pread(s->fd, p, n, static_cast<off_t>(s->offset + off));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return SQFS_ERROR_IO;
    if (r == 0) return SQFS_ERROR_OUT_OF_BOUNDS;
    p += r;
    off += static_cast<sqfs_u64>(r);
    n -= static_cast<size_t>(r);
  }
  return 0;
}

int file_write_at(sqfs_file_t* f, sqfs_u64 off, const void* buf, size_t n) {
  OffsetFile* s = reinterpret_cast<OffsetFile*>(f);
  if (!s->writable) return SQFS_ERROR_UNSUPPORTED;
  const auto* p = static_cast<const char*>(buf);
  if (off + n > s->size) s->size = off + n;
  // Append to the buffer when this write continues it; anything else goes out in order.
  if (!s->pending.empty() && off == s->pending_off + s->pending.size() &&
      s->pending.size() + n <= kWriteBuffer) {
    s->pending.insert(s->pending.end(), p, p + n);
    return 0;
  }
  if (int rc = flush(s)) return rc;
  if (n >= kWriteBuffer) return pwrite_all(s->fd, p, n, s->offset + off);
  if (s->pending.capacity() < kWriteBuffer) s->pending.reserve(kWriteBuffer);
  s->pending_off = off;
  s->pending.assign(p, p + n);
  return 0;
}

sqfs_u64 file_get_size(const sqfs_file_t* f) {
  return self(f)->size;
}

int file_truncate(sqfs_file_t* f, sqfs_u64 size) {
  OffsetFile* s = self(f);
  if (!s->writable) return SQFS_ERROR_UNSUPPORTED;
  if (int rc = flush(s)) return rc;
  if (::ftruncate(s->fd, static_cast<off_t>(s->offset + size)) != 0) return SQFS_ERROR_IO;
  s->size = size;
  return 0;
}

void file_destroy(sqfs_object_t* obj) {
  // Callers flush (and check) before destroying; this only releases the object.
  delete reinterpret_cast<OffsetFile*>(obj);
}

}  // namespace

SqfsPtr<sqfs_file_t> make_sqfs_file(int fd, uint64_t base, uint64_t size, bool writable) {
  auto* f = new OffsetFile{};
  f->base.base.destroy = file_destroy;
  f->base.base.copy = nullptr;  // libsquashfs never needs to copy a file object
  f->base.read_at = file_read_at;
  f->base.write_at = file_write_at;
  f->base.get_size = file_get_size;
  f->base.truncate = file_truncate;
  f->fd = fd;
  f->offset = base;
  f->size = size;
  f->writable = writable;
  return SqfsPtr<sqfs_file_t>(&f->base);
}

int flush_sqfs_file(sqfs_file_t* file) {
  return flush(reinterpret_cast<OffsetFile*>(file));
}

std::string sqfs_error_text(int code) {
  switch (code) {
    case SQFS_ERROR_ALLOC:
      return "out of memory";
    case SQFS_ERROR_IO:
      return "I/O error";
    case SQFS_ERROR_COMPRESSOR:
      return "compressor error";
    case SQFS_ERROR_INTERNAL:
      return "internal libsquashfs error";
    case SQFS_ERROR_CORRUPTED:
      return "data corrupted";
    case SQFS_ERROR_UNSUPPORTED:
      return "unsupported feature";
    case SQFS_ERROR_OVERFLOW:
      return "numeric overflow";
    case SQFS_ERROR_OUT_OF_BOUNDS:
      return "location out of bounds (truncated image?)";
    case -9:  // SFQS_ERROR_SUPER_MAGIC (sic in libsquashfs 1.2)
      return "not a SquashFS image (bad superblock magic)";
    case -10:  // SFQS_ERROR_SUPER_VERSION
      return "unsupported SquashFS version";
    case SQFS_ERROR_SUPER_BLOCK_SIZE:
      return "invalid SquashFS block size";
    case SQFS_ERROR_NOT_DIR:
      return "not a directory";
    case SQFS_ERROR_NO_ENTRY:
      return "no such file or directory";
    case SQFS_ERROR_LINK_LOOP:
      return "hard link loop";
    case SQFS_ERROR_NOT_FILE:
      return "not a regular file";
    case SQFS_ERROR_ARG_INVALID:
      return "invalid argument";
    case SQFS_ERROR_SEQUENCE:
      return "call sequence error";
    default:
      return "libsquashfs error " + std::to_string(code);
  }
}

}  // namespace rbox::image
