// Shared state of the FUSE server that needs no image: stateless node ids and a bounded,
// sharded cache of immutable values (parsed inodes, parsed directories, decompressed blocks).
// Nothing here does I/O; values are never modified after they are built.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace rbox::image::fuse {

// FUSE node ids are a pure function of the SquashFS inode reference (block << 16 | offset):
// the root is 1 (FUSE_ROOT_ID), any other inode is ref + 2, so 0 ("no node") and 1 are never
// produced for a non-root inode. Hard links share an inode reference and therefore a node id;
// the server keeps no per-node state and FORGET needs no bookkeeping (FUSE.md §5.1).
inline constexpr uint64_t kRootNode = 1;

inline uint64_t node_for_ref(uint64_t ref, uint64_t root_ref) {
  return ref == root_ref ? kRootNode : ref + 2;
}

// Inverse of node_for_ref. Returns false for node 0, which the kernel never sends for an inode.
inline bool ref_for_node(uint64_t node, uint64_t root_ref, uint64_t* ref) {
  if (node == 0) return false;
  *ref = node == kRootNode ? root_ref : node - 2;
  return true;
}

struct CacheStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t evictions = 0;
  size_t bytes = 0;
  size_t entries = 0;
};

// Key → immutable value, split into shards with one mutex each. The value for a key is built
// at most once at a time: concurrent misses on one key wait for the first builder instead of
// decompressing the same block twice. Each shard evicts in insertion order (FIFO) once its
// share of the byte budget is exceeded; evicted values stay alive while a reader holds them.
template <class V>
class ShardedCache {
 public:
  using Ptr = std::shared_ptr<const V>;

  explicit ShardedCache(size_t budget_bytes, size_t shard_count = 16)
      : shards_(shard_count == 0 ? 1 : shard_count), shard_budget_(budget_bytes / shards_.size()) {}

  // The cached value, or nullptr (no waiting, no building).
  Ptr find(uint64_t key) const {
    const Shard& sh = shard(key);
    std::shared_ptr<Slot> s;
    {
      std::lock_guard<std::mutex> g(sh.mutex);
      auto it = sh.map.find(key);
      if (it == sh.map.end()) return nullptr;
      s = it->second;
    }
    if (!s->ready.load(std::memory_order_acquire)) return nullptr;
    return Ptr(s, &s->value);
  }

  // The cached value, built with `size_t build(V&)` (returning its cost in bytes) on a miss.
  // build runs outside the shard lock; if it throws, nothing is cached and the next caller
  // builds again.
  template <class Build>
  Ptr get(uint64_t key, Build&& build) {
    Shard& sh = shard(key);
    std::shared_ptr<Slot> s;
    {
      std::lock_guard<std::mutex> g(sh.mutex);
      auto [it, inserted] = sh.map.try_emplace(key);
      if (inserted) {
        it->second = std::make_shared<Slot>();
        sh.fifo.emplace_back(key, it->second.get());
      }
      s = it->second;
    }
    if (s->ready.load(std::memory_order_acquire)) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return Ptr(s, &s->value);
    }
    {
      std::lock_guard<std::mutex> build_lock(s->build_mutex);
      if (!s->ready.load(std::memory_order_relaxed)) {
        misses_.fetch_add(1, std::memory_order_relaxed);
        size_t cost = build(s->value) + sizeof(Slot);
        s->ready.store(true, std::memory_order_release);
        account(sh, key, s.get(), cost);
      } else {
        hits_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    return Ptr(s, &s->value);
  }

  CacheStats stats() const {
    CacheStats st;
    st.hits = hits_.load(std::memory_order_relaxed);
    st.misses = misses_.load(std::memory_order_relaxed);
    st.evictions = evictions_.load(std::memory_order_relaxed);
    for (const Shard& sh : shards_) {
      std::lock_guard<std::mutex> g(sh.mutex);
      st.bytes += sh.bytes;
      st.entries += sh.map.size();
    }
    return st;
  }

 private:
  struct Slot {
    std::mutex build_mutex;
    std::atomic<bool> ready{false};
    size_t cost = 0;  // counted in the shard's bytes once accounted
    bool accounted = false;
    V value{};
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<uint64_t, std::shared_ptr<Slot>> map;
    std::deque<std::pair<uint64_t, const Slot*>> fifo;  // insertion order; pointer = identity only
    size_t bytes = 0;
  };

  Shard& shard(uint64_t key) { return shards_[index(key)]; }
  const Shard& shard(uint64_t key) const { return shards_[index(key)]; }
  size_t index(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 32) % shards_.size();
  }

  void account(Shard& sh, uint64_t key, Slot* s, size_t cost) {
    std::lock_guard<std::mutex> g(sh.mutex);
    auto it = sh.map.find(key);
    if (it == sh.map.end() || it->second.get() != s) return;  // evicted while it was built
    s->cost = cost;
    s->accounted = true;
    sh.bytes += cost;
    // Evict the oldest entries, never the one just built (a value larger than the budget is
    // still returned to its caller and dropped by the next insertion).
    while (sh.bytes > shard_budget_ && sh.fifo.size() > 1) {
      auto [old_key, old_slot] = sh.fifo.front();
      if (old_slot == s) break;
      sh.fifo.pop_front();
      auto old = sh.map.find(old_key);
      if (old == sh.map.end() || old->second.get() != old_slot) continue;  // already replaced
      if (old->second->accounted) sh.bytes -= old->second->cost;
      sh.map.erase(old);
      evictions_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  std::vector<Shard> shards_;
  size_t shard_budget_;
  std::atomic<uint64_t> hits_{0}, misses_{0}, evictions_{0};
};

}  // namespace rbox::image::fuse
