// The FUSE protocol (linux/fuse.h, kernel ABI 7.x) for a read-only SquashFS: turns one request
// read from /dev/fuse into one reply, in memory. No threads and no device I/O here, so the
// whole protocol is unit-testable; fuse_server.cpp moves the bytes.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "image/fuse_sqfs.hpp"

namespace rbox::image::fuse {

// Who owns the files, as the mount reports them. In a user namespace that maps only the
// invoking user (to 0), image owners other than that id would show as 65534 and 0700
// directories owned by them become unreadable even to namespace root (FUSE.md §6). So the
// rootless default reports every file as owned by one id (the namespace id of the caller), the
// way Apptainer runs squashfuse with -o uid=,gid=. kImage keeps the recorded owners: for real
// root, or namespaces whose maps cover the image's ids.
struct OwnerPolicy {
  enum class Kind { kFixed, kImage };
  Kind kind = Kind::kFixed;
  uint32_t uid = 0;
  uint32_t gid = 0;

  static OwnerPolicy fixed(uint32_t uid, uint32_t gid) { return {Kind::kFixed, uid, gid}; }
  static OwnerPolicy image() { return {Kind::kImage, 0, 0}; }
};

struct OpsOptions {
  OwnerPolicy owners;
  // Entry and attribute timeouts: the image never changes while mounted, so the kernel may
  // cache names, attributes and negative lookups for as long as it likes (FUSE.md §5.4).
  uint64_t timeout_s = 1000000;
  uint32_t max_pages = 256;  // largest READ: 1 MiB
  // READDIRPLUS_AUTO lets the kernel send plain READDIR for continuation chunks and LOOKUP the
  // entries afterwards; without it every chunk carries attributes (env RBOX_FUSE_READDIRPLUS).
  bool readdirplus_auto = true;
};

inline constexpr unsigned kOpcodeSlots = 64;

class FuseOps {
 public:
  FuseOps(SquashfsReader& image, OpsOptions options);

  // Handles one request (len bytes as read from /dev/fuse) and writes the reply, header
  // included, into out. Returns the reply length, or 0 for requests that take no reply
  // (FORGET, BATCH_FORGET, INTERRUPT). out_cap must hold a maximal READ reply:
  // reply_capacity() bytes.
  size_t handle(SquashfsReader::Context& ctx, const uint8_t* req, size_t len, uint8_t* out, size_t out_cap);

  size_t reply_capacity() const;
  bool initialized() const { return initialized_.load(std::memory_order_acquire); }
  uint32_t kernel_minor() const { return minor_.load(std::memory_order_relaxed); }
  uint64_t count(uint32_t opcode) const {
    return opcode < kOpcodeSlots ? counts_[opcode].load(std::memory_order_relaxed) : 0;
  }
  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }

 private:
  long op_init(const uint8_t* arg, size_t n, uint8_t* out);
  long op_lookup(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n, uint8_t* out);
  long op_getattr(SquashfsReader::Context& ctx, uint64_t node, uint8_t* out);
  long op_readlink(SquashfsReader::Context& ctx, uint64_t node, uint8_t* out, size_t cap);
  long op_read(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n, uint8_t* out,
               size_t cap);
  long op_readdir(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n, uint8_t* out,
                  size_t cap, bool plus);
  long op_statfs(uint8_t* out);
  long op_getxattr(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n, uint8_t* out,
                   size_t cap);
  long op_listxattr(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n, uint8_t* out,
                    size_t cap);

  std::shared_ptr<const Inode> node_inode(SquashfsReader::Context& ctx, uint64_t node);
  void fill_attr(const Inode& in, void* fuse_attr) const;
  void fill_entry(const Inode& in, void* fuse_entry_out) const;

  SquashfsReader& image_;
  OpsOptions options_;
  std::atomic<bool> initialized_{false};
  std::atomic<uint32_t> minor_{0};
  std::atomic<uint64_t> counts_[kOpcodeSlots] = {};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace rbox::image::fuse
