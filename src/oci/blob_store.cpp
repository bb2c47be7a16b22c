// The content-addressed blob cache (blob_store.hpp). Renames are atomic, so a reader sees either
// no entry or a complete file; entries are not fsynced because every use re-verifies them, which
// also covers a crash between rename and writeback.
#include "oci/blob_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "oci/reference.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

namespace rbox::oci {
namespace {

std::string hex_of(const std::string& digest) {
  if (!is_sha256_digest(digest)) throw Error("internal: not a sha256 digest: " + digest.substr(0, 80));
  return digest.substr(7);
}

void mkdir_private(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) throw sys_error("create cache directory", path);
}

// Hashes [offset, offset+size) of fd; false on a short file.
bool hash_range(int fd, int64_t offset, int64_t size, std::string* hex) {
  Sha256 h;
  std::string buf(1 << 20, '\0');
  int64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<int64_t>(size - done, static_cast<int64_t>(buf.size())));
    ssize_t n = ::pread(fd, buf.data(), want, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    h.update(buf.data(), static_cast<size_t>(n));
    done += n;
  }
  *hex = h.hex_digest();
  return true;
}

void touch(int fd) {
  ::futimens(fd, nullptr);  // last use, for `rbox cache clean --days`
}

}  // namespace

void BlobFeed::update(int64_t available) {
  {
    std::lock_guard lock(mu_);
    available_ = available;
  }
  cv_.notify_all();
}

void BlobFeed::finish() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
}

void BlobFeed::fail(std::exception_ptr error) {
  {
    std::lock_guard lock(mu_);
    error_ = error;
    done_ = true;
  }
  cv_.notify_all();
}

void BlobFeed::wait_for(int64_t end) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return available_ >= end || done_; });
  if (error_) std::rethrow_exception(error_);
  if (available_ < end) throw Error("internal: the download ended before the reader's position");
}

void BlobFeed::wait_done() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  if (error_) std::rethrow_exception(error_);
}

std::string BlobStore::default_root() {
  if (const char* v = std::getenv("RBOX_CACHEDIR"); v && *v) return v;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/rbox";
  const char* h = std::getenv("HOME");
  return std::string(h && *h ? h : "/tmp") + "/.cache/rbox";
}

BlobStore::BlobStore(std::string root) : root_(root.empty() ? default_root() : std::move(root)) {
  std::string parent = fs::dirname(root_);
  if (!fs::exists(parent)) fs::mkdir_p(parent, 0700);
  for (const char* sub : {"", "/blobs", "/blobs/sha256", "/tmp", "/locks", "/refs"})
    mkdir_private(root_ + sub);
}

std::string BlobStore::blob_path(const std::string& digest) const {
  return root_ + "/blobs/sha256/" + hex_of(digest);
}

std::string BlobStore::partial_path(const std::string& digest) const {
  return root_ + "/tmp/" + hex_of(digest) + ".partial";
}

std::optional<Blob> BlobStore::open_verified(const std::string& digest, int64_t size, bool remove_corrupt) {
  std::string path = blob_path(digest);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return std::nullopt;
  struct stat st;
  std::string why;
  std::string hex;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if (size >= 0 && st.st_size != size) {
    why = "size " + std::to_string(st.st_size) + " instead of " + std::to_string(size);
  } else if (!hash_range(fd.get(), 0, st.st_size, &hex)) {
    why = "unreadable";
  } else if ("sha256:" + hex != digest) {
    why = "content hashes to sha256:" + hex.substr(0, 12) + "…";
  }
  if (!why.empty()) {
    if (remove_corrupt) {
      log::warn("cache entry " + digest.substr(0, 19) + "… is corrupt (" + why +
                "); removing it and fetching again");
      ::unlink(path.c_str());
    }
    return std::nullopt;
  }
  touch(fd.get());
  return Blob{std::move(fd), 0, st.st_size, digest, {}};
}

FileLock BlobStore::lock_digest(const std::string& digest) {
  return FileLock(root_ + "/locks/" + hex_of(digest) + ".lock");
}

Blob BlobStore::commit(const std::string& temp_path, const std::string& digest, int64_t size) {
  std::string path = blob_path(digest);
  UniqueFd fd(::open(temp_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) throw sys_error("open", temp_path);
  ::fchmod(fd.get(), 0600);
  if (::rename(temp_path.c_str(), path.c_str()) != 0) throw sys_error("rename " + temp_path + " to", path);
  return Blob{std::move(fd), 0, size, digest, {}};
}

void BlobStore::put(const std::string& digest, const std::string& data) {
  if ("sha256:" + Sha256::hex(data) != digest) throw Error("internal: content does not match " + digest);
  std::string path = blob_path(digest);
  fs::AtomicFile f(path, 0600);
  f.write(data);
  // No fsync needed (see the file comment), but AtomicFile::commit does one; small files only.
  f.commit();
}

std::optional<std::string> BlobStore::get(const std::string& digest, size_t max_size) {
  std::string path = blob_path(digest);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) > max_size) return std::nullopt;
  std::string data;
  try {
    data = fs::read_file(path);
  } catch (const Error&) {
    return std::nullopt;
  }
  if ("sha256:" + Sha256::hex(data) != digest) return std::nullopt;
  return data;
}

FileLock BlobStore::lock_shared() {
  return FileLock(root_ + "/lock", FileLock::Mode::kShared);
}
std::optional<FileLock> BlobStore::try_lock_exclusive() {
  return FileLock::try_acquire(root_ + "/lock", FileLock::Mode::kExclusive);
}
FileLock BlobStore::lock_exclusive() {
  return FileLock(root_ + "/lock", FileLock::Mode::kExclusive);
}

void BlobStore::record_ref(const std::string& source, const std::string& manifest_digest,
                           const std::string& platform) {
  nlohmann::json j{{"source", source},
                   {"digest", manifest_digest},
                   {"platform", platform},
                   {"pulled", static_cast<int64_t>(::time(nullptr))}};
  try {
    fs::AtomicFile f(root_ + "/refs/" + Sha256::hex(source + "\n" + platform) + ".json", 0600);
    f.write(j.dump() + "\n");
    f.commit();
  } catch (const Error& e) {
    log::debug("cannot record cache ref: " + e.message());
  }
}

static std::vector<std::string> dir_names(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  return out;
}

std::vector<BlobStore::Entry> BlobStore::list() const {
  std::vector<Entry> out;
  for (const auto& n : dir_names(root_ + "/blobs/sha256")) {
    if (!is_sha256_digest("sha256:" + n)) continue;
    struct stat st;
    if (::lstat((root_ + "/blobs/sha256/" + n).c_str(), &st) != 0) continue;
    out.push_back({"sha256:" + n, st.st_size, st.st_mtime});
  }
  return out;
}

std::vector<BlobStore::Ref> BlobStore::refs() const {
  std::vector<Ref> out;
  for (const auto& n : dir_names(root_ + "/refs")) {
    if (n.size() < 5 || n.substr(n.size() - 5) != ".json") continue;
    try {
      auto j = nlohmann::json::parse(fs::read_file(root_ + "/refs/" + n));
      out.push_back({j.value("source", ""), j.value("digest", ""), j.value("platform", ""),
                     static_cast<time_t>(j.value("pulled", int64_t{0}))});
    } catch (const std::exception&) {
    }
  }
  return out;
}

std::pair<size_t, uint64_t> BlobStore::clean(int days) {
  time_t cutoff = days > 0 ? ::time(nullptr) - static_cast<time_t>(days) * 86400 : 0;
  size_t removed = 0;
  uint64_t bytes = 0;
  auto remove_if_old = [&](const std::string& path, bool count) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    if (days > 0 && st.st_mtime >= cutoff) return;
    if (::unlink(path.c_str()) == 0 && count) {
      ++removed;
      bytes += static_cast<uint64_t>(st.st_size);
    }
  };
  for (const auto& n : dir_names(root_ + "/blobs/sha256")) remove_if_old(root_ + "/blobs/sha256/" + n, true);
  for (const auto& n : dir_names(root_ + "/refs")) remove_if_old(root_ + "/refs/" + n, false);
  for (const auto& n : dir_names(root_ + "/tmp")) remove_if_old(root_ + "/tmp/" + n, true);
  // Lock files are recreated on demand; removing one nobody holds is harmless, and nobody holds
  // one while we hold the store lock exclusively.
  for (const auto& n : dir_names(root_ + "/locks")) ::unlink((root_ + "/locks/" + n).c_str());
  return {removed, bytes};
}

}  // namespace rbox::oci
