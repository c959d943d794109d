// RowStatsCache (kernels/cuda/spmm/row_stats_cache.h): the CUDA backend's
// per-buffer memory of row statistics. Host-only: runs without a GPU.
#include <gtest/gtest.h>

#include "sparsed/buffer.h"
#include "spmm/row_stats_cache.h"

namespace sparsed::cuda {
namespace {

RowStats Stats(int64_t max_row) {
  RowStats s;
  s.max_row = max_row;
  s.empty_rows = max_row / 2;
  s.mean = 0.5 * static_cast<double>(max_row);
  s.stddev = 0.25;
  return s;
}

TEST(RowStatsCache, KeepsWhatWasPutForTheSameBufferRowsAndNonZeros) {
  RowStatsCache cache;
  EXPECT_FALSE(cache.Find(7, 100, 1000).has_value());
  cache.Put(7, 100, 1000, Stats(40));
  const std::optional<RowStats> got = cache.Find(7, 100, 1000);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->max_row, 40);
  EXPECT_EQ(got->empty_rows, 20);
  EXPECT_DOUBLE_EQ(got->mean, 20.0);
  EXPECT_DOUBLE_EQ(got->stddev, 0.25);
  // Another buffer, or the same buffer read with other sizes, is a miss.
  EXPECT_FALSE(cache.Find(8, 100, 1000).has_value());
  EXPECT_FALSE(cache.Find(7, 99, 1000).has_value());
  EXPECT_FALSE(cache.Find(7, 100, 999).has_value());
  const RowStatsCache::Counts c = cache.counts();
  EXPECT_EQ(c.hits, 1);
  EXPECT_EQ(c.misses, 4);
  EXPECT_EQ(c.entries, 1);
}

TEST(RowStatsCache, BufferIdZeroIsNeverKept) {
  RowStatsCache cache;
  cache.Put(0, 10, 10, Stats(3));
  EXPECT_FALSE(cache.Find(0, 10, 10).has_value());
  EXPECT_EQ(cache.counts().entries, 0);
}

TEST(RowStatsCache, ForgetsTheLeastRecentlyUsedBeyondItsCapacity) {
  RowStatsCache cache(2);
  cache.Put(1, 5, 5, Stats(1));
  cache.Put(2, 5, 5, Stats(2));
  ASSERT_TRUE(cache.Find(1, 5, 5).has_value());  // 1 is now the most recent
  cache.Put(3, 5, 5, Stats(3));                  // evicts 2
  EXPECT_FALSE(cache.Find(2, 5, 5).has_value());
  ASSERT_TRUE(cache.Find(1, 5, 5).has_value());
  ASSERT_TRUE(cache.Find(3, 5, 5).has_value());
  EXPECT_EQ(cache.Find(3, 5, 5)->max_row, 3);
  EXPECT_EQ(cache.counts().entries, 2);
  cache.Put(3, 5, 5, Stats(9));  // a second Put replaces
  EXPECT_EQ(cache.Find(3, 5, 5)->max_row, 9);
  EXPECT_EQ(cache.counts().entries, 2);
}

// The key's soundness rests on Buffer ids never being reused, even where the
// allocator hands the same address out again.
TEST(BufferId, EveryAllocationHasItsOwnIdAndAMoveCarriesIt) {
  absl::StatusOr<Buffer> a = Buffer::Allocate(256);
  ASSERT_TRUE(a.ok());
  const uint64_t first = a->id();
  EXPECT_NE(first, 0u);
  const void* address = a->data();
  Buffer moved = std::move(*a);
  EXPECT_EQ(moved.id(), first);
  EXPECT_EQ(a->id(), 0u);
  moved = Buffer();
  absl::StatusOr<Buffer> b = Buffer::Allocate(256);
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->id(), first);  // whether or not b->data() == address
  (void)address;
  absl::StatusOr<Buffer> empty = Buffer::Allocate(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->id(), 0u);
}

}  // namespace
}  // namespace sparsed::cuda
