// Pull orchestration (pull.hpp): resolve, fetch layer blobs on up to `jobs` worker threads, and
// apply them in order on this thread while later ones are still downloading. Each layer is
// decompressed on its own thread (LayerStream) while this thread creates the files.
#include "oci/pull.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "oci/blob_store.hpp"
#include "oci/interrupt.hpp"
#include "oci/layer_stream.hpp"
#include "oci/source.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/progress.hpp"
#include "util/strings.hpp"

namespace rbox::oci {
namespace {

// Stops and joins the fetch workers on every exit path.
struct Workers {
  std::atomic<bool> cancel{false};
  std::vector<std::thread> threads;
  ~Workers() {
    cancel = true;
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
};

double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

std::string short_digest(const std::string& d) {
  return d.size() > 19 ? d.substr(7, 12) : d;
}

// A source opened and resolved, with the cache lock it holds. inspect_image() keeps one for the
// unpack_image() that usually follows in the same process, so the manifest is fetched once.
struct Opened {
  std::unique_ptr<BlobStore> store;
  std::optional<FileLock> store_lock;
  std::unique_ptr<ImageSource> source;
  ResolvedImage img;
  Platform platform;
};

std::mutex g_memo_mu;
std::map<std::string, std::shared_ptr<Opened>> g_memo;

std::string memo_key(const std::string& source, const PullOptions& o) {
  return source + "\n" + o.platform.str() + "\n" + o.authfile + "\n" + o.ca_file + "\n" + o.cache_dir + "\n" +
         (o.insecure ? "i" : "");
}

std::shared_ptr<Opened> open_and_resolve(const std::string& source_text, const PullOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  Source src = Source::parse(source_text);
  auto o = std::make_shared<Opened>();
  if (src.kind == Source::Kind::kDocker) {
    o->store = std::make_unique<BlobStore>(opts.cache_dir);
    o->store_lock.emplace(o->store->lock_shared());  // `rbox cache clean` waits for us
  }
  SourceOptions so;
  so.platform = opts.platform;
  so.platform_explicit = opts.platform_explicit;
  so.registry.ca_file = opts.ca_file;
  so.registry.insecure = opts.insecure;
  so.registry.auth.authfile = opts.authfile;
  so.store = o->store.get();
  o->platform = opts.platform;
  o->source = open_source(src, so);
  o->img = o->source->resolve();
  const ResolvedImage& img = o->img;
  log::debug("resolved " + img.source + " in " + seconds(since(t0)));
  const auto& layers = img.manifest.layers;
  const auto& diff_ids = img.config.diff_ids;
  if (!diff_ids.empty() && diff_ids.size() != layers.size())
    throw Error(img.source + ": the manifest has " + std::to_string(layers.size()) +
                " layers but the config lists " + std::to_string(diff_ids.size()) + " diff_ids");
  if (img.layers_checked_by_diff_id && diff_ids.size() != layers.size())
    throw Error(img.source + ": the config has no diff_ids to verify the layers with");
  return o;
}

ImageInfo info_of(const ResolvedImage& img) {
  ImageInfo i;
  i.source = img.source;
  i.manifest_digest = img.manifest_digest;
  i.manifest_json = img.manifest_json;
  i.config = img.config;
  i.layers = img.manifest.layers.size();
  for (const auto& l : img.manifest.layers) i.compressed_bytes += static_cast<uint64_t>(l.size);
  return i;
}

}  // namespace

void PullOptions::set_platform(const std::string& arch, const std::string& plat) {
  if (!plat.empty() && !arch.empty()) throw Error("give either --arch or --platform, not both");
  if (!plat.empty()) {
    platform = Platform::parse(plat);
    platform_explicit = true;
  } else if (!arch.empty()) {
    platform = Platform::parse(arch);  // "arm64", "arm/v7"
    platform.os = "linux";
    platform_explicit = true;
  }
}

ImageInfo inspect_image(const std::string& source, const PullOptions& opts) {
  auto o = open_and_resolve(source, opts);
  std::lock_guard lock(g_memo_mu);
  g_memo[memo_key(source, opts)] = o;
  return info_of(o->img);
}

std::string image_digest(const std::string& source, const PullOptions& opts) {
  Source src = Source::parse(source);
  if (src.kind == Source::Kind::kDocker) {
    if (!src.ref.digest.empty()) return src.ref.digest;
    RegistryOptions ro;
    ro.ca_file = opts.ca_file;
    ro.insecure = opts.insecure;
    ro.auth.authfile = opts.authfile;
    Registry reg(src.ref, ro);
    http::Client client(opts.ca_file);
    std::string d = reg.head_digest(client, src.ref.manifest_ref());
    if (!d.empty()) return d;
    return reg.get_manifest(client, src.ref.manifest_ref()).digest;  // no Docker-Content-Digest header
  }
  return inspect_image(source, opts).manifest_digest;
}

static PulledImage unpack(const std::string& source_text, const std::string& rootfs, const PullOptions& opts);

PulledImage unpack_image(const std::string& source_text, const std::string& rootfs, const PullOptions& opts) {
  try {
    check_interrupted();
    return unpack(source_text, rootfs, opts);
  } catch (...) {
    check_interrupted();  // report the interruption, not the "cancelled" it caused
    throw;
  }
}

static PulledImage unpack(const std::string& source_text, const std::string& rootfs,
                          const PullOptions& opts) {
  auto t0 = std::chrono::steady_clock::now();
  std::shared_ptr<Opened> opened;
  {
    std::lock_guard lock(g_memo_mu);
    auto it = g_memo.find(memo_key(source_text, opts));
    if (it != g_memo.end()) {
      opened = it->second;
      g_memo.erase(it);
    }
  }
  if (!opened) opened = open_and_resolve(source_text, opts);
  ImageSource* source = opened->source.get();
  BlobStore* store = opened->store.get();
  ResolvedImage& img = opened->img;
  const auto& layers = img.manifest.layers;
  const auto& diff_ids = img.config.diff_ids;
  const ImageConfig& c = img.config;
  std::string plat = (c.os.empty() ? "linux" : c.os) + "/" + (c.architecture.empty() ? "?" : c.architecture) +
                     (c.variant.empty() ? "" : "/" + c.variant);
  log::verbose("pulling " + img.source + " for " + plat +
               (img.manifest_digest.empty() ? "" : " (" + img.manifest_digest + ")") + ", " +
               std::to_string(layers.size()) + " layer(s)");

  bool show = opts.progress && log::level() >= log::Level::kNormal;
  uint64_t total = 0;
  for (const auto& l : layers) total += static_cast<uint64_t>(l.size);
  size_t n = layers.size();
  std::vector<std::unique_ptr<Progress>> bars(n);
  std::vector<std::promise<Blob>> promises(n);
  std::vector<std::future<Blob>> futures;
  for (auto& p : promises) futures.push_back(p.get_future());
  std::atomic<size_t> next{0};
  std::unique_ptr<bool[]> delivered(new bool[n]());
  Workers workers;
  // Remote sources download in parallel; local ones only hash, so one worker keeps a core free
  // for decompression and file creation.
  int jobs = source->remote() ? std::max(1, opts.jobs) : 1;
  jobs = static_cast<int>(std::min<size_t>(static_cast<size_t>(jobs), std::max<size_t>(n, 1)));
  if (show)
    for (size_t i = 0; i < n; ++i)
      bars[i] = std::make_unique<Progress>(
          "layer " + std::to_string(i + 1) + "/" + std::to_string(n) + " " + short_digest(layers[i].digest),
          static_cast<uint64_t>(layers[i].size));
  for (int t = 0; t < jobs; ++t) {
    workers.threads.emplace_back([&] {
      for (;;) {
        size_t i = next++;
        if (i >= n || workers.cancel) return;
        try {
          ProgressFn progress = [&, i](int64_t done) {
            if (bars[i]) bars[i]->set(static_cast<uint64_t>(done));
            return !workers.cancel.load() && interrupt_signal() == 0;
          };
          auto tf = std::chrono::steady_clock::now();
          // Layers are applied while they download: the applier gets the blob at once and
          // follows the download through its feed.
          Blob b = source->fetch_layer(layers[i], progress, [&](Blob early) {
            delivered[i] = true;
            promises[i].set_value(std::move(early));
          });
          log::debug("layer " + std::to_string(i + 1) + " fetched in " + seconds(since(tf)) + " (at " +
                     seconds(since(t0)) + ")");
          if (!delivered[i]) promises[i].set_value(std::move(b));
        } catch (...) {
          // After an early delivery the feed already carries the error to the applier.
          if (!delivered[i]) promises[i].set_exception(std::current_exception());
        }
      }
    });
  }

  if (::chmod(rootfs.c_str(), 0755) != 0) throw sys_error("chmod", rootfs);
  LayerApplier applier(rootfs);
  std::unique_ptr<Progress> overall;
  if (show && n > 1) overall = std::make_unique<Progress>("applying " + std::to_string(n) + " layers", total);
  uint64_t applied = 0;
  for (size_t i = 0; i < n; ++i) {
    std::string what = img.source + " layer " + std::to_string(i + 1) + "/" + std::to_string(n) + " (" +
                       layers[i].digest.substr(0, 19) + "…)";
    Blob blob = futures[i].get();  // rethrows the fetch error of this layer
    auto ta = std::chrono::steady_clock::now();
    LayerStream stream(blob, what, [&, base = applied](int64_t done) {
      if (overall) overall->set(base + static_cast<uint64_t>(done));
    });
    uint64_t files_before = applier.stats().entries;
    std::string diff;
    try {
      applier.apply(
          [&] {
            check_interrupted();
            return stream.next();
          },
          what);
      diff = stream.finish();
      // Applied while downloading: only the download's digest check makes it trustworthy.
      if (blob.feed) blob.feed->wait_done();
    } catch (...) {
      // A layer applied while it downloads may fail because its bytes are wrong: let the
      // download finish its verification and report that (e.g. a digest mismatch) instead.
      if (blob.feed) blob.feed->wait_done();
      throw;
    }
    if (!diff_ids.empty() && diff != diff_ids[i])
      throw Error(what + ": the uncompressed layer hashes to " + diff + " but the image config says " +
                  diff_ids[i] + " (corrupt or tampered image)");
    applied += static_cast<uint64_t>(layers[i].size);
    log::debug("layer " + std::to_string(i + 1) + " applied in " + seconds(since(ta)) + " (at " +
               seconds(since(t0)) + ")");
    if (bars[i])
      bars[i]->finish(std::to_string(applier.stats().entries - files_before) + " entries, " +
                      str::human_bytes(stream.uncompressed_bytes()) + " unpacked");
  }
  applier.finish();
  log::debug("pulled " + img.source + " in " + seconds(since(t0)));
  if (overall) overall->finish(std::to_string(applier.stats().entries) + " entries");
  if (store) store->record_ref(img.source, img.manifest_digest, opened->platform.str());

  PulledImage out;
  out.source = img.source;
  out.manifest_digest = img.manifest_digest;
  out.manifest_json = img.manifest_json;
  out.config = std::move(img.config);
  out.stats = applier.stats();
  out.layers = n;
  return out;
}

PulledImage pull_to_dir(const std::string& source, const std::string& dest_in, const PullOptions& opts,
                        bool force) {
  std::string dest = fs::absolute(dest_in);
  if (dest == "/") throw Error("refusing to pull into /");
  bool exists = fs::exists(dest);
  if (exists && !force) throw Error(dest_in + " already exists; pass --force to replace it");
  if (exists && !fs::is_dir(dest)) throw Error(dest_in + " exists and is not a directory; remove it first");
  std::string parent = fs::dirname(dest);
  if (!fs::is_dir(parent)) throw Error("the parent directory of " + dest_in + " does not exist");
  fs::TempDir tmp(".rbox-pull-" + fs::basename(dest) + "-", parent);
  PulledImage img = unpack_image(source, tmp.path(), opts);
  if (exists) {
    // Swap the new tree in atomically, then remove the old one (now at the temporary name).
    if (::renameat2(AT_FDCWD, tmp.path().c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) != 0)
      throw sys_error("replace", dest);
  } else if (::renameat2(AT_FDCWD, tmp.path().c_str(), AT_FDCWD, dest.c_str(), RENAME_NOREPLACE) != 0) {
    throw sys_error("rename " + tmp.path() + " to", dest);
  }
  if (!exists) tmp.keep();  // nothing left at the temporary name
  return img;
}

}  // namespace rbox::oci
