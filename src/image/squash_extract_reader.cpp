// SquashImage (see squash_extract_reader.hpp): libsquashfs's reader objects over (fd, offset).
// Directory names from the image are checked before anyone uses them as path components.
#include "image/squash_extract_reader.hpp"

#include <fcntl.h>
#include <sqfs/dir.h>
#include <sqfs/error.h>
#include <sqfs/xattr.h>
#include <sys/stat.h>

#include <cstring>

#include "image/squash_extract_reader_impl.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace rbox::image {
namespace {

constexpr uint32_t kNoXattr = 0xFFFFFFFF;
constexpr int kMaxSymlinkHops = 40;

bool is_dir(const sqfs_inode_generic_t* i) {
  return i->base.type == SQFS_INODE_DIR || i->base.type == SQFS_INODE_EXT_DIR;
}
bool is_file(const sqfs_inode_generic_t* i) {
  return i->base.type == SQFS_INODE_FILE || i->base.type == SQFS_INODE_EXT_FILE;
}
bool is_symlink(const sqfs_inode_generic_t* i) {
  return i->base.type == SQFS_INODE_SLINK || i->base.type == SQFS_INODE_EXT_SLINK;
}

}  // namespace

void SquashImage::Impl::fail(const std::string& what, int code) const {
  throw Error(path + ": " + what + (code != 0 ? ": " + sqfs_error_text(code) : ""));
}

InodePtr SquashImage::Impl::root() {
  sqfs_inode_generic_t* inode = nullptr;
  int rc = sqfs_dir_reader_get_root_inode(dirs.get(), &inode);
  if (rc != 0) fail("cannot read the root directory", rc);
  InodePtr p(inode);
  if (!is_dir(inode)) fail("corrupt SquashFS: the root inode is not a directory");
  return p;
}

std::vector<DirItem> SquashImage::Impl::read_dir(const sqfs_inode_generic_t* dir) {
  std::vector<DirItem> out;
  int rc = sqfs_dir_reader_open_dir(dirs.get(), dir, SQFS_DIR_OPEN_NO_DOT_ENTRIES);
  if (rc != 0) fail("cannot read a directory", rc);
  for (;;) {
    sqfs_dir_entry_t* ent = nullptr;
    rc = sqfs_dir_reader_read(dirs.get(), &ent);
    if (rc > 0) break;
    if (rc < 0) fail("cannot read a directory", rc);
    std::unique_ptr<sqfs_dir_entry_t, SqfsFree> e(ent);
    std::string name(reinterpret_cast<const char*>(ent->name), static_cast<size_t>(ent->size) + 1);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos)
      fail("corrupt SquashFS: invalid file name \"" + name + "\" in a directory");
    sqfs_inode_generic_t* inode = nullptr;
    rc = sqfs_dir_reader_get_inode(dirs.get(), &inode);
    if (rc != 0) fail("cannot read the inode of " + name, rc);
    out.push_back(DirItem{std::move(name), InodePtr(inode)});
  }
  return out;
}

InodePtr SquashImage::Impl::resolve(const std::string& p, bool follow_last) {
  std::vector<InodePtr> stack;  // directories from the root down to the current one
  stack.push_back(root());
  std::vector<std::string> todo;  // remaining components, last one at the front
  for (const auto& c : str::split(p, '/')) {
    if (!c.empty()) todo.insert(todo.begin(), c);
  }
  int hops = 0;
  while (!todo.empty()) {
    std::string name = todo.back();
    todo.pop_back();
    if (name == ".") continue;
    if (name == "..") {
      if (stack.size() > 1) stack.pop_back();
      continue;
    }
    const sqfs_inode_generic_t* cur = stack.back().get();
    if (!is_dir(cur)) return nullptr;
    int rc = sqfs_dir_reader_open_dir(dirs.get(), cur, SQFS_DIR_OPEN_NO_DOT_ENTRIES);
    if (rc != 0) fail("cannot read a directory", rc);
    rc = sqfs_dir_reader_find(dirs.get(), name.c_str());
    if (rc == SQFS_ERROR_NO_ENTRY) return nullptr;
    if (rc != 0) fail("cannot look up " + name, rc);
    sqfs_inode_generic_t* raw = nullptr;
    rc = sqfs_dir_reader_get_inode(dirs.get(), &raw);
    if (rc != 0) fail("cannot read the inode of " + name, rc);
    InodePtr inode(raw);
    if (is_symlink(raw) && (!todo.empty() || follow_last)) {
      if (++hops > kMaxSymlinkHops) return nullptr;  // ELOOP
      std::string target = link_target(raw);
      if (!target.empty() && target[0] == '/') stack.resize(1);
      auto parts = str::split(target, '/');
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (!it->empty()) todo.push_back(*it);
      }
      continue;
    }
    stack.push_back(std::move(inode));
  }
  return std::move(stack.back());
}

void SquashImage::Impl::read_data(const sqfs_inode_generic_t* inode,
                                  const std::function<void(const uint8_t*, size_t)>& sink) {
  const uint64_t size = file_size(inode);
  uint64_t done = 0;
  const size_t blocks = sqfs_inode_get_file_block_count(inode);
  for (size_t i = 0; i < blocks; ++i) {
    size_t n = 0;
    sqfs_u8* blk = nullptr;
    int rc = sqfs_data_reader_get_block(data.get(), inode, i, &n, &blk);
    if (rc != 0) fail("cannot read file data", rc);
    std::unique_ptr<sqfs_u8, SqfsFree> b(blk);
    if (n > size - done) fail("corrupt SquashFS: file data longer than the file size");
    sink(blk, n);
    done += n;
  }
  sqfs_u32 frag_idx = 0, frag_off = 0;
  sqfs_inode_get_frag_location(inode, &frag_idx, &frag_off);
  if (frag_idx != 0xFFFFFFFF && done < size) {
    size_t n = 0;
    sqfs_u8* blk = nullptr;
    int rc = sqfs_data_reader_get_fragment(data.get(), inode, &n, &blk);
    if (rc != 0) fail("cannot read file data (fragment)", rc);
    std::unique_ptr<sqfs_u8, SqfsFree> b(blk);
    if (n > size - done) fail("corrupt SquashFS: file data longer than the file size");
    sink(blk, n);
    done += n;
  }
  if (done != size) fail("corrupt SquashFS: file data shorter than the file size");
}

std::vector<std::pair<std::string, std::string>> SquashImage::Impl::read_xattrs(
    const sqfs_inode_generic_t* inode) {
  std::vector<std::pair<std::string, std::string>> out;
  sqfs_u32 idx = kNoXattr;
  if (!xattrs || sqfs_inode_get_xattr_index(inode, &idx) != 0 || idx == kNoXattr) return out;
  sqfs_xattr_id_t desc;
  int rc = sqfs_xattr_reader_get_desc(xattrs.get(), idx, &desc);
  if (rc == 0) rc = sqfs_xattr_reader_seek_kv(xattrs.get(), &desc);
  if (rc != 0) fail("cannot read extended attributes", rc);
  for (sqfs_u32 i = 0; i < desc.count; ++i) {
    sqfs_xattr_entry_t* key = nullptr;
    sqfs_xattr_value_t* value = nullptr;
    rc = sqfs_xattr_reader_read_key(xattrs.get(), &key);
    if (rc != 0) fail("cannot read extended attributes", rc);
    std::unique_ptr<sqfs_xattr_entry_t, SqfsFree> k(key);
    rc = sqfs_xattr_reader_read_value(xattrs.get(), key, &value);
    if (rc != 0) fail("cannot read extended attributes", rc);
    std::unique_ptr<sqfs_xattr_value_t, SqfsFree> v(value);
    const char* prefix =
        sqfs_get_xattr_prefix(static_cast<SQFS_XATTR_TYPE>(key->type & SQFS_XATTR_PREFIX_MASK));
    if (!prefix) continue;
    // read_key returns the full name ("user.foo", NUL-terminated); size counts only the part
    // after the prefix.
    out.emplace_back(std::string(reinterpret_cast<const char*>(key->key), std::strlen(prefix) + key->size),
                     std::string(reinterpret_cast<const char*>(value->value), value->size));
  }
  return out;
}

uint32_t SquashImage::Impl::uid(const sqfs_inode_generic_t* inode) {
  sqfs_u32 id = 0;
  if (sqfs_id_table_index_to_id(ids.get(), inode->base.uid_idx, &id) != 0)
    fail("corrupt SquashFS: bad owner id");
  return id;
}

uint32_t SquashImage::Impl::gid(const sqfs_inode_generic_t* inode) {
  sqfs_u32 id = 0;
  if (sqfs_id_table_index_to_id(ids.get(), inode->base.gid_idx, &id) != 0)
    fail("corrupt SquashFS: bad group id");
  return id;
}

uint32_t SquashImage::Impl::nlink(const sqfs_inode_generic_t* i) {
  switch (i->base.type) {
    case SQFS_INODE_DIR:
      return i->data.dir.nlink;
    case SQFS_INODE_EXT_DIR:
      return i->data.dir_ext.nlink;
    case SQFS_INODE_FILE:
      return 1;
    case SQFS_INODE_EXT_FILE:
      return i->data.file_ext.nlink;
    case SQFS_INODE_SLINK:
      return i->data.slink.nlink;
    case SQFS_INODE_EXT_SLINK:
      return i->data.slink_ext.nlink;
    case SQFS_INODE_BDEV:
    case SQFS_INODE_CDEV:
      return i->data.dev.nlink;
    case SQFS_INODE_EXT_BDEV:
    case SQFS_INODE_EXT_CDEV:
      return i->data.dev_ext.nlink;
    case SQFS_INODE_FIFO:
    case SQFS_INODE_SOCKET:
      return i->data.ipc.nlink;
    default:
      return i->data.ipc_ext.nlink;
  }
}

uint32_t SquashImage::Impl::devno(const sqfs_inode_generic_t* i) {
  if (i->base.type == SQFS_INODE_BDEV || i->base.type == SQFS_INODE_CDEV) return i->data.dev.devno;
  if (i->base.type == SQFS_INODE_EXT_BDEV || i->base.type == SQFS_INODE_EXT_CDEV)
    return i->data.dev_ext.devno;
  return 0;
}

std::string SquashImage::Impl::link_target(const sqfs_inode_generic_t* i) {
  // libsquashfs bounds target_size by the payload it allocated for the inode.
  size_t n = i->base.type == SQFS_INODE_EXT_SLINK ? i->data.slink_ext.target_size : i->data.slink.target_size;
  n = std::min<size_t>(n, i->payload_bytes_used);
  return std::string(reinterpret_cast<const char*>(i->extra), n);
}

uint64_t SquashImage::Impl::file_size(const sqfs_inode_generic_t* i) {
  sqfs_u64 size = 0;
  sqfs_inode_get_file_size(i, &size);
  return size;
}

SquashImage::SquashImage(const std::string& path, uint64_t offset, uint64_t size)
    : path_(path), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!m.fd) throw sys_error("open", path);
  struct stat st;
  if (::fstat(m.fd.get(), &st) != 0) throw sys_error("stat", path);
  const uint64_t fsize = static_cast<uint64_t>(st.st_size);
  if (offset > fsize) m.fail("SquashFS offset " + std::to_string(offset) + " is past the end of the file");
  if (size == 0 || size > fsize - offset) size = fsize - offset;
  m.file = make_sqfs_file(m.fd.get(), offset, size, false);
  int rc = sqfs_super_read(&m.super, m.file.get());
  if (rc != 0) m.fail("not a readable SquashFS image", rc);
  sqfs_compressor_config_t cfg;
  rc = sqfs_compressor_config_init(&cfg, static_cast<SQFS_COMPRESSOR>(m.super.compression_id),
                                   m.super.block_size, SQFS_COMP_FLAG_UNCOMPRESS);
  sqfs_compressor_t* cmp = nullptr;
  if (rc == 0) rc = sqfs_compressor_create(&cfg, &cmp);
  if (rc != 0)
    m.fail("unsupported SquashFS compressor " + std::to_string(m.super.compression_id) +
               " (rbox reads gzip, xz, "
               "lz4, zstd)",
           rc);
  m.cmp.reset(cmp);
  if (m.super.flags & SQFS_FLAG_COMPRESSOR_OPTIONS) {
    rc = m.cmp->read_options(m.cmp.get(), m.file.get());
    if (rc < 0) m.fail("cannot read the compressor options", rc);
  }
  m.ids.reset(sqfs_id_table_create(0));
  if (!m.ids) throw Error("out of memory");
  rc = sqfs_id_table_read(m.ids.get(), m.file.get(), &m.super, m.cmp.get());
  if (rc != 0) m.fail("cannot read the id table", rc);
  m.dirs.reset(sqfs_dir_reader_create(&m.super, m.cmp.get(), m.file.get(), 0));
  m.data.reset(sqfs_data_reader_create(m.file.get(), m.super.block_size, m.cmp.get(), 0));
  if (!m.dirs || !m.data) throw Error("out of memory");
  rc = sqfs_data_reader_load_fragment_table(m.data.get(), &m.super);
  if (rc != 0) m.fail("cannot read the fragment table", rc);
  if (!(m.super.flags & SQFS_FLAG_NO_XATTRS) && m.super.xattr_id_table_start != 0xFFFFFFFFFFFFFFFFull) {
    m.xattrs.reset(sqfs_xattr_reader_create(0));
    if (!m.xattrs) throw Error("out of memory");
    rc = sqfs_xattr_reader_load(m.xattrs.get(), &m.super, m.file.get(), m.cmp.get());
    if (rc != 0) m.fail("cannot read the xattr table", rc);
  }
}

SquashImage::~SquashImage() = default;

uint32_t SquashImage::block_size() const {
  return impl_->super.block_size;
}

std::string SquashImage::compressor() const {
  const char* n = sqfs_compressor_name_from_id(static_cast<SQFS_COMPRESSOR>(impl_->super.compression_id));
  return n ? n : "unknown";
}

uint32_t SquashImage::inode_count() const {
  return impl_->super.inode_count;
}

std::optional<std::string> SquashImage::read_file(const std::string& p, uint64_t max_size) {
  InodePtr inode = impl_->resolve(p, true);
  if (!inode || !is_file(inode.get())) return std::nullopt;
  const uint64_t size = Impl::file_size(inode.get());
  if (size > max_size)
    impl_->fail(p + " is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_size) +
                " rbox reads from an image");
  std::string out;
  out.reserve(size);
  impl_->read_data(inode.get(),
                   [&](const uint8_t* d, size_t n) { out.append(reinterpret_cast<const char*>(d), n); });
  return out;
}

std::optional<SquashStat> SquashImage::stat(const std::string& p) {
  InodePtr inode = impl_->resolve(p, false);
  if (!inode) return std::nullopt;
  const sqfs_inode_generic_t* i = inode.get();
  SquashStat st;
  st.mode = i->base.mode;
  st.uid = impl_->uid(i);
  st.gid = impl_->gid(i);
  st.mtime = i->base.mod_time;
  st.nlink = Impl::nlink(i);
  st.inode_number = i->base.inode_number;
  if (is_file(i)) st.size = Impl::file_size(i);
  if (is_symlink(i)) st.target = Impl::link_target(i);
  st.xattrs = impl_->read_xattrs(i);
  return st;
}

std::optional<std::vector<SquashEntry>> SquashImage::list_dir(const std::string& p) {
  InodePtr inode = impl_->resolve(p, true);
  if (!inode || !is_dir(inode.get())) return std::nullopt;
  std::vector<SquashEntry> out;
  for (auto& item : impl_->read_dir(inode.get()))
    out.push_back(SquashEntry{item.name, item.inode->base.mode});
  return out;
}

}  // namespace rbox::image
