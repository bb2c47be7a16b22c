// rbox cache list|clean: the content-addressed blob cache under $RBOX_CACHEDIR.
// Cleaning takes the cache lock exclusively, so it never removes a blob a running pull uses.
#include <ctime>
#include <iostream>

#include "build/base_cache.hpp"
#include "cli/app.hpp"
#include "oci/blob_store.hpp"
#include "util/exit_codes.hpp"
#include "util/fs.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace rbox::cli {
namespace {

std::string age(time_t t) {
  long secs = static_cast<long>(::time(nullptr) - t);
  if (secs < 0) secs = 0;
  if (secs < 3600) return std::to_string(secs / 60) + " min ago";
  if (secs < 86400) return std::to_string(secs / 3600) + " h ago";
  return std::to_string(secs / 86400) + " days ago";
}

int cache_list() {
  std::string root = oci::BlobStore::default_root();
  if (!fs::exists(root)) {
    std::cout << "cache " << root << " is empty\n";
    return exit_code::kOk;
  }
  oci::BlobStore store(root);
  auto refs = store.refs();
  if (!refs.empty()) {
    std::cout << "Images pulled (" << root << "):\n";
    for (const auto& r : refs)
      std::cout << "  " << r.source << "  " << r.platform << "  "
                << (r.digest.empty() ? "-" : r.digest.substr(0, 19)) << "  " << age(r.pulled) << "\n";
  }
  auto blobs = store.list();
  uint64_t total = 0;
  for (const auto& b : blobs) total += static_cast<uint64_t>(b.size);
  std::cout << "Blobs: " << blobs.size() << ", " << str::human_bytes(total) << "\n";
  if (log::verbose())
    for (const auto& b : blobs)
      std::cout << "  " << b.digest << "  " << str::human_bytes(static_cast<uint64_t>(b.size))
                << "  last used " << age(b.last_used) << "\n";
  return exit_code::kOk;
}

int cache_clean(int days) {
  std::string root = oci::BlobStore::default_root();
  if (!fs::exists(root)) {
    log::info("cache " + root + " is empty");
    return exit_code::kOk;
  }
  oci::BlobStore store(root);
  auto lock = store.try_lock_exclusive();
  if (!lock) {
    log::info("waiting for running pulls to finish before cleaning " + root);
    lock.emplace(store.lock_exclusive());
  }
  auto [count, bytes] = store.clean(days);
  // Unpacked base trees of builds (~/.cache/rbox/rootfs) and SIFs of `exec docker://` go with a
  // full clean; --days keeps them (they are re-created on demand).
  if (days == 0) {
    count += build::clean_base_cache(root);
    for (const auto& sif : fs::list_dir(root + "/sif")) {
      fs::remove_tree(root + "/sif/" + sif);
      ++count;
    }
  }
  log::info("removed " + std::to_string(count) + " cache entr" + (count == 1 ? "y" : "ies") + " (" +
            str::human_bytes(bytes) + ")" +
            (days > 0 ? " unused for " + std::to_string(days) + " days" : ""));
  return exit_code::kOk;
}

}  // namespace

void register_cache(CLI::App& app, Context& ctx) {
  auto* cache = add_command(app, "cache", "Inspect or clean the blob and image cache",
                            {"rbox cache list", "rbox cache clean --days 30"});
  cache->require_subcommand(1);
  auto* list =
      add_command(*cache, "list", "List cached blobs and images", {"rbox cache list", "rbox -v cache list"});
  auto* clean = add_command(*cache, "clean", "Remove cached entries",
                            {"rbox cache clean", "rbox cache clean --days 7"});
  auto days = std::make_shared<int>(0);
  clean->add_option("--days", *days, "Only remove entries not used for this many days")
      ->check(CLI::NonNegativeNumber);
  on_run(list, ctx, [] { return cache_list(); });
  on_run(clean, ctx, [days] { return cache_clean(*days); });
}

}  // namespace rbox::cli
