// libsquashfs file objects (sqfs_file_t) over a file descriptor at a byte offset: how a SquashFS is
// written straight into a SIF at its 4096-aligned partition offset, and how one is read in place
// from a SIF. Reads are bounded to the partition; nothing here owns or closes the descriptor.
#pragma once

#include <sqfs/io.h>
#include <sqfs/predef.h>

#include <cstdint>
#include <memory>
#include <string>

namespace rbox::image {

struct SqfsDeleter {
  void operator()(void* obj) const { sqfs_destroy(obj); }
};
template <typename T>
using SqfsPtr = std::unique_ptr<T, SqfsDeleter>;

// A sqfs_file_t whose byte 0 is byte `base` of fd. Read-only files are bounded by `size`; writable
// ones grow as data is written (get_size() = highest byte written). fd must outlive the object.
SqfsPtr<sqfs_file_t> make_sqfs_file(int fd, uint64_t base, uint64_t size, bool writable);

// Writes out what a writable file object still buffers; returns a libsquashfs error code (0 = ok).
// Call before the data is needed on disk: destroying the object does not write.
int flush_sqfs_file(sqfs_file_t* file);

// Message for a libsquashfs error code ("I/O error", "data corrupted" …).
std::string sqfs_error_text(int code);

}  // namespace rbox::image
