// Read-only access to a SquashFS filesystem stored inside a file at an offset (a SIF partition
// or a bare image), shared by all FUSE workers: parsed inodes and directories and decompressed
// partial/fragment blocks live in bounded shared caches; each thread brings its own Context
// (decompressor, metadata readers). Never writes; every on-disk offset is bounds-checked.
#pragma once

#include <sqfs/predef.h>
#include <sqfs/super.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "image/fuse_cache.hpp"
#include "image/fuse_decompress.hpp"
#include "util/fd.hpp"

namespace rbox::image::fuse {

inline constexpr uint32_t kNoFragment = 0xFFFFFFFF;
inline constexpr uint32_t kNoXattr = 0xFFFFFFFF;

// One inode, decoded and with its uid/gid resolved through the id table.
struct Inode {
  uint64_t ref = 0;     // SquashFS inode reference: block (relative to the inode table) << 16 | offset
  uint32_t number = 0;  // st_ino
  uint32_t mode = 0;    // S_IFMT | permission bits
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t mtime = 0;
  uint32_t nlink = 1;
  uint32_t rdev = 0;  // Linux "new" dev_t encoding, as FUSE expects it
  uint64_t size = 0;  // files: bytes; symlinks: target length; directories: listing size
  uint64_t sparse = 0;
  // Regular files: one entry per full or partial data block; the tail may live in a fragment.
  std::vector<uint32_t> block_words;  // on-disk size words (bit 24: stored uncompressed)
  std::vector<uint64_t> block_pos;    // image-relative position of each block
  uint32_t frag_index = kNoFragment;
  uint32_t frag_offset = 0;
  // Directories: where the listing starts in the directory table.
  uint32_t dir_block = 0;
  uint32_t dir_offset = 0;
  uint32_t parent = 0;  // inode number of the parent directory (".." in READDIR)
  std::string target;   // symlinks
  std::vector<std::pair<std::string, std::string>> xattrs;  // full names ("user.x"), values

  bool is_dir() const;
  bool is_reg() const;
  bool is_link() const;
  uint64_t blocks_512() const;  // st_blocks as the kernel's squashfs reports it
};

// One directory listing, sorted by name (bytewise) for binary-search LOOKUP.
struct Directory {
  struct Entry {
    uint64_t ref;
    uint32_t number;
    uint32_t name_off;
    uint16_t name_len;
    uint16_t type;  // SquashFS basic inode type (1 dir, 2 file, 3 symlink, 4 blk, 5 chr, 6 fifo, 7 sock)
  };
  std::vector<Entry> entries;
  std::string names;

  std::string_view name(const Entry& e) const { return {names.data() + e.name_off, e.name_len}; }
  const Entry* find(std::string_view name) const;
};

// d_type (DT_*) for a SquashFS basic inode type.
unsigned dirent_type(uint16_t sqfs_type);

// Upper bounds per mount (the probe's unbounded caches reached 20 MB after reading all of Debian,
// FUSE.md §5.3). The kernel caches names and attributes itself, so misses after eviction are rare
// and cost one metadata block; the block cache only has to bridge nearby reads of one fragment
// or partial block.
struct CacheBudget {
  size_t inodes = 16u << 20;
  size_t directories = 8u << 20;
  size_t blocks = 16u << 20;  // decompressed fragments and partially read data blocks
};

struct ReadStats {
  std::atomic<uint64_t> direct_blocks{0};  // decompressed straight into a reply
  std::atomic<uint64_t> cached_blocks{0};  // decompressed into the shared block cache
  std::atomic<uint64_t> bytes_read{0};     // image bytes read with pread
};

class SquashfsReader {
 public:
  // Per-thread state: a decompressor, metadata readers and an input buffer.
  class Context;
  struct ContextDeleter {
    void operator()(Context* c) const;
  };
  using ContextPtr = std::unique_ptr<Context, ContextDeleter>;

  // Opens the filesystem in fd at [offset, offset + size) (size 0: to the end of the file).
  // name is used in error messages. Throws rbox::Error naming the file for anything invalid.
  SquashfsReader(UniqueFd fd, uint64_t offset, uint64_t size, std::string name, CacheBudget budget = {});
  ~SquashfsReader();
  SquashfsReader(const SquashfsReader&) = delete;
  SquashfsReader& operator=(const SquashfsReader&) = delete;

  ContextPtr make_context() const;

  const sqfs_super_t& super() const { return super_; }
  uint64_t root_ref() const { return super_.root_inode_ref; }
  uint32_t block_size() const { return super_.block_size; }
  bool has_xattrs() const { return has_xattrs_; }
  const std::string& name() const { return name_; }

  // The inode for ref (cached). Throws rbox::Error when the image is corrupt.
  std::shared_ptr<const Inode> inode(Context& ctx, uint64_t ref);
  // The listing of a directory inode (cached).
  std::shared_ptr<const Directory> directory(Context& ctx, const Inode& dir);
  // Copies file bytes [off, off + len) into out; returns the count (short at end of file).
  size_t read(Context& ctx, const Inode& file, uint64_t off, size_t len, char* out);

  CacheStats inode_cache_stats() const { return inodes_.stats(); }
  CacheStats dir_cache_stats() const { return dirs_.stats(); }
  CacheStats block_cache_stats() const { return blocks_.stats(); }
  const ReadStats& read_stats() const { return read_stats_; }

 private:
  struct File;  // sqfs_file_t over the partition
  Inode decode_inode(Context& ctx, uint64_t ref);
  Directory decode_directory(Context& ctx, const Inode& dir);
  void read_xattrs(Context& ctx, uint32_t index, Inode& out);
  void pread_exact(void* buf, size_t n, uint64_t pos);
  size_t decompress_into(Context& ctx, uint32_t word, const uint8_t* src, char* dst, size_t capacity);
  std::shared_ptr<const std::vector<uint8_t>> fragment(Context& ctx, uint32_t index);
  [[noreturn]] void corrupt(const std::string& what) const;

  UniqueFd fd_;
  uint64_t offset_;
  uint64_t size_;
  std::string name_;
  std::unique_ptr<File> file_;
  sqfs_super_t super_{};
  bool has_xattrs_ = false;
  std::vector<uint32_t> ids_;
  std::vector<std::pair<uint64_t, uint32_t>> fragments_;  // position, size word
  ShardedCache<Inode> inodes_;
  ShardedCache<Directory> dirs_;
  ShardedCache<std::vector<uint8_t>> blocks_;
  ReadStats read_stats_;
};

}  // namespace rbox::image::fuse
