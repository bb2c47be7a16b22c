// SquashFS packing (see squash_writer.hpp). TreeReader walks the tree (directories in byte order)
// and prefetches file contents on its own threads; this thread feeds them, in walk order, to
// libsquashfs's block processor, whose workers compress; then the inode and directory tables are
// written from the in-memory tree.
//
// Defaults, from measurements (scripts/bench/pack.sh on a 115 MB Debian minbase tree, 2 CPUs;
// ../shared/design/reference/FUSE.md §5.6 for the read side): zstd level 3 packed it in 0.60 s to
// 50.7 MB, gzip-9 (mksquashfs's default) in 6.5 s to 48.4 MB, lz4hc in 3.1 s to 57.2 MB, xz in
// 11.6 s to 42.3 MB; the kernel and our FUSE server also decompress zstd ~2× faster than gzip.
// 64 KiB blocks rather than 128 KiB: +2.5 % size (49.5 MB at 128 KiB), the same packing time,
// half the decompression per random read through FUSE and a faster start (5.45 vs 6.2 ms).
#include "image/squash_writer.hpp"

#include <fcntl.h>
#include <sqfs/block.h>
#include <sqfs/block_processor.h>
#include <sqfs/block_writer.h>
#include <sqfs/compressor.h>
#include <sqfs/dir_writer.h>
#include <sqfs/error.h>
#include <sqfs/frag_table.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/meta_writer.h>
#include <sqfs/super.h>
#include <sqfs/xattr_writer.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <vector>

#include "image/squash_writer_io.hpp"
#include "image/squash_writer_tree.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"

namespace rbox::image {
namespace {

using squash::clamp_time;
using squash::FileJob;
using squash::kNone;
using squash::Node;

void check(int rc, const std::string& what) {
  if (rc != 0) throw Error(what + ": " + sqfs_error_text(rc));
}

class Packer {
 public:
  Packer(const SquashOptions& opts, sqfs_file_t* file) : opts_(opts), file_(file) {}
  ~Packer() {
    for (auto& n : nodes_) sqfs_free(n.file_inode);
  }

  SquashStats run(const std::string& dir);

 private:
  void setup();
  void pack_file(FileJob& job);
  void number(uint32_t idx, uint32_t& next);
  void serialize(uint32_t idx);
  void write_inode(Node& n, sqfs_inode_generic_t* inode);
  uint32_t xattr_index(const Node& n);
  std::string path_of(uint32_t idx) const;
  // check() with the message built only on failure (these run once per file or block).
  void check_at(int rc, const char* what, uint32_t idx) const {
    if (rc != 0) check(rc, std::string(what) + " " + path_of(idx));
  }

  const SquashOptions& opts_;
  sqfs_file_t* file_;
  std::string root_path_;
  std::deque<Node> nodes_;  // deque: block processor keeps &file_inode until finish
  sqfs_super_t super_{};
  SqfsPtr<sqfs_compressor_t> cmp_, uncmp_;
  SqfsPtr<sqfs_block_writer_t> blkwr_;
  SqfsPtr<sqfs_frag_table_t> fragtbl_;
  SqfsPtr<sqfs_block_processor_t> proc_;
  SqfsPtr<sqfs_id_table_t> idtbl_;
  SqfsPtr<sqfs_xattr_writer_t> xwr_;
  SqfsPtr<sqfs_meta_writer_t> im_, dm_;
  SqfsPtr<sqfs_dir_writer_t> dirwr_;
  std::vector<char> buf_;
  uint64_t inode_count_ = 0;
};

std::string Packer::path_of(uint32_t idx) const {
  std::vector<const std::string*> parts;
  for (uint32_t i = idx; i != kNone && nodes_[i].parent != kNone; i = nodes_[i].parent)
    parts.push_back(&nodes_[i].name);
  std::string p = root_path_;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) p += "/" + **it;
  return p;
}

void Packer::setup() {
  SQFS_COMPRESSOR id = SQFS_COMP_ZSTD;
  sqfs_u16 flags = 0;
  if (opts_.compressor == "gzip") id = SQFS_COMP_GZIP;
  if (opts_.compressor == "xz") id = SQFS_COMP_XZ;
  if (opts_.compressor == "lz4" || opts_.compressor == "lz4hc") id = SQFS_COMP_LZ4;
  if (opts_.compressor == "lz4hc") flags |= SQFS_COMP_FLAG_LZ4_HC;
  sqfs_compressor_config_t cfg;
  check(sqfs_compressor_config_init(&cfg, id, opts_.block_size, flags), "configure compressor");
  if (opts_.level >= 0 && id != SQFS_COMP_LZ4) cfg.level = static_cast<sqfs_u32>(opts_.level);
  sqfs_compressor_t* c = nullptr;
  check(sqfs_compressor_create(&cfg, &c), "create " + opts_.compressor + " compressor");
  cmp_.reset(c);
  sqfs_compressor_config_t ucfg;
  check(sqfs_compressor_config_init(&ucfg, id, opts_.block_size, SQFS_COMP_FLAG_UNCOMPRESS),
        "configure decompressor");
  check(sqfs_compressor_create(&ucfg, &c), "create decompressor");
  uncmp_.reset(c);

  const int64_t now =
      opts_.source_date_epoch ? *opts_.source_date_epoch : static_cast<int64_t>(::time(nullptr));
  check(sqfs_super_init(&super_, opts_.block_size, clamp_time(now, std::nullopt), id), "init superblock");
  check(sqfs_super_write(&super_, file_), "write superblock");
  int ret = cmp_->write_options(cmp_.get(), file_);
  if (ret < 0) check(ret, "write compressor options");
  if (ret > 0) super_.flags |= SQFS_FLAG_COMPRESSOR_OPTIONS;

  blkwr_.reset(sqfs_block_writer_create(file_, SQFS_DEVBLK_SIZE, 0));
  fragtbl_.reset(sqfs_frag_table_create(0));
  if (!blkwr_ || !fragtbl_) throw Error("libsquashfs: out of memory");
  unsigned workers = opts_.workers;
  if (workers == 0) {
    // One compression thread per CPU. Measured against two per CPU: libsquashfs wakes every idle
    // worker for each queued block, and with twice the workers this thread spent more time in
    // wake-ups than it gained (pack.sh, 2 CPUs: 0.50 s vs 0.57 s median).
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    workers = n > 0 ? static_cast<unsigned>(n) : 1;
  }
  sqfs_block_processor_desc_t desc{};
  desc.size = sizeof desc;
  desc.max_block_size = opts_.block_size;
  desc.num_workers = workers;
  // Blocks in flight, queued or compressed but not yet written: 16 MiB of them (256 at 64 KiB).
  // libsquashfs only writes finished blocks (and builds fragment blocks) when this limit is hit;
  // 8 to 512 blocks measured the same on the Debian tree, so the bound is set by memory.
  desc.max_backlog = std::max<unsigned>(workers * 8, (16u << 20) / opts_.block_size);
  desc.cmp = cmp_.get();
  desc.wr = blkwr_.get();
  desc.tbl = fragtbl_.get();
  // With the file and a decompressor, fragment deduplication compares bytes, not just a 32-bit hash.
  desc.file = file_;
  desc.uncmp = uncmp_.get();
  sqfs_block_processor_t* p = nullptr;
  check(sqfs_block_processor_create_ex(&desc, &p), "start compression workers");
  proc_.reset(p);
  idtbl_.reset(sqfs_id_table_create(0));
  xwr_.reset(sqfs_xattr_writer_create(0));
  im_.reset(sqfs_meta_writer_create(file_, cmp_.get(), 0));
  dm_.reset(sqfs_meta_writer_create(file_, cmp_.get(), SQFS_META_WRITER_KEEP_IN_MEMORY));
  if (!idtbl_ || !xwr_ || !im_ || !dm_) throw Error("libsquashfs: out of memory");
  dirwr_.reset(sqfs_dir_writer_create(dm_.get(), 0));
  if (!dirwr_) throw Error("libsquashfs: out of memory");
  buf_.resize(std::max<size_t>(opts_.block_size, 1 << 20));
}

void Packer::pack_file(FileJob& job) {
  Node& n = *job.node;
  auto fail = [&](int rc) {
    if (rc != 0) check(rc, "pack " + root_path_ + "/" + job.relpath);
  };
  fail(sqfs_block_processor_begin_file(proc_.get(), &n.file_inode, nullptr, 0));
  if (!job.fd) {
    if (job.len > 0) fail(sqfs_block_processor_append(proc_.get(), job.data, job.len));
  } else {
    // A big file: stream it (its size is from lstat(); a file that shrinks is packed as it is).
    uint64_t left = n.size;
    while (left > 0) {
      ssize_t r =
          ::read(job.fd.get(), buf_.data(), static_cast<size_t>(std::min<uint64_t>(left, buf_.size())));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) throw sys_error("read", root_path_ + "/" + job.relpath);
      if (r == 0) break;
      fail(sqfs_block_processor_append(proc_.get(), buf_.data(), static_cast<size_t>(r)));
      left -= static_cast<uint64_t>(r);
    }
  }
  fail(sqfs_block_processor_end_file(proc_.get()));
}

// Inode numbers in the order serialize() writes the inodes: a directory after its contents.
void Packer::number(uint32_t idx, uint32_t& next) {
  for (uint32_t c : nodes_[idx].children) {
    Node& n = nodes_[c];
    if (n.link_to != kNone) continue;
    if (S_ISDIR(n.mode)) {
      number(c, next);
    } else {
      n.inode_num = next++;
    }
  }
  nodes_[idx].inode_num = next++;
}

uint32_t Packer::xattr_index(const Node& n) {
  if (n.xattrs.empty()) return kNone;
  check(sqfs_xattr_writer_begin(xwr_.get(), 0), "record xattrs");
  for (const auto& [k, v] : n.xattrs)
    check(sqfs_xattr_writer_add(xwr_.get(), k.c_str(), v.data(), v.size()), "record xattr " + k);
  uint32_t out = kNone;
  check(sqfs_xattr_writer_end(xwr_.get(), &out), "record xattrs");
  return out;
}

void Packer::write_inode(Node& n, sqfs_inode_generic_t* inode) {
  inode->base.mode = static_cast<sqfs_u16>(n.mode);
  inode->base.mod_time = n.mtime;
  inode->base.inode_number = n.inode_num;
  check(sqfs_id_table_id_to_index(idtbl_.get(), n.uid, &inode->base.uid_idx), "record owner");
  check(sqfs_id_table_id_to_index(idtbl_.get(), n.gid, &inode->base.gid_idx), "record group");
  sqfs_u64 block;
  sqfs_u32 offset;
  sqfs_meta_writer_get_position(im_.get(), &block, &offset);
  n.inode_ref = (block << 16) | offset;
  check(sqfs_meta_writer_write_inode(im_.get(), inode), "write inode");
  ++inode_count_;
}

void Packer::serialize(uint32_t idx) {
  Node& dir = nodes_[idx];
  for (uint32_t c : dir.children) {
    Node& n = nodes_[c];
    if (n.link_to != kNone) continue;
    if (S_ISDIR(n.mode)) {
      serialize(c);
      continue;
    }
    sqfs_inode_generic_t* inode = nullptr;
    std::unique_ptr<sqfs_inode_generic_t, decltype(&sqfs_free)> owned(nullptr, sqfs_free);
    if (S_ISREG(n.mode)) {
      inode = n.file_inode;
    } else {
      const size_t extra = S_ISLNK(n.mode) ? n.target.size() : 0;
      owned.reset(static_cast<sqfs_inode_generic_t*>(std::calloc(1, sizeof(sqfs_inode_generic_t) + extra)));
      inode = owned.get();
      if (!inode) throw Error("out of memory");
      switch (n.mode & S_IFMT) {
        case S_IFLNK:
          inode->base.type = SQFS_INODE_SLINK;
          inode->data.slink.nlink = n.nlink;
          inode->data.slink.target_size = static_cast<sqfs_u32>(extra);
          std::memcpy(inode->extra, n.target.data(), extra);
          inode->payload_bytes_available = inode->payload_bytes_used = static_cast<sqfs_u32>(extra);
          break;
        case S_IFBLK:
        case S_IFCHR:
          inode->base.type = S_ISBLK(n.mode) ? SQFS_INODE_BDEV : SQFS_INODE_CDEV;
          inode->data.dev.nlink = n.nlink;
          inode->data.dev.devno = n.rdev;
          break;
        case S_IFIFO:
        case S_IFSOCK:
          inode->base.type = S_ISFIFO(n.mode) ? SQFS_INODE_FIFO : SQFS_INODE_SOCKET;
          inode->data.ipc.nlink = n.nlink;
          break;
        default:
          throw Error(path_of(c) + ": unsupported file type");
      }
    }
    // Setting "no xattrs" demotes an extended inode to a basic one, so it goes first; only extended
    // file inodes can say nlink > 1.
    check(sqfs_inode_set_xattr_index(inode, xattr_index(n)), "write inode");
    if (S_ISREG(n.mode) && n.nlink > 1) check(sqfs_inode_make_extended(inode), "write inode");
    if (inode->base.type == SQFS_INODE_EXT_FILE) inode->data.file_ext.nlink = n.nlink;
    write_inode(n, inode);
  }
  // The listing: every child (hard links point at the inode they share), in name order.
  check_at(sqfs_dir_writer_begin(dirwr_.get(), 0), "write directory", idx);
  for (uint32_t c : dir.children) {
    const Node& n = nodes_[c];
    const Node& t = n.link_to != kNone ? nodes_[n.link_to] : n;
    check_at(sqfs_dir_writer_add_entry(dirwr_.get(), n.name.c_str(), t.inode_num, t.inode_ref,
                                       static_cast<sqfs_u16>(t.mode)),
             "write directory", idx);
  }
  check_at(sqfs_dir_writer_end(dirwr_.get()), "write directory", idx);
  // mksquashfs gives the root a parent number one past the last inode; the kernel never uses it.
  const uint32_t parent_ino = dir.parent == kNone ? dir.inode_num + 1 : nodes_[dir.parent].inode_num;
  std::unique_ptr<sqfs_inode_generic_t, decltype(&sqfs_free)> inode(
      sqfs_dir_writer_create_inode(dirwr_.get(), 2 + dir.subdirs, xattr_index(dir), parent_ino), sqfs_free);
  if (!inode) throw Error("out of memory");
  // Set the link count ourselves: ".", the entry in the parent, and each subdirectory's "..".
  if (inode->base.type == SQFS_INODE_DIR) {
    inode->data.dir.nlink = 2 + dir.subdirs;
  } else {
    inode->data.dir_ext.nlink = 2 + dir.subdirs;
  }
  write_inode(dir, inode.get());
}

SquashStats Packer::run(const std::string& dir) {
  root_path_ = dir;
  while (root_path_.size() > 1 && root_path_.back() == '/') root_path_.pop_back();
  using Clock = std::chrono::steady_clock;
  squash::TreeReader tree(dir, opts_, nodes_);
  setup();
  const auto t0 = Clock::now();
  tree.start();
  Clock::duration waiting{}, feeding{};
  for (;;) {
    const auto a = Clock::now();
    FileJob* job = tree.next();
    const auto b = Clock::now();
    waiting += b - a;
    if (!job) break;
    pack_file(*job);
    tree.release(job);
    feeding += Clock::now() - b;
  }
  tree.stop();
  const auto t1 = Clock::now();
  struct timespec feeder_cpu {};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &feeder_cpu);
  check(sqfs_block_processor_finish(proc_.get()), "compress file data");
  const auto t2 = Clock::now();

  uint32_t next = 1;
  number(0, next);
  super_.inode_table_start = file_->get_size(file_);
  serialize(0);
  check(sqfs_meta_writer_flush(im_.get()), "write inode table");
  check(sqfs_meta_writer_flush(dm_.get()), "write directory table");
  super_.root_inode_ref = nodes_[0].inode_ref;
  super_.directory_table_start = file_->get_size(file_);
  check(sqfs_meta_write_write_to_file(dm_.get()), "write directory table");
  super_.inode_count = static_cast<sqfs_u32>(inode_count_);
  check(sqfs_frag_table_write(fragtbl_.get(), file_, &super_, cmp_.get()), "write fragment table");
  check(sqfs_id_table_write(idtbl_.get(), file_, &super_, cmp_.get()), "write id table");
  check(sqfs_xattr_writer_flush(xwr_.get(), file_, &super_, cmp_.get()), "write xattr table");
  super_.bytes_used = file_->get_size(file_);
  check(sqfs_super_write(&super_, file_), "write superblock");
  // Pad to 4 KiB like mksquashfs: loop devices and SIF partitions deal in whole pages.
  const uint64_t used = super_.bytes_used;
  const uint64_t padded = (used + 4095) / 4096 * 4096;
  if (padded > used) {
    std::vector<char> zeros(padded - used, 0);
    check(file_->write_at(file_, used, zeros.data(), zeros.size()), "pad image");
  }
  auto ms = [](auto a, auto b) {
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count());
  };
  log::debug("pack " + root_path_ + ": walk and read " + ms(t0, t1) + " ms (waiting for file data " +
             ms(Clock::duration{}, waiting) + " ms, feeding the compressors " +
             ms(Clock::duration{}, feeding) + " ms; this thread used " +
             std::to_string(feeder_cpu.tv_sec * 1000 + feeder_cpu.tv_nsec / 1000000) +
             " ms of CPU), compression tail " + ms(t1, t2) + " ms, tables " + ms(t2, Clock::now()) + " ms");
  SquashStats stats;
  const auto* ps = sqfs_block_processor_get_stats(proc_.get());
  stats.image_bytes = padded;
  stats.input_bytes = ps->input_bytes_read;
  stats.inodes = inode_count_;
  const uint64_t written = blkwr_->get_block_count(blkwr_.get());
  const uint64_t produced = ps->data_block_count + ps->frag_block_count;
  stats.duplicate_blocks = produced > written ? produced - written : 0;
  log::debug("pack " + root_path_ + ": " + std::to_string(ps->data_block_count) + " data blocks, " +
             std::to_string(ps->frag_block_count) + " fragment blocks, " +
             std::to_string(stats.duplicate_blocks) + " duplicate blocks, " +
             std::to_string(ps->total_frag_count - ps->actual_frag_count) + " of " +
             std::to_string(ps->total_frag_count) + " fragments deduplicated, " +
             std::to_string(ps->sparse_block_count) + " sparse blocks");
  return stats;
}

}  // namespace

void check_squash_options(SquashOptions& o) {
  if (o.compressor.empty()) o.compressor = "zstd";
  if (o.compressor == "gz") o.compressor = "gzip";
  struct Range {
    const char* name;
    int min, max, def;
  };
  static const Range kRanges[] = {
      {"zstd", 1, 22, 3}, {"gzip", 1, 9, 9}, {"xz", 0, 9, 6}, {"lz4", 0, 0, 0}, {"lz4hc", 0, 0, 0}};
  const Range* r = nullptr;
  for (const auto& x : kRanges) {
    if (o.compressor == x.name) r = &x;
  }
  if (!r) throw Error("unknown compressor '" + o.compressor + "' (use zstd, gzip, xz, lz4 or lz4hc)");
  if (o.level < 0) o.level = r->def;
  if (r->max == 0 && o.level != 0)
    throw Error("--compress-level does not apply to " + o.compressor + " (it has no levels)");
  if (r->max > 0 && (o.level < r->min || o.level > r->max))
    throw Error("--compress-level " + std::to_string(o.level) + " is out of range for " + o.compressor +
                " (" + std::to_string(r->min) + "-" + std::to_string(r->max) + ")");
  const uint32_t b = o.block_size;
  if (b < SQFS_MIN_BLOCK_SIZE || b > SQFS_MAX_BLOCK_SIZE || (b & (b - 1)) != 0)
    throw Error("--block-size " + std::to_string(b) + " must be a power of two from 4 KiB to 1 MiB");
}

std::optional<int64_t> source_date_epoch_from_env() {
  const char* v = ::getenv("SOURCE_DATE_EPOCH");
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long t = std::strtoll(v, &end, 10);
  if (errno != 0 || *end != '\0' || t < 0)
    throw Error("SOURCE_DATE_EPOCH='" + std::string(v) + "' is not a number of seconds since 1970");
  return static_cast<int64_t>(t);
}

SquashStats pack_squashfs(const std::string& dir, int fd, uint64_t offset, const SquashOptions& in) {
  SquashOptions opts = in;
  check_squash_options(opts);
  auto file = make_sqfs_file(fd, offset, 0, true);
  SquashStats stats;
  {
    Packer p(opts, file.get());
    stats = p.run(dir);
  }
  check(flush_sqfs_file(file.get()), "write the image of " + dir);
  return stats;
}

SquashStats pack_squashfs_file(const std::string& dir, const std::string& out, const SquashOptions& opts) {
  fs::AtomicFile f(out, 0644);  // mkostemp: opened read-write, as the block writer needs
  SquashStats s = pack_squashfs(dir, f.fd(), 0, opts);
  f.commit();
  return s;
}

}  // namespace rbox::image
