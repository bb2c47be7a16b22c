// SquashFS → directory (see squash_extract.hpp). Directories are created 0700 and get their real
// mode, owner and times only after their contents (creating entries would bump the mtime, and a
// read-only directory could not be filled). Every syscall is relative to a descriptor of a
// directory rbox created in this run; names were checked by the reader (no "/", ".", "..").
#include "image/squash_extract.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "image/squash_extract_reader_impl.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/userns.hpp"

namespace rbox::image {
namespace {

using Impl = SquashImage::Impl;

constexpr int kMaxDepth = 512;  // one open descriptor per level; far deeper than real trees

class Extractor {
 public:
  Extractor(SquashImage& img, const ExtractOptions& opts, std::string dest)
      : m_(img.impl()), opts_(opts), dest_(std::move(dest)), as_root_(userns::is_real_root()) {}

  ExtractStats run() {
    prepare_dest();
    InodePtr root = m_.root();
    seen_dirs_.insert(root->base.inode_number);
    extract_dir(root.get(), root_.get(), 0);
    apply_attrs(root_.get(), nullptr, root.get());
    if (stats_.skipped_devices > 0)
      log::warn(std::to_string(stats_.skipped_devices) + " device node(s) in " + m_.path +
                " were not created in " + dest_ + " (that needs real root)");
    if (stats_.setid_dropped > 0)
      log::info("dropped the setuid/setgid bits of " + std::to_string(stats_.setid_dropped) +
                " file(s) from " + m_.path +
                ": extracted as root they would grant root to anyone who can run them");
    if (stats_.skipped_xattrs > 0)
      log::verbose(std::to_string(stats_.skipped_xattrs) + " extended attribute(s) could not be set in " +
                   dest_);
    return stats_;
  }

 private:
  std::string shown(const std::string& name) const {
    std::string p = dest_;
    for (const auto& c : path_) p += "/" + c;
    return p + "/" + name;
  }

  void prepare_dest() {
    if (::mkdir(dest_.c_str(), 0700) != 0) {
      if (errno != EEXIST) throw sys_error("create directory", dest_);
      root_.reset(::open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!root_) throw sys_error("open directory", dest_);
      int dup = ::dup(root_.get());
      DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
      if (!d) throw sys_error("read directory", dest_);
      bool empty = true;
      while (struct dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
      }
      ::closedir(d);
      if (!empty) throw Error(dest_ + ": directory is not empty; extract into a new or empty directory");
      return;
    }
    root_.reset(::open(dest_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_) throw sys_error("open directory", dest_);
  }

  mode_t final_mode(const sqfs_inode_generic_t* inode) {
    mode_t mode = inode->base.mode & 07777;
    if (as_root_ && !opts_.keep_setid_as_root && !S_ISDIR(inode->base.mode) && (mode & (S_ISUID | S_ISGID))) {
      mode &= ~(S_ISUID | S_ISGID);
      ++stats_.setid_dropped;
    }
    return mode;
  }

  void set_xattrs(int fd, const std::string& proc_path, const sqfs_inode_generic_t* inode) {
    for (const auto& [k, v] : m_.read_xattrs(inode)) {
      int rc = fd >= 0 ? ::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0)
                       : ::lsetxattr(proc_path.c_str(), k.c_str(), v.data(), v.size(), 0);
      if (rc != 0) ++stats_.skipped_xattrs;  // EPERM (security.* rootless), ENOTSUP, symlinks
    }
  }

  // Owner, mode, times (and xattrs) of an entry: through fd when we have one (files, dirs), else by
  // name relative to dirfd without following (symlinks, devices, FIFOs).
  void apply_attrs(int fd, const char* name, const sqfs_inode_generic_t* inode, int dirfd = -1) {
    const std::string proc = name ? "/proc/self/fd/" + std::to_string(dirfd) + "/" + name : std::string();
    // chown(2) clears security.capability and the set-id bits, so owner first, then xattrs,
    // then the mode.
    if (opts_.preserve_owners && as_root_) {
      uid_t uid = m_.uid(inode);
      gid_t gid = m_.gid(inode);
      int rc = fd >= 0 ? ::fchown(fd, uid, gid) : ::fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW);
      if (rc != 0) throw sys_error("chown", name ? shown(name) : dest_);
    }
    set_xattrs(fd, proc, inode);
    const bool link = S_ISLNK(inode->base.mode);
    if (!link) {
      int rc = fd >= 0 ? ::fchmod(fd, final_mode(inode)) : ::fchmodat(dirfd, name, final_mode(inode), 0);
      if (rc != 0) throw sys_error("chmod", name ? shown(name) : dest_);
    }
    struct timespec ts[2];
    ts[0].tv_sec = ts[1].tv_sec = static_cast<time_t>(inode->base.mod_time);
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    int rc = fd >= 0 ? ::futimens(fd, ts) : ::utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) throw sys_error("set times of", name ? shown(name) : dest_);
  }

  void write_file(int dirfd, const DirItem& item) {
    UniqueFd fd(
        ::openat(dirfd, item.name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw sys_error("create", shown(item.name));
    const uint64_t size = Impl::file_size(item.inode.get());
    m_.read_data(item.inode.get(), [&](const uint8_t* p, size_t n) {
      // Whole zero blocks (sparse in the image) become holes.
      bool zero = n >= 4096 && p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
      if (zero) {
        if (::lseek(fd.get(), static_cast<off_t>(n), SEEK_CUR) < 0) throw sys_error("seek", shown(item.name));
        return;
      }
      while (n > 0) {
        ssize_t w = ::write(fd.get(), p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) throw sys_error("write", shown(item.name));
        p += w;
        n -= static_cast<size_t>(w);
      }
    });
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) throw sys_error("truncate", shown(item.name));
    apply_attrs(fd.get(), nullptr, item.inode.get());
    stats_.bytes += size;
    ++stats_.files;
  }

  // Opens the directory holding a previously extracted entry, one O_NOFOLLOW component at a time.
  UniqueFd open_parent(const std::vector<std::string>& comps) {
    UniqueFd cur(::dup(root_.get()));
    for (size_t i = 0; i + 1 < comps.size(); ++i) {
      UniqueFd next(::openat(cur.get(), comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!next) throw sys_error("open directory", dest_ + "/" + comps[i]);
      cur = std::move(next);
    }
    return cur;
  }

  bool make_hardlink(int dirfd, const DirItem& item) {
    const uint32_t ino = item.inode->base.inode_number;
    if (skipped_.count(ino)) {  // another name of a device node we could not create
      ++stats_.skipped_devices;
      return true;
    }
    auto it = first_.find(ino);
    if (it == first_.end()) {
      if (Impl::nlink(item.inode.get()) > 1) {
        auto comps = path_;
        comps.push_back(item.name);
        first_.emplace(ino, std::move(comps));
      }
      return false;
    }
    UniqueFd parent = open_parent(it->second);
    if (::linkat(parent.get(), it->second.back().c_str(), dirfd, item.name.c_str(), 0) != 0)
      throw sys_error("hard link", shown(item.name));
    ++stats_.hardlinks;
    return true;
  }

  void extract_dir(const sqfs_inode_generic_t* dir, int dirfd, int depth) {
    if (depth > kMaxDepth)
      throw Error(m_.path + ": directories nested deeper than " + std::to_string(kMaxDepth));
    std::vector<DirItem> items = m_.read_dir(dir);
    for (auto& item : items) {
      const sqfs_inode_generic_t* inode = item.inode.get();
      const char* name = item.name.c_str();
      const mode_t type = inode->base.mode & S_IFMT;
      if (type == S_IFDIR) {
        // A directory inode reachable twice would be a loop or an exponential tree.
        if (!seen_dirs_.insert(inode->base.inode_number).second)
          throw Error(m_.path + ": corrupt SquashFS: directory " + shown(item.name) + " appears twice");
        if (::mkdirat(dirfd, name, 0700) != 0) throw sys_error("create directory", shown(item.name));
        UniqueFd sub(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) throw sys_error("open directory", shown(item.name));
        path_.push_back(item.name);
        extract_dir(inode, sub.get(), depth + 1);
        path_.pop_back();
        apply_attrs(sub.get(), nullptr, inode);
        ++stats_.dirs;
        continue;
      }
      if (make_hardlink(dirfd, item)) continue;
      switch (type) {
        case S_IFREG:
          write_file(dirfd, item);
          break;
        case S_IFLNK:
          if (::symlinkat(Impl::link_target(inode).c_str(), dirfd, name) != 0)
            throw sys_error("create symlink", shown(item.name));
          apply_attrs(-1, name, inode, dirfd);
          ++stats_.symlinks;
          break;
        case S_IFCHR:
        case S_IFBLK: {
          const uint32_t d = Impl::devno(inode);
          const dev_t dev = makedev((d >> 8) & 0xfff, (d & 0xff) | ((d >> 12) & 0xfff00));
          if (::mknodat(dirfd, name, type | 0600, dev) != 0) {
            if (errno != EPERM) throw sys_error("create device node", shown(item.name));
            ++stats_.skipped_devices;
            skipped_.insert(inode->base.inode_number);
            break;
          }
          apply_attrs(-1, name, inode, dirfd);
          ++stats_.others;
          break;
        }
        case S_IFIFO:
        case S_IFSOCK:
          if (::mknodat(dirfd, name, type | 0600, 0) != 0) throw sys_error("create", shown(item.name));
          apply_attrs(-1, name, inode, dirfd);
          ++stats_.others;
          break;
        default:
          throw Error(m_.path + ": corrupt SquashFS: unknown file type of " + shown(item.name));
      }
    }
  }

  SquashImage::Impl& m_;
  const ExtractOptions& opts_;
  std::string dest_;
  bool as_root_;
  UniqueFd root_;
  std::vector<std::string> path_;  // components from dest to the directory being filled
  std::unordered_map<uint32_t, std::vector<std::string>> first_;  // inode number → first path
  std::unordered_set<uint32_t> seen_dirs_;
  std::unordered_set<uint32_t> skipped_;  // device inodes not created (rootless)
  ExtractStats stats_;
};

}  // namespace

ExtractStats extract_squashfs(const std::string& image, uint64_t offset, uint64_t size,
                              const std::string& dest, const ExtractOptions& opts) {
  SquashImage img(image, offset, size);
  Extractor x(img, opts, dest);
  return x.run();
}

}  // namespace rbox::image
