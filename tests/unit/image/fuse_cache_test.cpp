// Unit tests for the FUSE server's image-independent state: stateless node ids and the sharded
// cache (build once, coalesced misses, failed builds not cached, bounded by its budget).
#include "image/fuse_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using rbox::image::fuse::kRootNode;
using rbox::image::fuse::node_for_ref;
using rbox::image::fuse::ref_for_node;
using rbox::image::fuse::ShardedCache;

TEST(FuseNodeIds, RootIsOneAndOthersAreRefPlusTwo) {
  const uint64_t root = (7ull << 16) | 120;
  EXPECT_EQ(node_for_ref(root, root), kRootNode);
  EXPECT_EQ(node_for_ref(0, root), 2u);
  EXPECT_EQ(node_for_ref(root + 1, root), root + 3);
  uint64_t ref = 99;
  ASSERT_TRUE(ref_for_node(kRootNode, root, &ref));
  EXPECT_EQ(ref, root);
  EXPECT_FALSE(ref_for_node(0, root, &ref));  // 0 never names an inode
}

TEST(FuseNodeIds, RoundTripForEveryShapeOfReference) {
  const uint64_t root = 0;  // a root at reference 0 must not collide with anything
  for (uint64_t block : {0ull, 1ull, 8190ull, (1ull << 32) + 5}) {
    for (uint64_t off : {0ull, 1ull, 8191ull}) {
      uint64_t ref = (block << 16) | off;
      uint64_t node = node_for_ref(ref, root);
      if (ref != root) {
        EXPECT_GE(node, 2u);
      }
      uint64_t back = ~0ull;
      ASSERT_TRUE(ref_for_node(node, root, &back));
      EXPECT_EQ(back, ref);
    }
  }
}

TEST(ShardedCache, BuildsOnceAndFindsAfterwards) {
  ShardedCache<std::string> cache(1 << 20);
  EXPECT_EQ(cache.find(5), nullptr);
  int builds = 0;
  auto v = cache.get(5, [&](std::string& s) {
    ++builds;
    s = "five";
    return s.size();
  });
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(*v, "five");
  auto again = cache.get(5, [&](std::string& s) {
    ++builds;
    s = "other";
    return s.size();
  });
  EXPECT_EQ(*again, "five");
  EXPECT_EQ(builds, 1);
  ASSERT_NE(cache.find(5), nullptr);
  EXPECT_EQ(*cache.find(5), "five");
  auto st = cache.stats();
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.entries, 1u);
}

TEST(ShardedCache, ConcurrentMissesOnOneKeyBuildOnce) {
  ShardedCache<std::vector<int>> cache(1 << 20);
  std::atomic<int> builds{0};
  std::vector<std::thread> threads;
  std::vector<int> seen(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto v = cache.get(42, [&](std::vector<int>& out) {
        builds.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));  // others arrive meanwhile
        out.assign(100, 7);
        return out.size() * sizeof(int);
      });
      seen[t] = v->at(99);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(builds.load(), 1);
  for (int s : seen) EXPECT_EQ(s, 7);
}

TEST(ShardedCache, FailedBuildIsNotCached) {
  ShardedCache<int> cache(1 << 20);
  EXPECT_THROW(cache.get(1, [](int&) -> size_t { throw std::runtime_error("corrupt block"); }),
               std::runtime_error);
  EXPECT_EQ(cache.find(1), nullptr);
  auto v = cache.get(1, [](int& x) {
    x = 3;
    return sizeof(x);
  });
  EXPECT_EQ(*v, 3);
}

TEST(ShardedCache, StaysWithinItsBudgetAndKeepsHeldValuesAlive) {
  // One shard, room for about four 1000-byte values.
  ShardedCache<std::string> cache(4500, 1);
  auto first = cache.get(0, [](std::string& s) {
    s.assign(1000, 'a');
    return s.size();
  });
  for (uint64_t k = 1; k < 50; ++k) {
    cache.get(k, [](std::string& s) {
      s.assign(1000, 'b');
      return s.size();
    });
  }
  auto st = cache.stats();
  EXPECT_LE(st.bytes, 4500u);
  EXPECT_GE(st.evictions, 40u);
  EXPECT_EQ(cache.find(0), nullptr);  // oldest went first (FIFO)
  EXPECT_NE(cache.find(49), nullptr);
  EXPECT_EQ(first->size(), 1000u);  // still valid for its holder
  EXPECT_EQ((*first)[999], 'a');
}
