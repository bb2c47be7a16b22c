// Layer application (layer_apply.hpp). Each entry: clean the name as if rooted at "/", resolve
// its parent inside the root (RootDir), then act on the final component with *at() calls that
// never follow it: create with O_EXCL/mkdirat/symlinkat/linkat, and on EEXIST unlink and
// recreate unless both old and new are directories (image-spec layer.md "Changesets").
#include "oci/layer_apply.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

constexpr const char* kRootlessXattr = "user.rootlesscontainers";

void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

struct ArchiveReader {
  struct archive* a = archive_read_new();
  ~ArchiveReader() { archive_read_free(a); }
};

struct SourceCtx {
  const TarSource* source;
  std::string_view current;
  std::string_view first;  // already read to detect an empty layer
  std::exception_ptr error;
};

la_ssize_t read_cb(struct archive* a, void* data, const void** buf) {
  auto* ctx = static_cast<SourceCtx*>(data);
  if (!ctx->first.empty()) {
    ctx->current = ctx->first;
    ctx->first = {};
  } else {
    try {
      ctx->current = (*ctx->source)();
    } catch (...) {
      // Exceptions must not unwind through libarchive's C frames: keep it for the caller.
      ctx->error = std::current_exception();
      archive_set_error(a, EIO, "layer stream failed");
      return -1;
    }
  }
  *buf = ctx->current.data();
  return static_cast<la_ssize_t>(ctx->current.size());
}

}  // namespace

std::string rootless_owner_xattr(uint32_t uid, uint32_t gid) {
  if (uid == 0 && gid == 0) return {};
  // umoci maps 0 to NoopID (0xFFFFFFFF) because proto3 cannot encode an explicit zero.
  uint64_t u = uid == 0 ? 0xFFFFFFFFu : uid, g = gid == 0 ? 0xFFFFFFFFu : gid;
  std::string out;
  out.push_back(0x08);  // field 1 (uid), varint
  put_varint(&out, u);
  out.push_back(0x10);  // field 2 (gid), varint
  put_varint(&out, g);
  return out;
}

// State of the layer being applied: which paths it has written (whiteouts only hide lower
// layers, image-spec layer.md "Whiteouts") and the archive entry at hand.
class LayerApplier::Layer {
 public:
  Layer(LayerApplier& ap, std::string what, bool lowest) : ap_(ap), what_(std::move(what)), lowest_(lowest) {}

  void entry(struct archive* a, struct archive_entry* e);

 private:
  void mark_upper(const std::string& p);
  bool has_upper_below(const std::string& p) const { return upper_dirs_.count(p) != 0; }
  void whiteout(const std::string& path);
  void opaque(const std::string& dir);
  void prune(int dirfd, const std::string& dir_path);
  // Removes whatever is at pfd/base (never following it).
  void clear(int pfd, const std::string& base, const std::string& p);
  // Creates via fn (returns 0 or -1 with errno); on EEXIST removes the old entry and retries.
  // With keep_dir, an existing directory is kept: returns true in that case.
  template <typename Fn>
  bool create(int pfd, const std::string& base, const std::string& p, bool keep_dir, Fn fn);
  void set_metadata(int fd, struct archive_entry* e, const std::string& p, bool existing_dir);
  void set_xattrs(int fd, struct archive_entry* e, const std::string& p, bool replace);
  void write_data(struct archive* a, int fd, const std::string& p, int64_t size);
  [[noreturn]] void fail(const std::string& p, const std::string& why) {
    throw Error(what_ + ": /" + p + ": " + why);
  }

  LayerApplier& ap_;
  std::string what_;
  bool lowest_;
  std::set<std::string> upper_;       // paths this layer wrote
  std::set<std::string> upper_dirs_;  // strict ancestors of those
};

void LayerApplier::Layer::mark_upper(const std::string& p) {
  if (lowest_) return;  // nothing below the first layer can be whited out
  upper_.insert(p);
  for (size_t pos = p.rfind('/'); pos != std::string::npos && pos > 0; pos = p.rfind('/', pos - 1))
    if (!upper_dirs_.insert(p.substr(0, pos)).second) break;
  upper_dirs_.insert("");
}

void LayerApplier::Layer::clear(int pfd, const std::string& base, const std::string& p) {
  remove_at(pfd, base);
  ap_.invalidate_parent_cache();
  ap_.forget_deferred_under(p);
}

template <typename Fn>
bool LayerApplier::Layer::create(int pfd, const std::string& base, const std::string& p, bool keep_dir,
                                 Fn fn) {
  if (fn() == 0) return false;
  if (errno != EEXIST) fail(p, std::string("cannot create: ") + std::strerror(errno));
  struct stat st;
  if (keep_dir && ::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
    return true;
  clear(pfd, base, p);
  if (fn() != 0) fail(p, std::string("cannot create: ") + std::strerror(errno));
  return false;
}

void LayerApplier::Layer::prune(int dirfd, const std::string& dir_path) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return;
  }
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string cp = dir_path.empty() ? n : dir_path + "/" + n;
    bool upper = upper_.count(cp) != 0;
    if (upper || has_upper_below(cp)) {
      struct stat st;
      if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        UniqueFd sub(::openat(dirfd, n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (sub) prune(sub.get(), cp);
      }
      continue;
    }
    clear(dirfd, n, cp);
  }
}

void LayerApplier::Layer::whiteout(const std::string& path) {
  ++ap_.stats_.whiteouts;
  if (lowest_ || upper_.count(path)) return;
  auto [parent, base] = split_parent(path);
  int pfd = ap_.root_.try_open_dir(parent);
  if (pfd < 0) return;  // nothing there to hide
  UniqueFd guard(pfd);
  if (has_upper_below(path)) {
    // Invalid in a well-formed layer; keep what this layer wrote and hide the rest.
    UniqueFd sub(::openat(pfd, base.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub) prune(sub.get(), path);
    return;
  }
  struct stat st;
  if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  clear(pfd, base, path);
}

void LayerApplier::Layer::opaque(const std::string& dir) {
  ++ap_.stats_.whiteouts;
  if (lowest_) return;
  // The opaque marker applies before this layer's own entries whatever its position in the
  // stream: prune everything in dir that this layer did not write.
  int fd = ap_.root_.try_open_dir(dir);
  if (fd < 0) return;
  UniqueFd guard(fd);
  prune(fd, dir);
}

void LayerApplier::Layer::set_xattrs(int fd, struct archive_entry* e, const std::string& p, bool replace) {
  std::vector<std::string> wanted;
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string n = name;
    if (n == "security.selinux") continue;               // the host's policy labels files, not the image
    if (n == kRootlessXattr && !ap_.as_root_) continue;  // recomputed from the entry's owner
    wanted.push_back(n);
    if (::fsetxattr(fd, n.c_str(), value, size, 0) != 0) {
      ++ap_.stats_.xattrs_skipped;
      log::debug(what_ + ": /" + p + ": cannot set xattr " + n + ": " + std::strerror(errno));
    }
  }
  if (replace) {
    // An existing directory takes the new entry's attributes: drop user xattrs it no longer has.
    char list[4096];
    ssize_t n = ::flistxattr(fd, list, sizeof list);
    for (ssize_t i = 0; i < n;) {
      std::string x = list + i;
      i += static_cast<ssize_t>(x.size()) + 1;
      if (str::starts_with(x, "user.") && x != kRootlessXattr &&
          std::find(wanted.begin(), wanted.end(), x) == wanted.end())
        ::fremovexattr(fd, x.c_str());
    }
  }
}

void LayerApplier::Layer::set_metadata(int fd, struct archive_entry* e, const std::string& p,
                                       bool existing_dir) {
  uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
  gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
  if (ap_.as_root_) {
    if (::fchown(fd, uid, gid) != 0) fail(p, std::string("cannot set owner: ") + std::strerror(errno));
  } else {
    std::string owner = rootless_owner_xattr(uid, gid);
    if (!owner.empty()) {
      if (::fsetxattr(fd, kRootlessXattr, owner.data(), owner.size(), 0) != 0) ++ap_.stats_.xattrs_skipped;
    } else if (existing_dir) {
      ::fremovexattr(fd, kRootlessXattr);
    }
  }
  set_xattrs(fd, e, p, existing_dir);
}

void LayerApplier::Layer::write_data(struct archive* a, int fd, const std::string& p, int64_t size) {
  const void* buf;
  size_t len;
  la_int64_t off;
  int64_t end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &len, &off);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) fail(p, std::string("cannot read file data: ") + archive_error_string(a));
    const char* data = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < len) {
      ssize_t w = ::pwrite(fd, data + done, len - done, off + static_cast<int64_t>(done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(p, std::string("cannot write: ") + std::strerror(errno));
      done += static_cast<size_t>(w);
    }
    end = std::max<int64_t>(end, off + static_cast<int64_t>(len));
    ap_.stats_.bytes += len;
  }
  if (end < size && ::ftruncate(fd, size) != 0)
    fail(p, std::string("cannot size file: ") + std::strerror(errno));
}

void LayerApplier::Layer::entry(struct archive* a, struct archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  if (!raw) raw = "";  // libarchive reports an empty name as NULL: that is the root itself
  bool clamped = false;
  std::string p = clean_member_path(raw, &clamped);
  if (clamped) {
    ++ap_.stats_.clamped_paths;
    log::debug(what_ + ": entry '" + std::string(raw) + "' climbs above the root; applied as /" + p);
  }
  ++ap_.stats_.entries;
  // Named references, not a structured binding: clang < 16 cannot capture bindings in lambdas.
  const auto split = split_parent(p);
  const std::string& parent = split.first;
  const std::string& base = split.second;
  mode_t type = archive_entry_filetype(e);
  const char* hardlink = archive_entry_hardlink(e);

  if (str::starts_with(base, ".wh.")) {
    if (base == ".wh..wh..opq") return opaque(parent);
    if (str::starts_with(base, ".wh..wh.")) return;  // aufs bookkeeping (.wh..wh.plnk …): hidden
    std::string victim = base.substr(4);
    if (victim.empty() || victim == "." || victim == "..")
      fail(p, "invalid whiteout entry '" + std::string(raw) + "'");
    return whiteout(parent.empty() ? victim : parent + "/" + victim);
  }

  struct timespec times[2];
  times[1].tv_sec = archive_entry_mtime(e);
  times[1].tv_nsec = archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0;
  times[0] = times[1];
  if (archive_entry_atime_is_set(e)) {
    times[0].tv_sec = archive_entry_atime(e);
    times[0].tv_nsec = archive_entry_atime_nsec(e);
  }
  mode_t perm = archive_entry_perm(e) & 07777;

  if (p.empty()) {
    // The root itself ("./"): only directory attributes can apply to it.
    if (hardlink || type != AE_IFDIR)
      fail(p, "refusing to replace the root directory with a non-directory entry");
    ap_.deferred_dirs_[""] = {perm, times[1]};
    return;
  }

  int pfd;
  try {
    pfd = ap_.parent_fd(parent);
  } catch (const Error& err) {
    throw err.with_context(what_ + ": /" + p);
  }
  mark_upper(p);

  if (hardlink) {
    std::string target = clean_member_path(hardlink);
    if (target.empty()) fail(p, "hard link to the root directory");
    if (target == p) return;
    const auto tsplit = split_parent(target);
    const std::string& tparent = tsplit.first;
    const std::string& tbase = tsplit.second;
    int tfd = ap_.root_.try_open_dir(tparent);
    if (tfd < 0) fail(p, "hard link target /" + target + " does not exist");
    UniqueFd tguard(tfd);
    struct stat st;
    if (::fstatat(tfd, tbase.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      fail(p, "hard link target /" + target + " does not exist");
    if (S_ISDIR(st.st_mode)) fail(p, "hard link target /" + target + " is a directory");
    // linkat without AT_SYMLINK_FOLLOW links the final component itself, even a symlink.
    create(pfd, base, p, false, [&] { return ::linkat(tfd, tbase.c_str(), pfd, base.c_str(), 0); });
    return;
  }

  switch (type) {
    case AE_IFREG: {
      int fd = -1;
      create(pfd, base, p, false, [&] {
        fd = ::openat(pfd, base.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        return fd < 0 ? -1 : 0;
      });
      UniqueFd file(fd);
      write_data(a, fd, p, archive_entry_size(e));
      set_metadata(fd, e, p, false);
      // After chown (which clears set-id bits): setuid/setgid stay in the tree; the runtime
      // mounts images nosuid.
      if (::fchmod(fd, perm) != 0) fail(p, std::string("cannot set mode: ") + std::strerror(errno));
      ::futimens(fd, times);
      return;
    }
    case AE_IFDIR: {
      bool existed = create(pfd, base, p, true, [&] { return ::mkdirat(pfd, base.c_str(), 0700); });
      ap_.deferred_dirs_[p] = {perm, times[1]};
      bool need_fd = ap_.as_root_ || existed || archive_entry_uid(e) != 0 || archive_entry_gid(e) != 0 ||
                     archive_entry_xattr_count(e) > 0;
      if (need_fd) {
        UniqueFd dfd(::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dfd) fail(p, std::string("cannot open directory: ") + std::strerror(errno));
        set_metadata(dfd.get(), e, p, existed);
      }
      return;
    }
    case AE_IFLNK: {
      const char* target = archive_entry_symlink(e);
      if (!target) fail(p, "symbolic link without a target");
      // The target is stored as written: it is only ever resolved inside the root.
      create(pfd, base, p, false, [&] { return ::symlinkat(target, pfd, base.c_str()); });
      if (ap_.as_root_)
        ::fchownat(pfd, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                   static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW);
      ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return;
    }
    case AE_IFCHR:
    case AE_IFBLK: {
      if (!ap_.as_root_) {
        ++ap_.stats_.devices_skipped;
        struct stat st;
        if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) clear(pfd, base, p);
        return;
      }
      dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
      create(pfd, base, p, false, [&] { return ::mknodat(pfd, base.c_str(), type | perm, dev); });
      ::fchownat(pfd, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                 static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW);
      ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return;
    }
    case AE_IFIFO: {
      create(pfd, base, p, false, [&] { return ::mkfifoat(pfd, base.c_str(), 0600); });
      // A FIFO is opened O_PATH to set its attributes without blocking on a reader.
      if (ap_.as_root_)
        ::fchownat(pfd, base.c_str(), static_cast<uid_t>(archive_entry_uid(e)),
                   static_cast<gid_t>(archive_entry_gid(e)), AT_SYMLINK_NOFOLLOW);
      struct stat st;
      if (::fstatat(pfd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode))
        ::fchmodat(pfd, base.c_str(), perm, 0);
      ::utimensat(pfd, base.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return;
    }
    default:
      log::debug(what_ + ": /" + p + ": skipping an entry of unsupported type (socket?)");
      return;
  }
}

// ---- LayerApplier ----

LayerApplier::LayerApplier(const std::string& root) : root_(root), as_root_(::geteuid() == 0) {}
LayerApplier::~LayerApplier() = default;

void LayerApplier::invalidate_parent_cache() {
  // The fd stays open until the next parent_fd() call: the entry being applied may still use it.
  have_cached_parent_ = false;
}

void LayerApplier::forget_deferred_under(const std::string& path) {
  deferred_dirs_.erase(path);
  std::string prefix = path + "/";
  for (auto it = deferred_dirs_.lower_bound(prefix);
       it != deferred_dirs_.end() && str::starts_with(it->first, prefix);)
    it = deferred_dirs_.erase(it);
}

int LayerApplier::parent_fd(const std::string& parent) {
  if (have_cached_parent_ && cached_parent_ == parent) return cached_parent_fd_.get();
  std::vector<std::string> created;
  UniqueFd fd = root_.open_dir(parent, true, &created);
  // Directories a layer implies without listing them get the usual 0755.
  for (const auto& c : created) deferred_dirs_[c] = {0755, {0, UTIME_OMIT}};
  cached_parent_ = parent;
  cached_parent_fd_ = std::move(fd);
  have_cached_parent_ = true;
  return cached_parent_fd_.get();
}

void LayerApplier::apply(const TarSource& source, const std::string& what) {
  invalidate_parent_cache();
  Layer layer(*this, what, layers_applied_ == 0);
  ArchiveReader r;
  // Only the tar format: no other format parser is reachable from layer data (STATIC.md 3).
  archive_read_support_format_tar(r.a);
  SourceCtx ctx{&source, {}, source(), nullptr};
  if (ctx.first.empty()) {  // a zero-byte layer is an empty layer
    ++layers_applied_;
    return;
  }
  if (archive_read_open(r.a, &ctx, nullptr, read_cb, nullptr) != ARCHIVE_OK) {
    if (ctx.error) std::rethrow_exception(ctx.error);
    const char* msg = archive_error_string(r.a);
    throw Error(what + ": not a tar archive (" + std::string(msg ? msg : "unknown format") + ")");
  }
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = archive_read_next_header(r.a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN) {
      if (ctx.error) std::rethrow_exception(ctx.error);
      const char* msg = archive_error_string(r.a);
      throw Error(what + ": cannot read the tar stream (" + std::string(msg ? msg : "unknown error") + ")");
    }
    // ARCHIVE_WARN: e.g. a UTF-8 name in the C locale of the static binary; the raw bytes are
    // kept and used (STATIC.md 4).
    try {
      layer.entry(r.a, e);
    } catch (...) {
      if (ctx.error) std::rethrow_exception(ctx.error);
      throw;
    }
  }
  invalidate_parent_cache();
  ++layers_applied_;
}

void LayerApplier::finish() {
  invalidate_parent_cache();
  // Children before parents (reverse order: "a/b" sorts after "a"), so tightening a parent's
  // mode never blocks reaching a child.
  for (auto it = deferred_dirs_.rbegin(); it != deferred_dirs_.rend(); ++it) {
    const std::string& p = it->first;
    UniqueFd fd;
    if (p.empty()) {
      fd.reset(::openat(root_.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } else {
      auto [parent, base] = split_parent(p);
      int pfd = root_.try_open_dir(parent);
      if (pfd < 0) continue;
      UniqueFd pguard(pfd);
      fd.reset(::openat(pfd, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd) continue;  // removed or replaced by a non-directory since
    ::fchmod(fd.get(), it->second.mode);
    if (it->second.mtime.tv_nsec != UTIME_OMIT) {
      struct timespec t[2] = {it->second.mtime, it->second.mtime};
      ::futimens(fd.get(), t);
    }
  }
  deferred_dirs_.clear();
  if (stats_.devices_skipped)
    log::info("skipped " + std::to_string(stats_.devices_skipped) +
              " device node(s): creating them needs root (containers get /dev from the host)");
  if (stats_.xattrs_skipped)
    log::warn("could not set " + std::to_string(stats_.xattrs_skipped) +
              " extended attribute(s) (security.* and trusted.* need root); run with --debug for the list");
  if (stats_.clamped_paths)
    log::warn(std::to_string(stats_.clamped_paths) +
              " layer entries named paths above the root; they were applied inside it");
}

}  // namespace rbox::oci
