// TreeReader (see squash_writer_tree.hpp). Why threads: with a cold page cache every small file
// costs a disk round trip, and reading them one after another left the compression workers idle;
// several readers keep the device queue full. With a warm cache they take the open/read/close
// syscalls off the thread that feeds libsquashfs. Files still reach the packer in walk order.
#include "image/squash_writer_tree.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "util/error.hpp"

namespace rbox::image::squash {
namespace {

// Files up to this size are read whole by a reader; bigger ones are streamed by the packer.
constexpr uint64_t kWholeFileMax = 4 << 20;
// The read-ahead ring: bytes read ahead of the packer at most.
constexpr uint64_t kRing = 32 << 20;

bool keep_xattr(const char* key) {
  return std::strncmp(key, "user.", 5) == 0 || std::strcmp(key, "security.capability") == 0;
}

// The xattrs worth keeping. fd >= 0: flistxattr/fgetxattr; else the l* calls on path (symlinks
// and special files cannot be opened without following them or blocking).
Xattrs read_xattrs(int fd, const std::string& path) {
  Xattrs out;
  char names[65536];
  ssize_t n =
      fd >= 0 ? ::flistxattr(fd, names, sizeof names) : ::llistxattr(path.c_str(), names, sizeof names);
  if (n <= 0) return out;  // none, or the filesystem has no xattrs (ENOTSUP)
  for (const char* k = names; k < names + n; k += std::strlen(k) + 1) {
    if (!keep_xattr(k)) continue;
    std::string value(65536, '\0');
    ssize_t v = fd >= 0 ? ::fgetxattr(fd, k, value.data(), value.size())
                        : ::lgetxattr(path.c_str(), k, value.data(), value.size());
    if (v < 0) continue;  // removed meanwhile
    value.resize(static_cast<size_t>(v));
    out.emplace_back(k, std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Opens a file below root without following any symlink (openat2(2) RESOLVE_NO_SYMLINKS): the
// walker only descended real directories, so a symlink here means the tree changed under us.
int open_beneath(int rootfd, const std::string& rel, int flags) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) return ::openat(rootfd, rel.c_str(), flags | O_CLOEXEC | O_NOFOLLOW);
  return static_cast<int>(fd);
}

// One reader per CPU, at least two. Measured on the Debian tree with 2 CPUs (pack.sh): a cold
// cache needs a second reader (0.67 → 0.44 s) and gains little from more (0.42 s with four); a warm
// cache pays for every extra thread in wake-ups (0.34 s with one, 0.35 with two, 0.37–0.40 with four).
unsigned reader_count() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<unsigned>(std::clamp<long>(n, 2, 8));
}

}  // namespace

uint32_t clamp_time(int64_t t, const std::optional<int64_t>& sde) {
  if (sde && t > *sde) t = *sde;
  if (t < 0) return 0;
  if (t > 0xFFFFFFFFll) return 0xFFFFFFFFu;
  return static_cast<uint32_t>(t);
}

TreeReader::TreeReader(const std::string& root, const SquashOptions& opts, std::deque<Node>& nodes)
    : root_(root), opts_(opts), nodes_(nodes) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();  // "tree/" → "tree/etc" in messages
  rootfd_.reset(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd_) throw sys_error("open directory", root);
  struct stat st;
  if (::fstat(rootfd_.get(), &st) != 0) throw sys_error("stat", root);
  nodes_.emplace_back();
  Node& r = nodes_.back();
  r.mode = st.st_mode;
  r.mtime = clamp_time(st.st_mtime, opts_.source_date_epoch);
  if (opts_.owners == SquashOptions::Owners::kPreserve) {
    r.uid = st.st_uid;
    r.gid = st.st_gid;
  }
  if (opts_.xattrs) r.xattrs = read_xattrs(rootfd_.get(), {});
}

TreeReader::~TreeReader() {
  stop();
}

void TreeReader::start() {
  walker_ = std::thread([this] { walk_thread(); });
  const unsigned n = reader_count();
  for (unsigned i = 0; i < n; ++i) readers_.emplace_back([this] { reader_thread(); });
}

void TreeReader::stop() {
  {
    std::lock_guard lk(m_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  if (walker_.joinable()) walker_.join();
  for (auto& t : readers_) {
    if (t.joinable()) t.join();
  }
  readers_.clear();
}

void TreeReader::fail(std::exception_ptr e) {
  {
    std::lock_guard lk(m_);
    if (!error_) error_ = e;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
}

void TreeReader::walk_thread() {
  try {
    walk(rootfd_.get(), 0, "");
  } catch (...) {
    fail(std::current_exception());
  }
  {
    std::lock_guard lk(m_);
    walk_done_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
}

uint32_t TreeReader::add_child(int dirfd, uint32_t parent, const std::string& name, const std::string& rel) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    throw sys_error("stat", root_ + "/" + rel);
  const uint32_t idx = static_cast<uint32_t>(nodes_.size());
  nodes_.emplace_back();
  Node& n = nodes_.back();
  n.name = name;
  n.parent = parent;
  n.mode = st.st_mode;
  n.size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  n.mtime = clamp_time(st.st_mtime, opts_.source_date_epoch);
  if (opts_.owners == SquashOptions::Owners::kPreserve) {
    n.uid = st.st_uid;
    n.gid = st.st_gid;
  }
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    auto [it, inserted] = hardlinks_[st.st_dev].emplace(st.st_ino, idx);
    if (!inserted) {
      n.link_to = it->second;
      nodes_[it->second].nlink++;
      return idx;
    }
  }
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    // SquashFS stores the kernel's new_encode_dev(): minor low byte, major, then minor's high bits.
    unsigned ma = major(st.st_rdev), mi = minor(st.st_rdev);
    n.rdev = (mi & 0xff) | (ma << 8) | ((mi & ~0xffu) << 12);
  }
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4095) + 1, '\0');
    ssize_t len = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
    if (len < 0) throw sys_error("readlink", root_ + "/" + rel);
    target.resize(static_cast<size_t>(len));
    n.target = std::move(target);
  }
  if (opts_.xattrs && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
    n.xattrs = read_xattrs(-1, "/proc/self/fd/" + std::to_string(dirfd) + "/" + name);
  return idx;
}

void TreeReader::walk(int dirfd, uint32_t idx, const std::string& rel) {
  const std::string shown = root_ + (rel.empty() ? "" : "/" + rel);
  std::vector<std::string> names;
  {
    int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
    if (!d) {
      if (dup >= 0) ::close(dup);
      throw sys_error("read directory", shown);
    }
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        names.emplace_back(e->d_name);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) throw sys_error("read directory", shown, err);
  }
  std::sort(names.begin(), names.end());  // byte order: what SquashFS lookups binary-search on
  for (const auto& name : names) {
    {
      std::lock_guard lk(m_);
      if (stopping_ || error_) return;
    }
    const std::string child_rel = rel.empty() ? name : rel + "/" + name;
    const uint32_t c = add_child(dirfd, idx, name, child_rel);
    nodes_[idx].children.push_back(c);
    Node& child = nodes_[c];
    if (child.link_to != kNone) continue;
    if (S_ISDIR(child.mode)) {
      nodes_[idx].subdirs++;
      UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) {
        int err = errno;
        std::string hint =
            err == EACCES ? " (every file must be readable by you: chmod -R u+rX " + root_ + ")" : "";
        throw Error(sys_error("open directory", root_ + "/" + child_rel, err).message() + hint);
      }
      if (opts_.xattrs) child.xattrs = read_xattrs(sub.get(), {});
      walk(sub.get(), c, child_rel);
    } else if (S_ISREG(child.mode)) {
      {
        std::lock_guard lk(m_);
        jobs_.emplace_back();
        jobs_.back().node = &child;
        jobs_.back().relpath = child_rel;
      }
      work_cv_.notify_one();
    }
  }
}

void TreeReader::read_job(FileJob& job, char* buf) {
  const std::string shown = root_ + "/" + job.relpath;
  // O_NOATIME keeps the tree's atimes (allowed on own files); else open without it.
  int fd = open_beneath(rootfd_.get(), job.relpath, O_RDONLY | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open_beneath(rootfd_.get(), job.relpath, O_RDONLY);
  if (fd < 0) {
    int err = errno;
    std::string hint =
        err == EACCES ? " (every file must be readable by you: chmod -R u+rX " + root_ + ")" : "";
    throw Error(sys_error("open", shown, err).message() + hint);
  }
  UniqueFd f(fd);
  if (opts_.xattrs) job.node->xattrs = read_xattrs(fd, {});
  const uint64_t size = job.node->size;
  if (size > kWholeFileMax) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    job.fd = std::move(f);  // streamed by the packer
    return;
  }
  // Read the size lstat() saw, and no further: one read() for most files (a second would only
  // report EOF). A file that shrinks meanwhile is packed as far as it goes.
  size_t got = 0;
  while (got < size) {
    ssize_t r = ::read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw sys_error("read", shown);
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  job.data = buf;
  job.len = got;
}

bool TreeReader::reserve(FileJob& job, uint64_t size, char** buf) {
  *buf = nullptr;
  if (size == 0) return true;
  if (ring_used_ == 0) ring_head_ = 0;  // empty: start over at the front
  uint64_t pos = ring_head_, need = size;
  if (pos + size > kRing) {  // does not fit before the end: skip the rest of the ring
    need += kRing - pos;
    pos = 0;
  }
  if (ring_used_ + need > kRing) return false;
  if (!ring_) ring_.reset(new char[kRing]);  // uninitialised: pages are touched as files land
  ring_head_ = pos + size;
  ring_used_ += need;
  job.budget = need;
  *buf = ring_.get() + pos;
  return true;
}

void TreeReader::reader_thread() {
  for (;;) {
    FileJob* job = nullptr;
    char* buf = nullptr;
    {
      std::unique_lock lk(m_);
      for (;;) {
        if (stopping_ || error_) return;
        if (next_read_ == popped_ + jobs_.size()) {
          if (walk_done_) return;
          work_cv_.wait(lk);
          continue;
        }
        FileJob& j = jobs_[next_read_ - popped_];
        const uint64_t size = j.node->size <= kWholeFileMax ? j.node->size : 0;
        if (reserve(j, size, &buf)) {
          job = &j;
          ++next_read_;
          break;
        }
        ++budget_waiters_;  // the ring is full: wait for the packer to release
        work_cv_.wait(lk);
        --budget_waiters_;
      }
    }
    try {
      read_job(*job, buf);
    } catch (const Error& e) {
      job->error = e.message();  // reported when the packer reaches this file, in order
    } catch (...) {
      fail(std::current_exception());
      return;
    }
    {
      std::lock_guard lk(m_);
      job->ready = true;
    }
    ready_cv_.notify_one();  // only the packer waits for ready jobs
  }
}

FileJob* TreeReader::next() {
  std::unique_lock lk(m_);
  ready_cv_.wait(lk, [&] {
    if (error_ || stopping_) return true;
    if (next_pack_ < popped_ + jobs_.size()) return jobs_[next_pack_ - popped_].ready;
    return walk_done_;
  });
  if (error_) std::rethrow_exception(error_);
  if (stopping_ || next_pack_ == popped_ + jobs_.size()) return nullptr;
  FileJob* job = &jobs_[next_pack_ - popped_];
  ++next_pack_;
  if (!job->error.empty()) throw Error(job->error);
  return job;
}

void TreeReader::release(FileJob* job) {
  bool wake = false;
  {
    std::lock_guard lk(m_);
    ring_used_ -= job->budget;
    wake = budget_waiters_ > 0;
    // The packer works in order, so the finished job is the oldest one: drop it.
    if (!jobs_.empty() && &jobs_.front() == job) {
      jobs_.pop_front();
      ++popped_;
    }
  }
  if (wake) work_cv_.notify_all();
}

}  // namespace rbox::image::squash
