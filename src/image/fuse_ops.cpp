// FUSE request handlers for the read-only SquashFS server (see fuse_ops.hpp). Replies follow
// linux/fuse.h; kernel behaviour relied on is cited per handler (fs/fuse/*.c). Must never block
// on anything but image reads, and never touch the mount itself.
#include "image/fuse_ops.hpp"

#include <linux/fuse.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "util/log.hpp"

namespace rbox::image::fuse {

namespace {

constexpr size_t kHdr = sizeof(fuse_out_header);

// Requests the server wants from the kernel (fs/fuse/inode.c process_init_reply):
// - ASYNC_READ: several READs per file in flight (readahead);
// - DO_READDIRPLUS + READDIRPLUS_AUTO: attributes with directory entries, saving one LOOKUP per
//   entry (FUSE.md §4: 1-reader warm 0.49× → 0.74× of kernel squashfs);
// - CACHE_SYMLINKS: the kernel keeps link targets in its page cache;
// - PARALLEL_DIROPS: concurrent LOOKUP/READDIR in one directory;
// - MAX_PAGES: READs of up to max_pages pages.
// AUTO_INVAL_DATA is left out on purpose: the image never changes, so cached pages never need
// to be dropped on attribute changes.
constexpr uint32_t kWantedInitFlags = FUSE_ASYNC_READ | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO |
                                      FUSE_CACHE_SYMLINKS | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES;

constexpr size_t align8(size_t n) {
  return (n + 7) & ~size_t{7};
}

std::string_view request_name(const uint8_t* arg, size_t n) {
  const auto* s = reinterpret_cast<const char*>(arg);
  return {s, strnlen(s, n)};
}

}  // namespace

FuseOps::FuseOps(SquashfsReader& image, OpsOptions options) : image_(image), options_(options) {}

size_t FuseOps::reply_capacity() const {
  return kHdr + static_cast<size_t>(options_.max_pages) * 4096;
}

size_t FuseOps::handle(SquashfsReader::Context& ctx, const uint8_t* req, size_t len, uint8_t* out,
                       size_t out_cap) {
  fuse_in_header in{};
  if (len < sizeof(in)) return 0;
  std::memcpy(&in, req, sizeof(in));
  const uint8_t* arg = req + sizeof(in);
  const size_t total = std::min<size_t>(len, in.len);
  const size_t n = total > sizeof(in) ? total - sizeof(in) : 0;
  if (in.opcode < kOpcodeSlots) counts_[in.opcode].fetch_add(1, std::memory_order_relaxed);

  long r = -ENOSYS;
  try {
    if (!initialized() && in.opcode != FUSE_INIT) {
      r = -EIO;
    } else {
      switch (in.opcode) {
        case FUSE_INIT:
          r = (op_init(arg, n, out + kHdr));
          break;
        case FUSE_LOOKUP:
          r = (op_lookup(ctx, in.nodeid, arg, n, out + kHdr));
          break;
        case FUSE_GETATTR:
          r = (op_getattr(ctx, in.nodeid, out + kHdr));
          break;
        case FUSE_READLINK:
          r = (op_readlink(ctx, in.nodeid, out + kHdr, out_cap - kHdr));
          break;
        case FUSE_READ:
          r = (op_read(ctx, in.nodeid, arg, n, out + kHdr, out_cap - kHdr));
          break;
        case FUSE_READDIR:
        case FUSE_READDIRPLUS:
          r = static_cast<long>(
              op_readdir(ctx, in.nodeid, arg, n, out + kHdr, out_cap - kHdr, in.opcode == FUSE_READDIRPLUS));
          break;
        case FUSE_STATFS:
          r = (op_statfs(out + kHdr));
          break;
        case FUSE_GETXATTR:
        case FUSE_LISTXATTR:
          // Without xattrs in the image, ENOSYS makes the kernel stop asking (fc->no_getxattr /
          // no_listxattr): no round trip per exec for security.capability.
          if (!image_.has_xattrs()) break;
          r = static_cast<long>(in.opcode == FUSE_GETXATTR
                                    ? op_getxattr(ctx, in.nodeid, arg, n, out + kHdr, out_cap - kHdr)
                                    : op_listxattr(ctx, in.nodeid, arg, n, out + kHdr, out_cap - kHdr));
          break;
        // No open state at all: ENOSYS to OPEN/OPENDIR sets fc->no_open/no_opendir, after which
        // the kernel opens files itself with FOPEN_KEEP_CACHE (and FOPEN_CACHE_DIR), sends no
        // RELEASE, and keeps page cache across opens (fs/fuse/file.c fuse_file_open).
        case FUSE_OPEN:
        case FUSE_OPENDIR:
        case FUSE_FLUSH:
        case FUSE_ACCESS:
          r = -ENOSYS;
          break;
        case FUSE_RELEASE:
        case FUSE_RELEASEDIR:
        case FUSE_DESTROY:
          r = 0;
          break;
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT:
          return 0;  // no reply; node ids carry no state
        default:
          r = -ENOSYS;
          break;
      }
    }
  } catch (const std::exception& e) {
    // A corrupt image or an I/O error: the caller sees EIO; the first few are reported.
    if (errors_.fetch_add(1, std::memory_order_relaxed) < 5) log::warn(e.what());
    r = -EIO;
  }
  fuse_out_header oh{};
  oh.unique = in.unique;
  oh.error = r < 0 ? static_cast<int32_t>(r) : 0;
  oh.len = static_cast<uint32_t>(kHdr + (r > 0 ? static_cast<size_t>(r) : 0));
  std::memcpy(out, &oh, kHdr);
  return oh.len;
}

long FuseOps::op_init(const uint8_t* arg, size_t n, uint8_t* out) {
  fuse_init_in in{};
  std::memcpy(&in, arg, std::min(n, sizeof(in)));  // older kernels send a shorter struct
  fuse_init_out o{};
  o.major = FUSE_KERNEL_VERSION;
  o.minor = FUSE_KERNEL_MINOR_VERSION;
  if (in.major < 7)
    throw std::runtime_error("FUSE: the kernel speaks protocol " + std::to_string(in.major) + ", too old");
  if (in.major > 7) {
    // The kernel retries INIT with our major version (fs/fuse/inode.c).
    std::memcpy(out, &o, sizeof(o));
    return sizeof(o);
  }
  minor_.store(in.minor, std::memory_order_relaxed);
  o.max_readahead = in.max_readahead;
  uint32_t want = kWantedInitFlags;
  if (!options_.readdirplus_auto) want &= ~static_cast<uint32_t>(FUSE_READDIRPLUS_AUTO);
  o.flags = in.flags & want;
  o.max_write = 4096;        // read-only: no WRITE ever arrives
  o.time_gran = 1000000000;  // SquashFS stores whole seconds
  o.max_pages = static_cast<uint16_t>(options_.max_pages);
  std::memcpy(out, &o, sizeof(o));
  initialized_.store(true, std::memory_order_release);
  return in.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof(o);
}

std::shared_ptr<const Inode> FuseOps::node_inode(SquashfsReader::Context& ctx, uint64_t node) {
  uint64_t ref = 0;
  if (!ref_for_node(node, image_.root_ref(), &ref)) return nullptr;
  return image_.inode(ctx, ref);
}

void FuseOps::fill_attr(const Inode& in, void* dst) const {
  fuse_attr a{};
  a.ino = in.number;
  a.size = in.size;
  a.blocks = in.blocks_512();
  a.atime = a.mtime = a.ctime = in.mtime;
  a.mode = in.mode;
  a.nlink = in.nlink;
  if (options_.owners.kind == OwnerPolicy::Kind::kFixed) {
    a.uid = options_.owners.uid;
    a.gid = options_.owners.gid;
  } else {
    a.uid = in.uid;
    a.gid = in.gid;
  }
  a.rdev = in.rdev;  // both use the kernel's new_encode_dev layout
  std::memcpy(dst, &a, sizeof(a));
}

void FuseOps::fill_entry(const Inode& in, void* dst) const {
  fuse_entry_out e{};
  e.nodeid = node_for_ref(in.ref, image_.root_ref());
  e.entry_valid = e.attr_valid = options_.timeout_s;
  fill_attr(in, &e.attr);
  std::memcpy(dst, &e, sizeof(e));
}

long FuseOps::op_lookup(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n,
                        uint8_t* out) {
  auto parent = node_inode(ctx, node);
  if (!parent) return -ENOENT;
  if (!parent->is_dir()) return -ENOTDIR;
  auto dir = image_.directory(ctx, *parent);
  const Directory::Entry* e = dir->find(request_name(arg, n));
  if (e == nullptr) {
    // nodeid 0 with a timeout is a cacheable negative entry (fs/fuse/dir.c fuse_lookup_name).
    fuse_entry_out neg{};
    neg.entry_valid = options_.timeout_s;
    std::memcpy(out, &neg, sizeof(neg));
    return sizeof(neg);
  }
  fill_entry(*image_.inode(ctx, e->ref), out);
  return sizeof(fuse_entry_out);
}

long FuseOps::op_getattr(SquashfsReader::Context& ctx, uint64_t node, uint8_t* out) {
  auto in = node_inode(ctx, node);
  if (!in) return -ENOENT;
  fuse_attr_out o{};
  o.attr_valid = options_.timeout_s;
  fill_attr(*in, &o.attr);
  std::memcpy(out, &o, sizeof(o));
  return sizeof(o);
}

long FuseOps::op_readlink(SquashfsReader::Context& ctx, uint64_t node, uint8_t* out, size_t cap) {
  auto in = node_inode(ctx, node);
  if (!in) return -ENOENT;
  if (!in->is_link()) return -EINVAL;
  if (in->target.size() > cap) return -ENAMETOOLONG;
  std::memcpy(out, in->target.data(), in->target.size());
  return static_cast<long>(in->target.size());
}

long FuseOps::op_read(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n, uint8_t* out,
                      size_t cap) {
  fuse_read_in rd{};
  std::memcpy(&rd, arg, std::min(n, sizeof(rd)));
  auto in = node_inode(ctx, node);
  if (!in) return -ENOENT;
  if (in->is_dir()) return -EISDIR;
  if (!in->is_reg()) return -EINVAL;
  size_t want = std::min<size_t>(rd.size, cap);
  return static_cast<long>(image_.read(ctx, *in, rd.offset, want, reinterpret_cast<char*>(out)));
}

long FuseOps::op_readdir(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n,
                         uint8_t* out, size_t cap, bool plus) {
  fuse_read_in rd{};
  std::memcpy(&rd, arg, std::min(n, sizeof(rd)));
  auto in = node_inode(ctx, node);
  if (!in) return -ENOENT;
  if (!in->is_dir()) return -ENOTDIR;
  auto dir = image_.directory(ctx, *in);
  const size_t limit = std::min<size_t>(rd.size, cap);
  const uint64_t total = dir->entries.size() + 2;
  size_t pos = 0;
  // The offset cookie of entry i is i + 1: ".", "..", then the listing in name order.
  for (uint64_t i = rd.offset; i < total; ++i) {
    std::string_view name;
    uint64_t ino = 0;
    uint32_t type = 0;
    const Directory::Entry* e = nullptr;
    if (i == 0) {
      name = ".", ino = in->number, type = S_IFDIR >> 12;
    } else if (i == 1) {
      name = "..", ino = in->parent, type = S_IFDIR >> 12;
    } else {
      e = &dir->entries[i - 2];
      name = dir->name(*e), ino = e->number, type = dirent_type(e->type);
    }
    const size_t head = plus ? offsetof(fuse_direntplus, dirent) : 0;
    const size_t rec = align8(head + offsetof(fuse_dirent, name) + name.size());
    if (pos + rec > limit) break;
    std::memset(out + pos, 0, rec);
    if (plus && e != nullptr) fill_entry(*image_.inode(ctx, e->ref), out + pos);
    // "." and ".." keep nodeid 0: the kernel then just lists them (fuse_direntplus_link).
    fuse_dirent d{};
    d.ino = ino;
    d.off = i + 1;
    d.namelen = static_cast<uint32_t>(name.size());
    d.type = type;
    std::memcpy(out + pos + head, &d, sizeof(d));
    std::memcpy(out + pos + head + offsetof(fuse_dirent, name), name.data(), name.size());
    pos += rec;
  }
  return static_cast<long>(pos);
}

long FuseOps::op_statfs(uint8_t* out) {
  const sqfs_super_t& s = image_.super();
  fuse_statfs_out o{};
  o.st.bsize = o.st.frsize = s.block_size;
  o.st.blocks = (s.bytes_used + s.block_size - 1) / s.block_size;
  o.st.files = s.inode_count;
  o.st.namelen = 256;  // SQUASHFS_NAME_LEN
  std::memcpy(out, &o, sizeof(o));
  return sizeof(o);
}

long FuseOps::op_getxattr(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n,
                          uint8_t* out, size_t cap) {
  fuse_getxattr_in gx{};
  if (n < sizeof(gx)) return -EINVAL;
  std::memcpy(&gx, arg, sizeof(gx));
  std::string_view name = request_name(arg + sizeof(gx), n - sizeof(gx));
  auto in = node_inode(ctx, node);
  if (!in) return -ENOENT;
  for (const auto& [key, value] : in->xattrs) {
    if (key != name) continue;
    if (gx.size == 0) {  // size query (getxattr(2) with size 0)
      fuse_getxattr_out o{};
      o.size = static_cast<uint32_t>(value.size());
      std::memcpy(out, &o, sizeof(o));
      return sizeof(o);
    }
    if (value.size() > gx.size || value.size() > cap) return -ERANGE;
    std::memcpy(out, value.data(), value.size());
    return static_cast<long>(value.size());
  }
  return -ENODATA;
}

long FuseOps::op_listxattr(SquashfsReader::Context& ctx, uint64_t node, const uint8_t* arg, size_t n,
                           uint8_t* out, size_t cap) {
  fuse_getxattr_in gx{};
  if (n < sizeof(gx)) return -EINVAL;
  std::memcpy(&gx, arg, sizeof(gx));
  auto in = node_inode(ctx, node);
  if (!in) return -ENOENT;
  size_t total = 0;
  for (const auto& kv : in->xattrs) total += kv.first.size() + 1;
  if (gx.size == 0) {
    fuse_getxattr_out o{};
    o.size = static_cast<uint32_t>(total);
    std::memcpy(out, &o, sizeof(o));
    return sizeof(o);
  }
  if (total > gx.size || total > cap) return -ERANGE;
  size_t pos = 0;
  for (const auto& kv : in->xattrs) {
    std::memcpy(out + pos, kv.first.c_str(), kv.first.size() + 1);
    pos += kv.first.size() + 1;
  }
  return static_cast<long>(pos);
}

}  // namespace rbox::image::fuse
