// NmRepackCache (kernels/cuda/spmm/nm_repack_cache.h): the CUDA backend's
// memory of 2:4 repacks of held N:M weights. Host-only (entries made of
// host buffers, no event): runs without a GPU. That the cached repack gives
// the right products on the GPU is test_cuda_nm_spmm's WiderPatterns, which
// multiplies each weight twice.
#include <gtest/gtest.h>

#include "spmm/nm_repack_cache.h"

namespace sparsed::cuda {
namespace {

NmRepackCache::Ptr Entry(int64_t values_bytes, int64_t meta_bytes) {
  auto p = std::make_shared<NmRepackCache::Packed>();
  auto v = Buffer::Allocate(values_bytes);
  auto m = Buffer::Allocate(meta_bytes);
  EXPECT_TRUE(v.ok() && m.ok());
  p->values24 = std::move(v).value();
  p->meta24 = std::move(m).value();
  return p;
}

NmRepackCache::Key KeyOf(uint64_t id) { return {id, id + 1000, 64, 128, 1, 4}; }

TEST(NmRepackCache, FindsWhatWasPutUnderTheWholeKeyOnly) {
  NmRepackCache cache(1 << 20);
  EXPECT_EQ(cache.Find(KeyOf(1)), nullptr);
  const NmRepackCache::Ptr e = Entry(300, 20);
  cache.Put(KeyOf(1), e);
  EXPECT_EQ(cache.Find(KeyOf(1)), e);
  NmRepackCache::Key other = KeyOf(1);
  other.m = 8;  // the same buffers read as another pattern
  EXPECT_EQ(cache.Find(other), nullptr);
  other = KeyOf(1);
  other.positions_id = 5;
  EXPECT_EQ(cache.Find(other), nullptr);
  const NmRepackCache::Counts c = cache.counts();
  EXPECT_EQ(c.hits, 1);
  EXPECT_EQ(c.misses, 3);
  EXPECT_EQ(c.entries, 1);
  EXPECT_EQ(c.bytes, 320);
}

TEST(NmRepackCache, EvictsTheLeastRecentlyUsedToStayWithinItsBytes) {
  NmRepackCache cache(1000);
  cache.Put(KeyOf(1), Entry(380, 20));
  cache.Put(KeyOf(2), Entry(380, 20));
  ASSERT_NE(cache.Find(KeyOf(1)), nullptr);  // 1 is now the most recent
  const NmRepackCache::Ptr held = cache.Find(KeyOf(2));
  ASSERT_NE(held, nullptr);
  ASSERT_NE(cache.Find(KeyOf(1)), nullptr);
  cache.Put(KeyOf(3), Entry(380, 20));  // 1200 > 1000: 2 goes
  EXPECT_EQ(cache.Find(KeyOf(2)), nullptr);
  EXPECT_NE(cache.Find(KeyOf(1)), nullptr);
  EXPECT_NE(cache.Find(KeyOf(3)), nullptr);
  EXPECT_EQ(cache.counts().bytes, 800);
  // A reader's entry outlives its eviction.
  EXPECT_EQ(held->values24.size(), 380);
  EXPECT_NE(held->values24.data(), nullptr);
}

TEST(NmRepackCache, AnEntryLargerThanTheBudgetIsNotKept) {
  NmRepackCache cache(1000);
  cache.Put(KeyOf(1), Entry(380, 20));
  cache.Put(KeyOf(2), Entry(990, 20));
  EXPECT_EQ(cache.Find(KeyOf(2)), nullptr);
  EXPECT_NE(cache.Find(KeyOf(1)), nullptr);  // and nothing was evicted for it
  NmRepackCache none(0);
  none.Put(KeyOf(1), Entry(16, 4));
  EXPECT_EQ(none.Find(KeyOf(1)), nullptr);
}

TEST(NmRepackCache, APutForAKeptKeyReplacesIt) {
  NmRepackCache cache(1000);
  cache.Put(KeyOf(1), Entry(100, 20));
  const NmRepackCache::Ptr second = Entry(200, 20);
  cache.Put(KeyOf(1), second);
  EXPECT_EQ(cache.Find(KeyOf(1)), second);
  EXPECT_EQ(cache.counts().entries, 1);
  EXPECT_EQ(cache.counts().bytes, 220);
}

}  // namespace
}  // namespace sparsed::cuda
