// SquashFS reading for the FUSE server (see fuse_sqfs.hpp). libsquashfs parses the superblock,
// tables, inodes, directories and xattrs through per-thread metadata readers; file data is read
// here: whole blocks go straight into the caller's buffer, partial and fragment blocks through the
// shared block cache (libsquashfs's data reader keeps one block per reader, FUSE.md §5.7).
#include "image/fuse_sqfs.hpp"

#include <sqfs/block.h>
#include <sqfs/compressor.h>
#include <sqfs/dir.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/io.h>
#include <sqfs/meta_reader.h>
#include <sqfs/xattr.h>
#include <sqfs/xattr_reader.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.hpp"

namespace rbox::image::fuse {

namespace {

// libsquashfs frees its results with free(); sqfs_free is that, exported.
template <class T>
struct SqfsFree {
  void operator()(T* p) const { sqfs_free(p); }
};
template <class T>
using SqfsPtr = std::unique_ptr<T, SqfsFree<T>>;

uint32_t ifmt_for_type(uint16_t type) {
  switch (type) {
    case SQFS_INODE_DIR:
    case SQFS_INODE_EXT_DIR:
      return S_IFDIR;
    case SQFS_INODE_FILE:
    case SQFS_INODE_EXT_FILE:
      return S_IFREG;
    case SQFS_INODE_SLINK:
    case SQFS_INODE_EXT_SLINK:
      return S_IFLNK;
    case SQFS_INODE_BDEV:
    case SQFS_INODE_EXT_BDEV:
      return S_IFBLK;
    case SQFS_INODE_CDEV:
    case SQFS_INODE_EXT_CDEV:
      return S_IFCHR;
    case SQFS_INODE_FIFO:
    case SQFS_INODE_EXT_FIFO:
      return S_IFIFO;
    case SQFS_INODE_SOCKET:
    case SQFS_INODE_EXT_SOCKET:
      return S_IFSOCK;
    default:
      return 0;
  }
}

const char* sqfs_error_text(int err) {
  switch (err) {
    case SQFS_ERROR_ALLOC:
      return "out of memory";
    case SQFS_ERROR_IO:
      return "I/O error";
    case SQFS_ERROR_COMPRESSOR:
      return "a block does not decompress";
    case SQFS_ERROR_CORRUPTED:
      return "corrupted metadata";
    case SQFS_ERROR_UNSUPPORTED:
      return "unsupported feature";
    case SQFS_ERROR_OVERFLOW:
      return "size overflow";
    case SQFS_ERROR_OUT_OF_BOUNDS:
      return "reference out of bounds";
    case -9:
      return "no SquashFS magic";  // SFQS_ERROR_SUPER_MAGIC (sic) in libsquashfs 1.2
    case -10:
      return "not SquashFS 4.0";  // SFQS_ERROR_SUPER_VERSION
    case SQFS_ERROR_SUPER_BLOCK_SIZE:
      return "invalid block size";
    default:
      return "invalid data";
  }
}

// A libsquashfs compressor object whose do_block uses this thread's Decompressor, so metadata
// blocks reuse the same contexts as data blocks. Must stay the first member (C-style base).
struct CompressorShim {
  sqfs_compressor_t base;
  Decompressor* dec;
};

void shim_destroy(sqfs_object_t*) {}  // owned by the Context
void shim_get_config(const sqfs_compressor_t*, sqfs_compressor_config_t* cfg) {
  std::memset(cfg, 0, sizeof(*cfg));
}
int shim_no_options(sqfs_compressor_t*, sqfs_file_t*) {
  return 0;
}
sqfs_s32 shim_do_block(sqfs_compressor_t* cmp, const sqfs_u8* in, sqfs_u32 size, sqfs_u8* out,
                       sqfs_u32 outsize) {
  auto* shim = reinterpret_cast<CompressorShim*>(cmp);
  long n = shim->dec->decompress(in, size, out, outsize);
  return n <= 0 ? SQFS_ERROR_COMPRESSOR : static_cast<sqfs_s32>(n);
}

}  // namespace

// sqfs_file_t over [offset_, offset_ + size_) of the image file; thread-safe (pread only).
struct SquashfsReader::File {
  sqfs_file_t base;
  SquashfsReader* reader;
};

class SquashfsReader::Context {
 public:
  explicit Context(const SquashfsReader& r) : dec(r.super_.compression_id, r.super_.block_size) {
    shim.base = {};
    shim.base.base.destroy = shim_destroy;
    shim.base.get_configuration = shim_get_config;
    shim.base.write_options = shim_no_options;
    shim.base.read_options = shim_no_options;
    shim.base.do_block = shim_do_block;
    shim.dec = &dec;
    sqfs_file_t* f = &r.file_->base;
    inodes =
        sqfs_meta_reader_create(f, &shim.base, r.super_.inode_table_start, r.super_.directory_table_start);
    dirs = sqfs_meta_reader_create(f, &shim.base, r.super_.directory_table_start, r.super_.bytes_used);
    if (inodes == nullptr || dirs == nullptr) throw Error("out of memory creating SquashFS readers");
  }
  ~Context() {
    if (inodes != nullptr) sqfs_destroy(inodes);
    if (dirs != nullptr) sqfs_destroy(dirs);
    if (xattrs != nullptr) sqfs_destroy(xattrs);
  }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Decompressor dec;
  CompressorShim shim{};
  sqfs_meta_reader_t* inodes = nullptr;
  sqfs_meta_reader_t* dirs = nullptr;
  sqfs_xattr_reader_t* xattrs = nullptr;  // created on first use
  std::vector<uint8_t> in;                // compressed bytes of one READ
};

bool Inode::is_dir() const {
  return S_ISDIR(mode);
}
bool Inode::is_reg() const {
  return S_ISREG(mode);
}
bool Inode::is_link() const {
  return S_ISLNK(mode);
}
uint64_t Inode::blocks_512() const {
  // fs/squashfs/inode.c: regular files report (size - sparse) in 512-byte units, others 0.
  return is_reg() && size > sparse ? (size - sparse + 511) >> 9 : 0;
}

const Directory::Entry* Directory::find(std::string_view n) const {
  auto it = std::lower_bound(entries.begin(), entries.end(), n,
                             [this](const Entry& e, std::string_view key) { return name(e) < key; });
  return it != entries.end() && name(*it) == n ? &*it : nullptr;
}

unsigned dirent_type(uint16_t sqfs_type) {
  return ifmt_for_type(sqfs_type) >> 12;
}

SquashfsReader::SquashfsReader(UniqueFd fd, uint64_t offset, uint64_t size, std::string name,
                               CacheBudget budget)
    : fd_(std::move(fd)),
      offset_(offset),
      size_(size),
      name_(std::move(name)),
      inodes_(budget.inodes),
      dirs_(budget.directories),
      blocks_(budget.blocks) {
  struct stat st {};
  if (fstat(fd_.get(), &st) != 0) throw sys_error("stat", name_);
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (offset_ > file_size || (size_ != 0 && size_ > file_size - offset_))
    throw Error(name_ + ": the SquashFS partition (offset " + std::to_string(offset_) + ", size " +
                std::to_string(size_) + ") lies outside the file (" + std::to_string(file_size) +
                " bytes); the image is truncated");
  if (size_ == 0) size_ = file_size - offset_;

  file_ = std::make_unique<File>();
  file_->reader = this;
  file_->base.base.destroy = [](sqfs_object_t*) {};
  file_->base.read_at = [](sqfs_file_t* f, sqfs_u64 pos, void* buf, size_t n) -> int {
    auto* self = reinterpret_cast<File*>(f)->reader;
    if (pos > self->size_ || n > self->size_ - pos) return SQFS_ERROR_OUT_OF_BOUNDS;
    try {
      self->pread_exact(buf, n, pos);
    } catch (const Error&) {
      return SQFS_ERROR_IO;
    }
    return 0;
  };
  file_->base.write_at = [](sqfs_file_t*, sqfs_u64, const void*, size_t) -> int { return SQFS_ERROR_IO; };
  file_->base.get_size = [](const sqfs_file_t* f) -> sqfs_u64 {
    return reinterpret_cast<const File*>(f)->reader->size_;
  };
  file_->base.truncate = [](sqfs_file_t*, sqfs_u64) -> int { return SQFS_ERROR_IO; };

  auto where = [&] {
    return name_ + (offset_ != 0 ? " (SquashFS at offset " + std::to_string(offset_) + ")" : "");
  };
  int err = sqfs_super_read(&super_, &file_->base);
  if (err != 0) throw Error(where() + ": not a readable SquashFS 4.0 filesystem: " + sqfs_error_text(err));
  if (!codec_supported(super_.compression_id))
    throw Error(where() + ": SquashFS compressor '" + codec_name(super_.compression_id) +
                "' is not supported; repack the image with zstd or gzip");
  const uint64_t tables[] = {super_.inode_table_start, super_.directory_table_start, super_.id_table_start};
  for (uint64_t t : tables)
    if (t >= super_.bytes_used) throw Error(where() + ": corrupt superblock (a table lies past bytes_used)");
  if (super_.bytes_used > size_)
    throw Error(where() + ": truncated: the superblock says " + std::to_string(super_.bytes_used) +
                " bytes, the partition holds " + std::to_string(size_));
  if (super_.inode_table_start >= super_.directory_table_start)
    throw Error(where() + ": corrupt superblock (inode table after directory table)");

  auto ctx = make_context();
  sqfs_compressor_t* cmp = &ctx->shim.base;
  std::unique_ptr<sqfs_id_table_t, void (*)(void*)> ids(sqfs_id_table_create(0), sqfs_destroy);
  if (!ids || (err = sqfs_id_table_read(ids.get(), &file_->base, &super_, cmp)) != 0)
    throw Error(where() + ": cannot read the uid/gid table: " + sqfs_error_text(err));
  for (unsigned i = 0; i < super_.id_count; ++i) {
    sqfs_u32 id = 0;
    if (sqfs_id_table_index_to_id(ids.get(), static_cast<sqfs_u16>(i), &id) != 0) break;
    ids_.push_back(id);
  }
  if (!(super_.flags & SQFS_FLAG_NO_FRAGMENTS) && super_.fragment_entry_count > 0) {
    std::unique_ptr<sqfs_frag_table_t, void (*)(void*)> frags(sqfs_frag_table_create(0), sqfs_destroy);
    if (!frags || (err = sqfs_frag_table_read(frags.get(), &file_->base, &super_, cmp)) != 0)
      throw Error(where() + ": cannot read the fragment table: " + sqfs_error_text(err));
    size_t n = sqfs_frag_table_get_size(frags.get());
    fragments_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      sqfs_fragment_t f{};
      if (sqfs_frag_table_lookup(frags.get(), static_cast<sqfs_u32>(i), &f) != 0) break;
      fragments_.emplace_back(f.start_offset, f.size);
    }
  }
  has_xattrs_ = !(super_.flags & SQFS_FLAG_NO_XATTRS) && super_.xattr_id_table_start != ~0ull &&
                super_.xattr_id_table_start < super_.bytes_used;
  auto root = inode(*ctx, root_ref());
  if (!root->is_dir()) throw Error(where() + ": corrupt image: the root inode is not a directory");
}

SquashfsReader::~SquashfsReader() = default;

SquashfsReader::ContextPtr SquashfsReader::make_context() const {
  return ContextPtr(new Context(*this));
}

void SquashfsReader::ContextDeleter::operator()(Context* c) const {
  delete c;
}

void SquashfsReader::corrupt(const std::string& what) const {
  throw Error(name_ + ": corrupt SquashFS image: " + what);
}

void SquashfsReader::pread_exact(void* buf, size_t n, uint64_t pos) {
  auto* p = static_cast<char*>(buf);
  uint64_t at = offset_ + pos;
  while (n > 0) {
    ssize_t r = ::pread(fd_.get(), p, n, static_cast<off_t>(at));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw sys_error("read", name_);
    if (r == 0) throw Error(name_ + ": unexpected end of file (truncated image)");
    p += r;
    at += static_cast<uint64_t>(r);
    n -= static_cast<size_t>(r);
  }
}

std::shared_ptr<const Inode> SquashfsReader::inode(Context& ctx, uint64_t ref) {
  return inodes_.get(ref, [&](Inode& out) {
    out = decode_inode(ctx, ref);
    size_t cost = sizeof(Inode) + out.target.size() + out.block_words.size() * 12;
    for (const auto& [k, v] : out.xattrs) cost += k.size() + v.size() + 64;
    return cost;
  });
}

Inode SquashfsReader::decode_inode(Context& ctx, uint64_t ref) {
  uint64_t block = ref >> 16;
  size_t offset = ref & 0xFFFF;
  if (offset >= SQFS_META_BLOCK_SIZE || block >= super_.directory_table_start - super_.inode_table_start)
    corrupt("inode reference " + std::to_string(ref) + " out of bounds");
  sqfs_inode_generic_t* raw = nullptr;
  // The block argument is relative to the inode table (libsquashfs 1.2 adds inode_table_start).
  int err = sqfs_meta_reader_read_inode(ctx.inodes, &super_, block, offset, &raw);
  if (err != 0) corrupt(std::string("inode ") + std::to_string(ref) + ": " + sqfs_error_text(err));
  SqfsPtr<sqfs_inode_generic_t> gi(raw);

  Inode in;
  in.ref = ref;
  in.number = gi->base.inode_number;
  uint32_t ifmt = ifmt_for_type(gi->base.type);
  if (ifmt == 0)
    corrupt("inode " + std::to_string(ref) + " has unknown type " + std::to_string(gi->base.type));
  in.mode = ifmt | (gi->base.mode & 07777);
  if (gi->base.uid_idx >= ids_.size() || gi->base.gid_idx >= ids_.size())
    corrupt("inode " + std::to_string(ref) + " refers past the id table");
  in.uid = ids_[gi->base.uid_idx];
  in.gid = ids_[gi->base.gid_idx];
  in.mtime = gi->base.mod_time;
  uint32_t xattr = kNoXattr;
  const auto& d = gi->data;
  switch (gi->base.type) {
    case SQFS_INODE_DIR:
      in.nlink = d.dir.nlink;
      in.size = d.dir.size;
      in.dir_block = d.dir.start_block;
      in.dir_offset = d.dir.offset;
      in.parent = d.dir.parent_inode;
      break;
    case SQFS_INODE_EXT_DIR:
      in.nlink = d.dir_ext.nlink;
      in.size = d.dir_ext.size;
      in.dir_block = d.dir_ext.start_block;
      in.dir_offset = d.dir_ext.offset;
      in.parent = d.dir_ext.parent_inode;
      xattr = d.dir_ext.xattr_idx;
      break;
    case SQFS_INODE_FILE:
    case SQFS_INODE_EXT_FILE: {
      uint64_t start = 0;
      sqfs_inode_get_file_block_start(gi.get(), &start);
      sqfs_inode_get_file_size(gi.get(), &in.size);
      sqfs_inode_get_frag_location(gi.get(), &in.frag_index, &in.frag_offset);
      if (gi->base.type == SQFS_INODE_EXT_FILE) {
        in.nlink = d.file_ext.nlink;
        in.sparse = d.file_ext.sparse;
        xattr = d.file_ext.xattr_idx;
      }
      size_t count = sqfs_inode_get_file_block_count(gi.get());
      if (in.frag_offset == kNoFragment) in.frag_index = kNoFragment;
      uint64_t full = in.size / super_.block_size;
      bool tail = in.size % super_.block_size != 0;
      uint64_t want = full + (tail && in.frag_index == kNoFragment ? 1 : 0);
      if (count != want) corrupt("file inode " + std::to_string(ref) + " has a wrong block count");
      if (in.frag_index != kNoFragment && (in.frag_index >= fragments_.size() || !tail))
        corrupt("file inode " + std::to_string(ref) + " has an invalid fragment");
      in.block_words.assign(gi->extra, gi->extra + count);
      in.block_pos.resize(count);
      uint64_t pos = start;
      for (size_t i = 0; i < count; ++i) {
        uint32_t disk = SQFS_ON_DISK_BLOCK_SIZE(in.block_words[i]);
        if (disk > super_.block_size || pos + disk > super_.bytes_used)
          corrupt("file inode " + std::to_string(ref) + " has a block out of bounds");
        in.block_pos[i] = pos;
        pos += disk;
      }
      break;
    }
    case SQFS_INODE_SLINK:
    case SQFS_INODE_EXT_SLINK:
      in.nlink = d.slink.nlink;
      in.target.assign(reinterpret_cast<const char*>(gi->extra), d.slink.target_size);
      in.size = in.target.size();
      if (gi->base.type == SQFS_INODE_EXT_SLINK) xattr = d.slink_ext.xattr_idx;
      break;
    case SQFS_INODE_BDEV:
    case SQFS_INODE_CDEV:
      in.nlink = d.dev.nlink;
      in.rdev = d.dev.devno;
      break;
    case SQFS_INODE_EXT_BDEV:
    case SQFS_INODE_EXT_CDEV:
      in.nlink = d.dev_ext.nlink;
      in.rdev = d.dev_ext.devno;
      xattr = d.dev_ext.xattr_idx;
      break;
    case SQFS_INODE_FIFO:
    case SQFS_INODE_SOCKET:
      in.nlink = d.ipc.nlink;
      break;
    case SQFS_INODE_EXT_FIFO:
    case SQFS_INODE_EXT_SOCKET:
      in.nlink = d.ipc_ext.nlink;
      xattr = d.ipc_ext.xattr_idx;
      break;
  }
  if (xattr != kNoXattr && has_xattrs_) read_xattrs(ctx, xattr, in);
  return in;
}

void SquashfsReader::read_xattrs(Context& ctx, uint32_t index, Inode& out) {
  if (ctx.xattrs == nullptr) {
    ctx.xattrs = sqfs_xattr_reader_create(0);
    if (ctx.xattrs == nullptr) throw Error("out of memory");
    int err = sqfs_xattr_reader_load(ctx.xattrs, &super_, &file_->base, &ctx.shim.base);
    if (err != 0) {
      sqfs_destroy(ctx.xattrs);
      ctx.xattrs = nullptr;
      corrupt(std::string("xattr table: ") + sqfs_error_text(err));
    }
  }
  sqfs_xattr_id_t desc{};
  int err = sqfs_xattr_reader_get_desc(ctx.xattrs, index, &desc);
  if (err == 0 && desc.count > 0) err = sqfs_xattr_reader_seek_kv(ctx.xattrs, &desc);
  if (err != 0)
    corrupt(std::string("xattrs of inode ") + std::to_string(out.ref) + ": " + sqfs_error_text(err));
  for (uint32_t i = 0; i < desc.count; ++i) {
    sqfs_xattr_entry_t* key = nullptr;
    if ((err = sqfs_xattr_reader_read_key(ctx.xattrs, &key)) != 0)
      corrupt("xattr key: " + std::string(sqfs_error_text(err)));
    SqfsPtr<sqfs_xattr_entry_t> k(key);
    sqfs_xattr_value_t* value = nullptr;
    if ((err = sqfs_xattr_reader_read_value(ctx.xattrs, key, &value)) != 0)
      corrupt("xattr value: " + std::string(sqfs_error_text(err)));
    SqfsPtr<sqfs_xattr_value_t> v(value);
    out.xattrs.emplace_back(std::string(reinterpret_cast<const char*>(k->key)),
                            std::string(reinterpret_cast<const char*>(v->value), v->size));
  }
}

std::shared_ptr<const Directory> SquashfsReader::directory(Context& ctx, const Inode& dir) {
  return dirs_.get(dir.ref, [&](Directory& out) {
    out = decode_directory(ctx, dir);
    return sizeof(Directory) + out.names.size() + out.entries.size() * sizeof(Directory::Entry);
  });
}

Directory SquashfsReader::decode_directory(Context& ctx, const Inode& dir) {
  Directory out;
  // The stored size counts 3 bytes for the implicit "." and ".." (mksquashfs convention).
  if (dir.size <= 3) return out;
  uint64_t remaining = dir.size - 3;
  uint64_t start = super_.directory_table_start + dir.dir_block;
  if (start >= super_.bytes_used || dir.dir_offset >= SQFS_META_BLOCK_SIZE)
    corrupt("directory inode " + std::to_string(dir.ref) + " points out of bounds");
  int err = sqfs_meta_reader_seek(ctx.dirs, start, dir.dir_offset);
  bool sorted = true;
  while (err == 0 && remaining > 0) {
    sqfs_dir_header_t hdr{};
    if (remaining < sizeof(hdr) || (err = sqfs_meta_reader_read_dir_header(ctx.dirs, &hdr)) != 0) break;
    remaining -= sizeof(hdr);
    uint64_t count = static_cast<uint64_t>(hdr.count) + 1;  // stored as count - 1
    if (count > SQFS_MAX_DIR_ENT) corrupt("directory inode " + std::to_string(dir.ref) + " has a bad header");
    for (uint64_t i = 0; i < count; ++i) {
      sqfs_dir_entry_t* raw = nullptr;
      if (remaining < sizeof(sqfs_dir_entry_t) ||
          (err = sqfs_meta_reader_read_dir_ent(ctx.dirs, &raw)) != 0) {
        if (err == 0) err = SQFS_ERROR_CORRUPTED;
        break;
      }
      SqfsPtr<sqfs_dir_entry_t> ent(raw);
      size_t len = static_cast<size_t>(ent->size) + 1;
      if (remaining < sizeof(sqfs_dir_entry_t) + len) {
        err = SQFS_ERROR_CORRUPTED;
        break;
      }
      remaining -= sizeof(sqfs_dir_entry_t) + len;
      std::string_view name(reinterpret_cast<const char*>(ent->name), len);
      // Names that could climb out of the tree or confuse readers are dropped.
      if (name == "." || name == ".." || name.find('/') != std::string_view::npos ||
          name.find('\0') != std::string_view::npos || ifmt_for_type(ent->type) == 0)
        continue;
      Directory::Entry e{};
      e.ref = (static_cast<uint64_t>(hdr.start_block) << 16) | ent->offset;
      e.number = static_cast<uint32_t>(static_cast<int64_t>(hdr.inode_number) + ent->inode_diff);
      e.type = ent->type;
      e.name_off = static_cast<uint32_t>(out.names.size());
      e.name_len = static_cast<uint16_t>(len);
      if (!out.entries.empty() && out.name(out.entries.back()) >= name) sorted = false;
      out.names.append(name);
      out.entries.push_back(e);
    }
  }
  if (err != 0) corrupt("directory inode " + std::to_string(dir.ref) + ": " + sqfs_error_text(err));
  if (!sorted) {
    std::sort(
        out.entries.begin(), out.entries.end(),
        [&](const Directory::Entry& a, const Directory::Entry& b) { return out.name(a) < out.name(b); });
  }
  return out;
}

size_t SquashfsReader::decompress_into(Context& ctx, uint32_t word, const uint8_t* src, char* dst,
                                       size_t capacity) {
  uint32_t disk = SQFS_ON_DISK_BLOCK_SIZE(word);
  if (!SQFS_IS_BLOCK_COMPRESSED(word)) {
    if (disk > capacity) corrupt("an uncompressed block is larger than the block size");
    std::memcpy(dst, src, disk);
    return disk;
  }
  long n = ctx.dec.decompress(src, disk, dst, capacity);
  if (n < 0) corrupt("a data block does not decompress");
  return static_cast<size_t>(n);
}

std::shared_ptr<const std::vector<uint8_t>> SquashfsReader::fragment(Context& ctx, uint32_t index) {
  // Plain locals, not a structured binding: clang < 16 cannot capture bindings in lambdas.
  const uint64_t pos = fragments_[index].first;
  const uint32_t word = fragments_[index].second;
  uint32_t disk = SQFS_ON_DISK_BLOCK_SIZE(word);
  if (disk > super_.block_size || pos + disk > super_.bytes_used) corrupt("fragment block out of bounds");
  return blocks_.get(pos, [&](std::vector<uint8_t>& out) {
    ctx.in.resize(disk);
    pread_exact(ctx.in.data(), disk, pos);
    read_stats_.bytes_read.fetch_add(disk, std::memory_order_relaxed);
    out.resize(super_.block_size);
    out.resize(decompress_into(ctx, word, ctx.in.data(), reinterpret_cast<char*>(out.data()), out.size()));
    read_stats_.cached_blocks.fetch_add(1, std::memory_order_relaxed);
    return out.capacity();
  });
}

size_t SquashfsReader::read(Context& ctx, const Inode& f, uint64_t off, size_t len, char* out) {
  if (!f.is_reg() || off >= f.size || len == 0) return 0;
  const uint64_t end = std::min<uint64_t>(f.size, off + len);
  const uint64_t bs = super_.block_size;
  const uint64_t first = off / bs, last = (end - 1) / bs;

  // Pass 1: sparse blocks, fragment tails and cached partial blocks need no data-block I/O; the
  // rest of the blocks are contiguous on disk and are fetched with one pread.
  uint64_t lo = UINT64_MAX, hi = 0;
  uint64_t todo_first = UINT64_MAX, todo_last = 0;
  for (uint64_t b = first; b <= last; ++b) {
    const uint64_t blk_start = b * bs, blk_len = std::min(bs, f.size - blk_start);
    const uint64_t a = std::max(off, blk_start), z = std::min(end, blk_start + blk_len);
    char* dst = out + (a - off);
    if (b >= f.block_words.size()) {  // the tail, stored in a fragment block
      auto frag = fragment(ctx, f.frag_index);
      if (f.frag_offset + blk_len > frag->size()) corrupt("file tail beyond its fragment block");
      std::memcpy(dst, frag->data() + f.frag_offset + (a - blk_start), z - a);
      continue;
    }
    const uint32_t disk = SQFS_ON_DISK_BLOCK_SIZE(f.block_words[b]);
    if (disk == 0) {  // sparse block
      std::memset(dst, 0, z - a);
      continue;
    }
    if (a != blk_start || z != blk_start + blk_len) {
      if (auto blk = blocks_.find(f.block_pos[b])) {
        if (blk->size() != blk_len) corrupt("a data block has the wrong size");
        std::memcpy(dst, blk->data() + (a - blk_start), z - a);
        continue;
      }
    }
    lo = std::min(lo, f.block_pos[b]);
    hi = std::max(hi, f.block_pos[b] + disk);
    todo_first = std::min(todo_first, b);
    todo_last = b;
  }
  if (todo_first == UINT64_MAX) return end - off;

  ctx.in.resize(hi - lo);
  pread_exact(ctx.in.data(), hi - lo, lo);
  read_stats_.bytes_read.fetch_add(hi - lo, std::memory_order_relaxed);

  // Pass 2: whole blocks decompress straight into the reply; partial ones via the block cache.
  for (uint64_t b = todo_first; b <= todo_last; ++b) {
    const uint32_t word = f.block_words[b];
    const uint32_t disk = SQFS_ON_DISK_BLOCK_SIZE(word);
    if (disk == 0) continue;
    const uint64_t blk_start = b * bs, blk_len = std::min(bs, f.size - blk_start);
    const uint64_t a = std::max(off, blk_start), z = std::min(end, blk_start + blk_len);
    const uint8_t* src = ctx.in.data() + (f.block_pos[b] - lo);
    char* dst = out + (a - off);
    if (a == blk_start && z == blk_start + blk_len) {
      if (decompress_into(ctx, word, src, dst, blk_len) != blk_len)
        corrupt("a data block has the wrong size");
      read_stats_.direct_blocks.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto blk = blocks_.get(f.block_pos[b], [&](std::vector<uint8_t>& v) {
      v.resize(blk_len);
      if (decompress_into(ctx, word, src, reinterpret_cast<char*>(v.data()), v.size()) != blk_len)
        corrupt("a data block has the wrong size");
      read_stats_.cached_blocks.fetch_add(1, std::memory_order_relaxed);
      return v.capacity();
    });
    if (blk->size() != blk_len) corrupt("a data block has the wrong size");
    std::memcpy(dst, blk->data() + (a - blk_start), z - a);
  }
  return end - off;
}

}  // namespace rbox::image::fuse
