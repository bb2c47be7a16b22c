// BlobStore: the content-addressed blob cache under $RBOX_CACHEDIR (default ~/.cache/rbox).
// Entries are written under a temporary name, verified, then renamed into blobs/sha256/<hex>;
// a per-digest flock keeps concurrent rbox processes from downloading the same blob twice.
// An entry is verified (size and SHA-256) every time it is used: a corrupt one is never handed out.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "util/fd.hpp"
#include "util/lock.hpp"

namespace rbox::oci {

// A blob still being downloaded while a reader consumes it (a layer is applied as it arrives).
// The reader waits for bytes below `available`; the download ends with finish() once size and
// digest are verified, or with fail(), which the reader rethrows — so whatever was applied from
// an unverified stream is discarded with the rest of the failed pull.
class BlobFeed {
 public:
  void update(int64_t available);
  void finish();
  void fail(std::exception_ptr error);
  // Blocks until [0, end) has arrived or the download ended. Throws the download's error, or
  // when it ended short of end.
  void wait_for(int64_t end);
  // Blocks until the download ended; throws its error. Call before trusting what was read.
  void wait_done();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int64_t available_ = 0;
  bool done_ = false;
  std::exception_ptr error_;
};

// A blob: an open read-only fd, and where the bytes are in it (blobs inside an
// oci-archive/docker-archive tar have an offset). Verified, unless feed is set: then it is still
// arriving and only the feed's successful end verifies it.
struct Blob {
  UniqueFd fd;
  int64_t offset = 0;
  int64_t size = 0;
  std::string digest;
  std::shared_ptr<BlobFeed> feed;
};

class BlobStore {
 public:
  // Opens (creating, mode 0700) the store at root; "" → default_root().
  explicit BlobStore(std::string root = {});

  // $RBOX_CACHEDIR, else $XDG_CACHE_HOME/rbox, else ~/.cache/rbox.
  static std::string default_root();
  const std::string& root() const { return root_; }

  std::string blob_path(const std::string& digest) const;     // blobs/sha256/<hex>
  std::string partial_path(const std::string& digest) const;  // tmp/<hex>.partial (resumable)

  // The blob if it is in the store with exactly this size and digest. The bytes are hashed on
  // every call (about 2 GB/s with SHA-NI, i.e. ~25 ms for a 50 MB layer), so a truncated,
  // bit-flipped or half-written entry is detected. A corrupt entry is removed when
  // remove_corrupt is set (only do that while holding lock_digest()).
  std::optional<Blob> open_verified(const std::string& digest, int64_t size, bool remove_corrupt);

  // Exclusive lock for fetching one digest (locks/<hex>.lock).
  FileLock lock_digest(const std::string& digest);

  // Renames a verified file (the partial_path) into place and returns it opened.
  Blob commit(const std::string& temp_path, const std::string& digest, int64_t size);

  // Stores small content (manifests, configs) after checking its digest.
  void put(const std::string& digest, const std::string& data);
  // Small content by digest, verified; nullopt when absent or corrupt.
  std::optional<std::string> get(const std::string& digest, size_t max_size);

  // Shared lock held by pulls for their duration; `rbox cache clean` takes it exclusively.
  FileLock lock_shared();
  std::optional<FileLock> try_lock_exclusive();
  FileLock lock_exclusive();

  // Records that a source was pulled (refs/<sha256(source)>.json) for `rbox cache list`.
  void record_ref(const std::string& source, const std::string& manifest_digest, const std::string& platform);

  struct Entry {
    std::string digest;  // "sha256:…"
    int64_t size = 0;
    time_t last_used = 0;  // mtime, refreshed on every use
  };
  std::vector<Entry> list() const;
  struct Ref {
    std::string source, digest, platform;
    time_t pulled = 0;
  };
  std::vector<Ref> refs() const;
  // Removes blobs (and refs) not used for `days` days (0 = everything), stale temporaries and
  // lock files. Returns {entries removed, bytes freed}. Caller holds lock_exclusive().
  std::pair<size_t, uint64_t> clean(int days);

 private:
  std::string root_;
};

}  // namespace rbox::oci
