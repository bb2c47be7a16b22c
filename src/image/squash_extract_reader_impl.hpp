// Internals of SquashImage shared by the reader and the extractor: the libsquashfs objects of one
// opened image and inode-level helpers. Not a public interface; include only from squash_extract*.
#pragma once

#include <sqfs/compressor.h>
#include <sqfs/data_reader.h>
#include <sqfs/dir_reader.h>
#include <sqfs/id_table.h>
#include <sqfs/inode.h>
#include <sqfs/super.h>
#include <sqfs/xattr_reader.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "image/squash_extract_reader.hpp"
#include "image/squash_writer_io.hpp"
#include "util/fd.hpp"

namespace rbox::image {

struct SqfsFree {
  void operator()(void* p) const { sqfs_free(p); }
};
using InodePtr = std::unique_ptr<sqfs_inode_generic_t, SqfsFree>;

struct DirItem {
  std::string name;
  InodePtr inode;
};

struct SquashImage::Impl {
  std::string path;
  UniqueFd fd;
  SqfsPtr<sqfs_file_t> file;
  sqfs_super_t super{};
  SqfsPtr<sqfs_compressor_t> cmp;
  SqfsPtr<sqfs_id_table_t> ids;
  SqfsPtr<sqfs_dir_reader_t> dirs;
  SqfsPtr<sqfs_data_reader_t> data;
  SqfsPtr<sqfs_xattr_reader_t> xattrs;  // null when the image has none

  InodePtr root();
  // Every entry of a directory inode, names checked (no "", ".", "..", "/"). Throws on corruption.
  std::vector<DirItem> read_dir(const sqfs_inode_generic_t* dir);
  // Resolves an absolute path inside the image, following symlinks inside the image (at most 40);
  // the last component is followed when follow_last. Null when a component is missing.
  InodePtr resolve(const std::string& path, bool follow_last);
  // Streams a regular file's bytes to sink in order; checks the total against the inode's size.
  void read_data(const sqfs_inode_generic_t* inode, const std::function<void(const uint8_t*, size_t)>& sink);
  std::vector<std::pair<std::string, std::string>> read_xattrs(const sqfs_inode_generic_t* inode);
  uint32_t uid(const sqfs_inode_generic_t* inode);
  uint32_t gid(const sqfs_inode_generic_t* inode);
  // Link count, device number, symlink target of any inode type.
  static uint32_t nlink(const sqfs_inode_generic_t* inode);
  static uint32_t devno(const sqfs_inode_generic_t* inode);
  static std::string link_target(const sqfs_inode_generic_t* inode);
  static uint64_t file_size(const sqfs_inode_generic_t* inode);
  [[noreturn]] void fail(const std::string& what, int code = 0) const;
};

}  // namespace rbox::image
