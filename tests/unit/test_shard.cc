// The shard module: nnz-balanced row partitions, sharded tensors (split,
// reassemble, reshard), placement decisions, and SpMM with a row-sharded A
// on several simulated devices (one CPU backend each) against the unsharded
// CPU result (bit for bit) and a float64 dense reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "forwarding_backend.h"
#include "kernels_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/shard.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"
#include "status_test_util.h"

namespace sparsed {
namespace {

using test::Must;

using test::Triplet;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Same description and the same bytes in every component.
void ExpectIdentical(const Tensor& x, const Tensor& y) {
  const TensorDesc &a = x.desc(), &b = y.desc();
  ASSERT_EQ(a.format, b.format);
  ASSERT_EQ(a.dtype, b.dtype);
  ASSERT_EQ(a.index_dtype, b.index_dtype);
  ASSERT_EQ(a.shape, b.shape);
  ASSERT_EQ(a.nnz, b.nnz);
  ASSERT_EQ(x.specs().size(), y.specs().size());
  for (const ComponentSpec& spec : x.specs()) {
    const Buffer* p = x.component(spec.name);
    const Buffer* q = y.component(spec.name);
    ASSERT_NE(q, nullptr) << spec.name;
    ASSERT_EQ(p->size(), q->size()) << spec.name;
    EXPECT_TRUE(p->size() == 0 || std::memcmp(p->data(), q->data(), p->size()) == 0)
        << spec.name << " differs";
  }
}

std::vector<int64_t> RowPtr(const std::vector<int64_t>& row_nnz) {
  std::vector<int64_t> rp(1, 0);
  for (int64_t n : row_nnz) rp.push_back(rp.back() + n);
  return rp;
}

int64_t MaxRangeNnz(const std::vector<int64_t>& rp, const std::vector<RowRange>& ranges) {
  int64_t m = 0;
  for (const RowRange& r : ranges) m = std::max(m, rp[r.end] - rp[r.begin]);
  return m;
}

// The optimal largest-range nnz by dynamic programming (small inputs).
int64_t OptimalMaxNnz(const std::vector<int64_t>& rp, int shards) {
  const int64_t rows = static_cast<int64_t>(rp.size()) - 1;
  const int64_t inf = std::numeric_limits<int64_t>::max();
  // best[j][r]: first r rows in j ranges.
  std::vector<std::vector<int64_t>> best(shards + 1, std::vector<int64_t>(rows + 1, inf));
  best[0][0] = 0;
  for (int j = 1; j <= shards; ++j) {
    for (int64_t r = 0; r <= rows; ++r) {
      for (int64_t p = 0; p <= r; ++p) {
        if (best[j - 1][p] == inf) continue;
        best[j][r] = std::min(best[j][r], std::max(best[j - 1][p], rp[r] - rp[p]));
      }
    }
  }
  return best[shards][rows];
}

void ExpectCover(const std::vector<RowRange>& ranges, int64_t rows, int shards) {
  ASSERT_EQ(ranges.size(), static_cast<size_t>(shards));
  int64_t next = 0;
  for (const RowRange& r : ranges) {
    EXPECT_EQ(r.begin, next) << RangesString(ranges);
    EXPECT_GE(r.end, r.begin) << RangesString(ranges);
    next = r.end;
  }
  EXPECT_EQ(next, rows) << RangesString(ranges);
}

// ---------------------------------------------------------------------------
// Partitioning

TEST(PartitionRowPtr, CoversEveryRowOnceBalancedAndOptimal) {
  std::mt19937_64 rng(18);
  for (int trial = 0; trial < 300; ++trial) {
    const int64_t rows = std::uniform_int_distribution<int64_t>(0, 24)(rng);
    const int shards = std::uniform_int_distribution<int>(1, 9)(rng);
    std::vector<int64_t> row_nnz(rows);
    const int shape = trial % 3;  // uniform, skewed, mostly empty
    for (int64_t& n : row_nnz) {
      const int64_t u = std::uniform_int_distribution<int64_t>(0, 20)(rng);
      n = shape == 0 ? u : shape == 1 ? u * u * u / 100 : (u > 17 ? u : 0);
    }
    const std::vector<int64_t> rp = RowPtr(row_nnz);
    const std::vector<RowRange> ranges = Must(PartitionRowPtr(rp, shards));
    SCOPED_TRACE(StrCat("trial ", trial, " rows ", rows, " shards ", shards, " ranges ",
                        RangesString(ranges)));
    ExpectCover(ranges, rows, shards);
    const int64_t total = rp.back();
    const int64_t longest = row_nnz.empty() ? 0 : *std::max_element(row_nnz.begin(), row_nnz.end());
    EXPECT_LE(MaxRangeNnz(rp, ranges), (total + shards - 1) / shards + longest);
    EXPECT_EQ(MaxRangeNnz(rp, ranges), OptimalMaxNnz(rp, shards));
  }
}

TEST(PartitionRowPtr, ManyRowsAndTheMostShards) {
  std::mt19937_64 rng(3);
  std::vector<int64_t> row_nnz(300000);
  for (int64_t& n : row_nnz) n = std::uniform_int_distribution<int64_t>(0, 64)(rng);
  row_nnz[12345] = 5000;
  const std::vector<int64_t> rp = RowPtr(row_nnz);
  const std::vector<RowRange> ranges = Must(PartitionRowPtr(rp, kMaxShards));
  ExpectCover(ranges, 300000, kMaxShards);
  EXPECT_LE(MaxRangeNnz(rp, ranges), (rp.back() + kMaxShards - 1) / kMaxShards + 5000);
  EXPECT_GE(MaxRangeNnz(rp, ranges), 5000);
}

TEST(PartitionRowPtr, BalancesNonZerosNotRows) {
  // 8 rows: one heavy row then light ones; an even row split would give the
  // first shard 100 + 3 entries.
  const std::vector<int64_t> rp = RowPtr({100, 1, 1, 1, 1, 1, 1, 1});
  const std::vector<RowRange> r = Must(PartitionRowPtr(rp, 2));
  EXPECT_THAT(r, ElementsAre(RowRange{0, 1}, RowRange{1, 8}));
}

TEST(PartitionRowPtr, AllZeroRowsSplitEvenlyByRows) {
  const std::vector<int64_t> rp(11, 0);
  EXPECT_THAT(Must(PartitionRowPtr(rp, 4)),
              ElementsAre(RowRange{0, 2}, RowRange{2, 5}, RowRange{5, 7}, RowRange{7, 10}));
}

TEST(PartitionRowPtr, MoreShardsThanRowsLeavesEmptyShards) {
  const std::vector<int64_t> rp = RowPtr({3, 2, 4});
  const std::vector<RowRange> r = Must(PartitionRowPtr(rp, 5));
  ExpectCover(r, 3, 5);
  EXPECT_EQ(MaxRangeNnz(rp, r), 4);
  int empty = 0;
  for (const RowRange& x : r) empty += x.rows() == 0;
  EXPECT_EQ(empty, 2);
  // No rows at all: every range empty.
  EXPECT_THAT(Must(PartitionRowPtr(std::vector<int64_t>{0}, 3)),
              ElementsAre(RowRange{0, 0}, RowRange{0, 0}, RowRange{0, 0}));
}

TEST(PartitionRowPtr, ConcentratedNonZeros) {
  // All entries in rows 2 and 7 of 10: the largest shard holds one of them.
  const std::vector<int64_t> rp = RowPtr({0, 0, 50, 0, 0, 0, 0, 50, 0, 0});
  for (int s : {2, 3, 4}) {
    const std::vector<RowRange> r = Must(PartitionRowPtr(rp, s));
    ExpectCover(r, 10, s);
    EXPECT_EQ(MaxRangeNnz(rp, r), 50) << RangesString(r);
  }
}

TEST(PartitionRowPtr, RejectsBadInput) {
  const std::vector<int64_t> rp = RowPtr({1, 2});
  EXPECT_INVALID(PartitionRowPtr(rp, 0).status(), "shards = 0 must be in [1, 1024]");
  EXPECT_INVALID(PartitionRowPtr(rp, -3).status(), "shards = -3 must be in [1, 1024]");
  EXPECT_INVALID(PartitionRowPtr(rp, 1025).status(), "shards = 1025 must be in [1, 1024]");
  EXPECT_INVALID(PartitionRowPtr({}, 2).status(), "row_ptr is empty");
  EXPECT_INVALID(PartitionRowPtr(std::vector<int64_t>{1, 2}, 2).status(), "row_ptr[0] = 1");
  EXPECT_INVALID(PartitionRowPtr(std::vector<int64_t>{0, 5, 4}, 2).status(),
                 "row_ptr[2] = 4 is less than row_ptr[1] = 5");
  EXPECT_EQ(Must(PartitionRowPtr(rp, 1024)).size(), 1024u);
}

// ---------------------------------------------------------------------------
// Sharded tensors

Tensor RandomCsr(int64_t rows, int64_t cols, double density, DType idx, uint64_t seed,
                 int64_t long_row = -1) {
  std::mt19937_64 rng(seed);
  return test::MakeCsrFromTriplets(rows, cols,
                                   test::RandomTriplets(rows, cols, density, rng, long_row), idx);
}

void ExpectValidShards(const ShardedTensor& st, const Tensor& whole_csr) {
  ASSERT_TRUE(ValidateSharded(st).ok()) << ValidateSharded(st);
  const std::vector<double> whole = test::Densify(whole_csr);
  const int64_t cols = whole_csr.desc().cols();
  for (int i = 0; i < st.shard_count(); ++i) {
    const Tensor& s = st.shards[i];
    EXPECT_TRUE(ValidateTensor(s, {}, "shard").ok()) << ValidateTensor(s, {}, "shard");
    EXPECT_EQ(s.format(), Format::kCsr);
    EXPECT_EQ(s.desc().index_dtype, whole_csr.desc().index_dtype);
    // Its rows are the whole's rows of its range.
    const std::vector<double> d = test::Densify(s);
    ASSERT_EQ(static_cast<int64_t>(d.size()), st.ranges[i].rows() * cols);
    for (size_t x = 0; x < d.size(); ++x) {
      EXPECT_EQ(d[x], whole[st.ranges[i].begin * cols + x]) << "shard " << i;
    }
  }
}

TEST(ShardByRows, ShardsAreValidRebasedCsrAndReassembleBitExact) {
  for (DType idx : {DType::kI32, DType::kI64}) {
    for (DType dtype : {DType::kF32, DType::kF16}) {
      Tensor a = RandomCsr(37, 23, 0.2, idx, 7, /*long_row=*/5);
      if (dtype != DType::kF32) a = Must(CastValues(a, dtype));
      for (int s : {1, 2, 4, 40}) {
        SCOPED_TRACE(StrCat(DTypeName(idx), " ", DTypeName(dtype), " shards ", s));
        const ShardedTensor st = Must(ShardByRows(a, s));
        ASSERT_EQ(st.shard_count(), s);
        ExpectCover(st.ranges, 37, s);
        EXPECT_EQ(st.device_of_shard, std::vector<int>(s, 0));
        if (dtype == DType::kF32) ExpectValidShards(st, a);
        ExpectIdentical(Must(Reassemble(st)), a);
        // Balanced: the largest shard holds at most an even share plus a row.
        const std::vector<int64_t> rp = test::GetIndices(a, "row_ptr");
        int64_t longest = 0;
        for (size_t r = 0; r + 1 < rp.size(); ++r) longest = std::max(longest, rp[r + 1] - rp[r]);
        int64_t largest = 0;
        for (const Tensor& t : st.shards) largest = std::max(largest, t.desc().nnz);
        EXPECT_LE(largest, (a.desc().nnz + s - 1) / s + longest);
      }
    }
  }
}

TEST(ShardByRows, OtherSparseFormatsGoThroughCsr) {
  const Tensor csr = RandomCsr(19, 11, 0.3, DType::kI64, 3);
  for (Format f : {Format::kCoo, Format::kCsc, Format::kBsr}) {
    ConvertOptions o;
    o.index_dtype = DType::kI64;  // Convert would narrow to i32 otherwise
    if (f == Format::kBsr) o.block_rows = o.block_cols = 2;
    const Tensor x = Must(Convert(csr, f, o));
    const ShardedTensor st = Must(ShardByRows(x, 3));
    EXPECT_EQ(st.whole.format, Format::kCsr);
    EXPECT_EQ(st.whole.index_dtype, DType::kI64);
    ExpectIdentical(Must(Reassemble(st)), csr);
  }
}

TEST(ShardByRows, RejectsBadInput) {
  const Tensor a = RandomCsr(5, 4, 0.5, DType::kI32, 1);
  EXPECT_INVALID(ShardByRows(a, 0).status(), "shards = 0 must be in [1, 1024]");
  EXPECT_INVALID(ShardByRows(a, 2000).status(), "shards = 2000 must be in [1, 1024]");
  const Tensor dense = test::MakeDense({2, 2}, {1, 2, 3, 4});
  EXPECT_INVALID(ShardByRows(dense, 2).status(), "a.format = dense is not sparse");
  // Contents are checked before anything is copied.
  const Tensor bad = test::MakeCsr(2, 3, {0, 1, 2}, {0, 9}, {1, 2}, DType::kI32);
  EXPECT_INVALID(ShardByRows(bad, 2).status(), "a.col_idx[1] = 9");
}

TEST(Reshard, ThreeToTwoAndTwoToFiveReassembleIdentically) {
  for (DType idx : {DType::kI32, DType::kI64}) {
    const Tensor a = RandomCsr(41, 17, 0.25, idx, 11, /*long_row=*/30);
    const ShardedTensor three = Must(ShardByRows(a, 3));
    const ShardedTensor two = Must(Reshard(three, 2));
    ASSERT_EQ(two.shard_count(), 2);
    ExpectIdentical(Must(Reassemble(two)), a);
    const ShardedTensor five = Must(Reshard(two, 5));
    ASSERT_EQ(five.shard_count(), 5);
    ExpectIdentical(Must(Reassemble(five)), a);
    // The same partition as sharding the whole afresh.
    EXPECT_EQ(five.ranges, Must(ShardByRows(a, 5)).ranges);
  }
  const ShardedTensor one = Must(ShardByRows(RandomCsr(4, 4, 0.5, DType::kI32, 2), 1));
  EXPECT_INVALID(Reshard(one, 0).status(), "shards = 0");
  const Tensor c = test::MakeDense({2, 2}, {1, 2, 3, 4});
  const ShardedTensor dense = Must(SplitRows(c, std::vector<RowRange>{{0, 1}, {1, 2}}));
  EXPECT_INVALID(Reshard(dense, 3).status(), "must be csr to reshard");
}

TEST(SplitRows, DenseAndCsrAtGivenRanges) {
  const Tensor d = test::MakeDense({3, 2}, {1, 2, 3, 4, 5, 6});
  const std::vector<RowRange> ranges = {{0, 2}, {2, 2}, {2, 3}};
  const ShardedTensor st = Must(SplitRows(d, ranges));
  ASSERT_EQ(st.shard_count(), 3);
  EXPECT_EQ(test::GetValues(st.shards[0]), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(st.shards[1].desc().shape, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(test::GetValues(st.shards[2]), (std::vector<float>{5, 6}));
  ExpectIdentical(Must(Reassemble(st)), d);

  const Tensor a = RandomCsr(3, 5, 0.5, DType::kI32, 4);
  ExpectIdentical(Must(Reassemble(Must(SplitRows(a, ranges)))), a);

  EXPECT_INVALID(SplitRows(d, std::vector<RowRange>{{0, 1}, {2, 3}}).status(),
                 "ranges[1] = [2, 3) must start at row 1");
  EXPECT_INVALID(SplitRows(d, std::vector<RowRange>{{0, 2}}).status(),
                 "end at row 2 but the matrix has 3 rows");
  EXPECT_INVALID(SplitRows(d, std::vector<RowRange>{}).status(), "ranges.size() = 0");
  const Tensor coo = Must(Convert(a, Format::kCoo));
  EXPECT_INVALID(SplitRows(coo, ranges).status(), "tensor.format = coo must be csr or dense");
}

TEST(ValidateSharded, NamesTheBrokenInvariant) {
  const Tensor a = RandomCsr(6, 4, 0.5, DType::kI32, 5);
  ShardedTensor st = Must(ShardByRows(a, 2));
  EXPECT_TRUE(ValidateSharded(st, 1).ok());
  st.device_of_shard[1] = 3;
  EXPECT_INVALID(ValidateSharded(st, 2), "sharded.device_of_shard[1] = 3 is not a device (0..1)");
  st.device_of_shard = {0};
  EXPECT_INVALID(ValidateSharded(st), "has 2 shards but 2 ranges and 1 device_of_shard entries");
  st.device_of_shard = {0, 0};
  st.whole.nnz += 1;
  EXPECT_INVALID(ValidateSharded(st), "but sharded.whole.nnz =");
  st.whole.nnz -= 1;
  std::swap(st.shards[0], st.shards[1]);
  if (st.ranges[0].rows() != st.ranges[1].rows()) {
    EXPECT_INVALID(ValidateSharded(st), "sharded.shards[0].shape =");
  }
  ShardedTensor empty;
  empty.whole = {Format::kCsr, DType::kF32, DType::kI32, {2, 2}, 0};
  EXPECT_INVALID(ValidateSharded(empty), "sharded.shards.size() = 0 must be in [1, 1024]");
}

TEST(AssignDevices, ChecksEveryEntry) {
  ShardedTensor st = Must(ShardByRows(RandomCsr(6, 4, 0.5, DType::kI32, 5), 3));
  EXPECT_TRUE(AssignDevices(st, {2, 0, 1}, 3).ok());
  EXPECT_EQ(st.device_of_shard, (std::vector<int>{2, 0, 1}));
  EXPECT_INVALID(AssignDevices(st, {0, 1}, 3), "device_of_shard has 2 entries but there are 3");
  EXPECT_INVALID(AssignDevices(st, {0, 3, 1}, 3), "device_of_shard[1] = 3 is not a device (0..2)");
  EXPECT_INVALID(AssignDevices(st, {0, -1, 1}, 3), "device_of_shard[1] = -1");
  EXPECT_INVALID(AssignDevices(st, {0, 0, 0}, 0), "device_count = 0 must be in [1, 1024]");
  EXPECT_EQ(st.device_of_shard, (std::vector<int>{2, 0, 1}));  // unchanged on error
}

// ---------------------------------------------------------------------------
// Placement

TEST(PlaceShards, LargestFirstOntoTheLeastUsedDevice) {
  // Shards 0..3 of 30, 50, 10, 40 bytes onto devices with 100, 80, 90 free:
  // 50 -> d0 (100), 40 -> d2 (90), 30 -> d1 (80), 10 -> d1 (50 vs 50 vs 50: lowest).
  const std::vector<int64_t> free_bytes = {100, 80, 90};
  EXPECT_THAT(Must(PlaceShards(free_bytes, std::vector<int64_t>{30, 50, 10, 40})),
              ElementsAre(1, 0, 0, 2));
}

TEST(PlaceShards, TiesGoToTheLowerShardAndDevice) {
  EXPECT_THAT(Must(PlaceShards(std::vector<int64_t>{10, 10}, std::vector<int64_t>{5, 5, 5, 5})),
              ElementsAre(0, 1, 0, 1));
  EXPECT_THAT(Must(PlaceShards(std::vector<int64_t>{10, 10, 10}, std::vector<int64_t>{})),
              ElementsAre());
  // Exactly full is a fit.
  EXPECT_THAT(Must(PlaceShards(std::vector<int64_t>{7}, std::vector<int64_t>{3, 4})),
              ElementsAre(0, 0));
}

TEST(PlaceShards, RefusesWhatDoesNotFit) {
  EXPECT_ERROR(
      PlaceShards(std::vector<int64_t>{100, 60}, std::vector<int64_t>{70, 50, 45}).status(),
      absl::StatusCode::kResourceExhausted,
      "shard 2 (45 bytes) fits on no device: free bytes per device [100, 60], left "
      "after placing the larger shards [30, 10]");
  EXPECT_ERROR(PlaceShards(std::vector<int64_t>{5}, std::vector<int64_t>{6}).status(),
               absl::StatusCode::kResourceExhausted, "shard 0 (6 bytes)");
  EXPECT_INVALID(PlaceShards(std::vector<int64_t>{}, std::vector<int64_t>{1}).status(),
                 "free_bytes is empty");
  EXPECT_INVALID(PlaceShards(std::vector<int64_t>{1, -2}, std::vector<int64_t>{1}).status(),
                 "free_bytes[1] = -2 must be >= 0");
  EXPECT_INVALID(PlaceShards(std::vector<int64_t>{1}, std::vector<int64_t>{0, -1}).status(),
                 "shard_bytes[1] = -1 must be >= 0");
  EXPECT_INVALID(PlaceShards(std::vector<int64_t>{1}, std::vector<int64_t>(1025, 0)).status(),
                 "shard_bytes has 1025 shards; at most 1024");
}

TEST(PlaceBesideOperands, WhereMostOperandBytesLive) {
  const std::vector<int64_t> free_bytes = {1000, 1000, 1000};
  // A sharded operand on 0 and 1, a dense one on 1: device 1 holds most.
  const std::vector<OperandBytes> ops = {{0, 300}, {1, 200}, {1, 150}};
  EXPECT_EQ(Must(PlaceBesideOperands(ops, free_bytes, 100)), 1);
  // Tie in operand bytes: the device with more free bytes, then the lower one.
  const std::vector<OperandBytes> tie = {{0, 100}, {2, 100}};
  EXPECT_EQ(Must(PlaceBesideOperands(tie, std::vector<int64_t>{50, 900, 60}, 10)), 2);
  EXPECT_EQ(Must(PlaceBesideOperands(tie, std::vector<int64_t>{60, 900, 60}, 10)), 0);
  // No room beside the operands: the least used device that has room.
  EXPECT_EQ(Must(PlaceBesideOperands(ops, std::vector<int64_t>{10, 20, 500}, 100)), 2);
  // No operands: the least used device.
  EXPECT_EQ(Must(PlaceBesideOperands({}, std::vector<int64_t>{10, 30, 30}, 5)), 1);
}

TEST(PlaceBesideOperands, RejectsBadInputAndNoRoom) {
  const std::vector<int64_t> free_bytes = {10, 20};
  EXPECT_ERROR(PlaceBesideOperands({}, free_bytes, 21).status(),
               absl::StatusCode::kResourceExhausted,
               "the result (21 bytes) fits on no device: free bytes per device [10, 20]");
  EXPECT_INVALID(PlaceBesideOperands(std::vector<OperandBytes>{{2, 1}}, free_bytes, 1).status(),
                 "operands[0].device = 2 is not a device (0..1)");
  EXPECT_INVALID(PlaceBesideOperands(std::vector<OperandBytes>{{0, -1}}, free_bytes, 1).status(),
                 "operands[0].bytes = -1 must be >= 0");
  EXPECT_INVALID(PlaceBesideOperands({}, free_bytes, -1).status(), "result_bytes = -1");
  EXPECT_INVALID(PlaceBesideOperands({}, std::vector<int64_t>{}, 1).status(),
                 "free_bytes is empty");
}

// ---------------------------------------------------------------------------
// Sharded SpMM on simulated devices

// A CPU backend that counts the SpMMs it runs (which device computed what).
class CountingBackend final : public test::ForwardingBackend {
 public:
  int spmm_calls = 0;
  std::vector<int64_t> rows_computed;

  absl::StatusOr<Tensor> Spmm(const SpmmArgs& args) override {
    ++spmm_calls;
    rows_computed.push_back(args.a->desc().rows());
    return ForwardingBackend::Spmm(args);
  }
};

struct Devices {
  explicit Devices(int n) {
    for (int i = 0; i < n; ++i) owned.push_back(std::make_unique<CountingBackend>());
    for (auto& b : owned) ptrs.push_back(b.get());
  }
  std::vector<std::unique_ptr<CountingBackend>> owned;
  std::vector<Backend*> ptrs;
};

enum class Kind { kRandom, kConcentrated, kFewRows, kZeroRows };

std::vector<Triplet> Entries(Kind kind, int64_t rows, int64_t cols, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  std::vector<Triplet> e;
  switch (kind) {
    case Kind::kRandom:
    case Kind::kFewRows:
      return test::RandomTriplets(rows, cols, 0.35, rng);
    case Kind::kConcentrated:  // every non-zero in rows 1 and 20
      for (int64_t r : {int64_t{1}, int64_t{20}}) {
        for (int64_t c = 0; c < cols; ++c) e.push_back({r, c, val(rng)});
      }
      return e;
    case Kind::kZeroRows:  // every third row empty, the last five too
      for (const Triplet& t : test::RandomTriplets(rows, cols, 0.5, rng)) {
        if (t.r % 3 != 0 && t.r < rows - 5) e.push_back(t);
      }
      return e;
  }
  return e;
}

using SpmmParam = std::tuple<int /*shards*/, DType /*idx*/, DType /*values*/, Kind>;

class ShardedSpmmTest : public ::testing::TestWithParam<SpmmParam> {};

TEST_P(ShardedSpmmTest, EqualsUnshardedBitForBitAndTheFloat64Reference) {
  const auto [shards, idx, dtype, kind] = GetParam();
  const int64_t m = kind == Kind::kFewRows ? 3 : 29, k = 13, n = 6;
  std::mt19937_64 rng(1000 + shards);
  Tensor a = test::MakeCsrFromTriplets(m, k, Entries(kind, m, k, rng), idx);
  if (dtype != DType::kF32) a = Must(CastValues(a, dtype));
  const Tensor a32 = Must(CastValues(a, DType::kF32));  // exact: what the reference reads
  const Tensor b_plain = test::MakeDense({k, n}, test::RandomFloats(k * n, rng));
  const Tensor b_t = test::MakeDense({n, k}, test::RandomFloats(k * n, rng));
  const Tensor c = test::MakeDense({m, n}, test::RandomFloats(m * n, rng));
  const Tensor bias = test::MakeDense({n}, test::RandomFloats(n, rng));

  Devices devices(3);
  ShardedTensor sa = Must(ShardByRows(a, shards));
  const std::vector<int> placed =
      Must(PlaceShards(std::vector<int64_t>(3, 1 << 20), ShardBytes(sa)));
  ASSERT_TRUE(AssignDevices(sa, placed, 3).ok());
  ShardedTensor sc = Must(SplitRows(c, sa.ranges));
  ASSERT_TRUE(AssignDevices(sc, placed, 3).ok());
  if (shards >= 3 && kind == Kind::kRandom) {
    EXPECT_EQ(std::set<int>(placed.begin(), placed.end()).size(), 3u) << "shards spread";
  }

  for (int variant = 0; variant < 4; ++variant) {
    const bool epilogue = variant & 1, tb = variant & 2;
    SCOPED_TRACE(StrCat("epilogue ", epilogue, " transpose_b ", tb));
    SpmmArgs whole;
    whole.a = &a;
    whole.b = tb ? &b_t : &b_plain;
    whole.transpose_b = tb;
    ShardedSpmmArgs args;
    args.a = &sa;
    args.b = whole.b;
    args.b_device = 1;
    args.transpose_b = tb;
    args.gather_device = 2;
    if (epilogue) {
      whole.alpha = args.alpha = 1.5f;
      whole.beta = args.beta = 0.5f;
      whole.c = &c;
      args.c = &sc;
      whole.epilogue.bias = args.epilogue.bias = &bias;
      whole.epilogue.relu = args.epilogue.relu = true;
      whole.epilogue.clamp_max = args.epilogue.clamp_max = 0.8f;
    }
    for (auto& d : devices.owned) d->spmm_calls = 0;
    const Tensor expected = Must(MakeCpuBackend(1)->Spmm(whole));
    ShardedSpmmResult got = Must(ShardedSpmm(args, devices.ptrs));
    ExpectIdentical(got.gathered, expected);
    EXPECT_EQ(got.sharded.shard_count(), 0);
    // Each device ran exactly the shards placed on it.
    for (int d = 0; d < 3; ++d) {
      EXPECT_EQ(devices.owned[d]->spmm_calls, std::count(placed.begin(), placed.end(), d));
    }

    // Left sharded: the same rows in A's blocks, on A's devices.
    args.gather = false;
    ShardedSpmmResult kept = Must(ShardedSpmm(args, devices.ptrs));
    EXPECT_EQ(kept.sharded.ranges, sa.ranges);
    EXPECT_EQ(kept.sharded.device_of_shard, placed);
    ExpectIdentical(Must(Reassemble(kept.sharded)), expected);

    // Float64 reference.
    const std::vector<double> ad = test::Densify(a32), bd = test::Densify(*whole.b);
    const std::vector<float> cv = test::GetValues(c), bv = test::GetValues(bias);
    const std::vector<float> out = test::GetValues(got.gathered);
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double s = 0, mag = 0;
        for (int64_t q = 0; q < k; ++q) {
          const double t = ad[i * k + q] * (tb ? bd[j * k + q] : bd[q * n + j]);
          s += t;
          mag += std::abs(t);
        }
        double x = s;
        if (epilogue) {
          x = std::min(std::max(1.5 * s + 0.5 * cv[i * n + j] + bv[j], 0.0), double{0.8f});
          mag = 1.5 * mag + 0.5 * std::abs(cv[i * n + j]) + std::abs(bv[j]);
        }
        EXPECT_NEAR(out[i * n + j], x, 4e-7 * (mag + 1)) << "row " << i << " col " << j;
      }
    }
  }
}

std::string KindName(Kind k) {
  switch (k) {
    case Kind::kRandom:
      return "random";
    case Kind::kConcentrated:
      return "concentrated";
    case Kind::kFewRows:
      return "few_rows";
    case Kind::kZeroRows:
      return "zero_rows";
  }
  return "?";
}

INSTANTIATE_TEST_SUITE_P(Shards, ShardedSpmmTest,
                         ::testing::Combine(::testing::Values(1, 2, 4, 7),
                                            ::testing::Values(DType::kI32, DType::kI64),
                                            ::testing::Values(DType::kF32, DType::kF16),
                                            ::testing::Values(Kind::kRandom, Kind::kConcentrated,
                                                              Kind::kFewRows, Kind::kZeroRows)),
                         [](const ::testing::TestParamInfo<SpmmParam>& info) {
                           return StrCat(std::get<0>(info.param), "shards_",
                                         DTypeName(std::get<1>(info.param)), "_",
                                         DTypeName(std::get<2>(info.param)), "_",
                                         KindName(std::get<3>(info.param)));
                         });

TEST(ShardedSpmm, SixteenBitOutputEqualsUnsharded) {
  std::mt19937_64 rng(5);
  const Tensor a = Must(CastValues(RandomCsr(17, 9, 0.4, DType::kI32, 8), DType::kBF16));
  const Tensor b =
      Must(CastValues(test::MakeDense({9, 4}, test::RandomFloats(36, rng)), DType::kBF16));
  Devices devices(2);
  ShardedTensor sa = Must(ShardByRows(a, 4));
  ASSERT_TRUE(AssignDevices(sa, {0, 1, 0, 1}, 2).ok());
  SpmmArgs whole;
  whole.a = &a;
  whole.b = &b;
  whole.out_dtype = DType::kBF16;
  ShardedSpmmArgs args;
  args.a = &sa;
  args.b = &b;
  args.out_dtype = DType::kBF16;
  ExpectIdentical(Must(ShardedSpmm(args, devices.ptrs)).gathered,
                  Must(MakeCpuBackend(1)->Spmm(whole)));
}

TEST(ShardedSpmm, PlanListsBroadcastComputeAndGather) {
  const Tensor a = RandomCsr(12, 5, 0.5, DType::kI32, 9);
  const Tensor b = test::MakeDense({5, 3}, std::vector<float>(15, 1.0f));
  const Tensor bias = test::MakeDense({3}, {1, 2, 3});
  ShardedTensor sa = Must(ShardByRows(a, 4));
  ASSERT_TRUE(AssignDevices(sa, {0, 2, 2, 3}, 4).ok());
  ShardedSpmmArgs args;
  args.a = &sa;
  args.b = &b;
  args.b_device = 2;
  args.epilogue.bias = &bias;
  args.gather_device = 1;
  const ShardedSpmmPlan plan = Must(PlanShardedSpmm(args, 4));
  EXPECT_EQ(plan.out_shape, (std::vector<int64_t>{12, 3}));
  ASSERT_EQ(plan.steps.size(), 2u + 4u + 1u);
  EXPECT_EQ(plan.steps[0].kind, ShardStepKind::kBroadcast);
  EXPECT_EQ(plan.steps[0].operand, "b");
  EXPECT_EQ(plan.steps[0].root, 2);
  EXPECT_THAT(plan.steps[0].devices, ElementsAre(0, 3));  // not the root, not unused device 1
  EXPECT_EQ(plan.steps[0].bytes, b.bytes());
  EXPECT_EQ(plan.steps[1].operand, "epilogue.bias");
  for (int i = 0; i < 4; ++i) {
    const ShardStep& s = plan.steps[2 + i];
    EXPECT_EQ(s.kind, ShardStepKind::kCompute);
    EXPECT_EQ(s.shard, i);
    EXPECT_EQ(s.device, sa.device_of_shard[i]);
    EXPECT_EQ(s.rows, sa.ranges[i]);
  }
  EXPECT_EQ(plan.steps[6].kind, ShardStepKind::kGather);
  EXPECT_EQ(plan.steps[6].root, 1);
  EXPECT_EQ(plan.steps[6].bytes, 12 * 3 * 4);
  EXPECT_THAT(plan.ToString(), HasSubstr("broadcast b 2 -> [0, 3]"));
  EXPECT_THAT(plan.ToString(), HasSubstr("gather c -> 1 144 B"));
  // Every shard on the root: nothing to broadcast; left sharded: no gather.
  ASSERT_TRUE(AssignDevices(sa, {2, 2, 2, 2}, 4).ok());
  args.gather = false;
  const ShardedSpmmPlan local = Must(PlanShardedSpmm(args, 4));
  ASSERT_EQ(local.steps.size(), 4u);
  for (const ShardStep& s : local.steps) EXPECT_EQ(s.kind, ShardStepKind::kCompute);
}

TEST(ShardedSpmm, RejectsBadInputWithItsReason) {
  const Tensor a = RandomCsr(8, 5, 0.5, DType::kI32, 10);
  const Tensor b = test::MakeDense({5, 2}, std::vector<float>(10, 1.0f));
  const Tensor wrong_b = test::MakeDense({4, 2}, std::vector<float>(8, 1.0f));
  const Tensor c = test::MakeDense({8, 2}, std::vector<float>(16, 1.0f));
  Devices devices(2);
  ShardedTensor sa = Must(ShardByRows(a, 2));
  ASSERT_TRUE(AssignDevices(sa, {0, 1}, 2).ok());
  ShardedSpmmArgs ok;
  ok.a = &sa;
  ok.b = &b;
  ASSERT_TRUE(ShardedSpmm(ok, devices.ptrs).ok());

  auto fails = [&](ShardedSpmmArgs args, std::string_view substr,
                   std::span<Backend* const> backends) {
    EXPECT_INVALID(ShardedSpmm(args, backends).status(), substr);
  };
  ShardedSpmmArgs x = ok;
  x.transpose_a = true;
  fails(x, "transpose_a = true is not supported for a row-sharded a", devices.ptrs);
  fails(x, "reduce-scatter", devices.ptrs);
  x = ok;
  x.a = nullptr;
  fails(x, "a is missing", devices.ptrs);
  x = ok;
  x.b = nullptr;
  fails(x, "b is missing", devices.ptrs);
  x = ok;
  x.b = &wrong_b;
  fails(x, "shard 0: shape mismatch", devices.ptrs);
  x = ok;
  x.b_device = 2;
  fails(x, "b_device = 2 is not a device (0..1)", devices.ptrs);
  x = ok;
  x.gather_device = -1;
  fails(x, "gather_device = -1 is not a device (0..1)", devices.ptrs);
  x = ok;
  x.alpha = std::numeric_limits<float>::infinity();
  fails(x, "shard 0: alpha = inf is not finite", devices.ptrs);
  x = ok;
  x.beta = 1.0f;
  fails(x, "c is missing but beta = 1 is not 0", devices.ptrs);
  // C split differently from A.
  ShardedTensor sc = Must(SplitRows(c, std::vector<RowRange>{{0, 1}, {1, 8}}));
  ASSERT_TRUE(AssignDevices(sc, {0, 1}, 2).ok());
  x.c = &sc;
  if (sc.ranges != sa.ranges)
    fails(x, "c.ranges = [[0, 1), [1, 8)] must be a's ranges", devices.ptrs);
  ShardedTensor sc2 = Must(SplitRows(c, sa.ranges));
  x.c = &sc2;  // devices {0, 0} vs a's {0, 1}
  fails(x, "c.device_of_shard = [0, 0] must be a's [0, 1]", devices.ptrs);
  ASSERT_TRUE(AssignDevices(sc2, {0, 1}, 2).ok());
  EXPECT_TRUE(ShardedSpmm(x, devices.ptrs).ok());
  // A shard on a device that does not exist.
  fails(ok, "a.device_of_shard[1] = 1 is not a device (0..0)",
        std::span<Backend* const>(devices.ptrs.data(), 1));
  fails(ok, "device_count = 0 must be in [1, 1024]", std::span<Backend* const>());
  // A dense "a".
  const ShardedTensor dense_a = Must(SplitRows(c, std::vector<RowRange>{{0, 8}}));
  x = ok;
  x.a = &dense_a;
  fails(x, "a.whole.format = dense must be csr", devices.ptrs);
  // Execute checks the backends and the plan it is given.
  const ShardedSpmmPlan plan = Must(PlanShardedSpmm(ok, 2));
  std::vector<Backend*> with_null = {devices.ptrs[0], nullptr};
  EXPECT_INVALID(ExecuteShardedSpmm(ok, plan, with_null).status(), "backends[1] is null");
  ShardedSpmmPlan broken = plan;
  broken.steps.pop_back();  // the gather
  broken.steps.pop_back();  // shard 1's compute
  EXPECT_INVALID(ExecuteShardedSpmm(ok, broken, devices.ptrs).status(),
                 "plan never computes shard 1");
  broken = plan;
  broken.steps.erase(broken.steps.begin());  // the broadcast of b to device 1
  EXPECT_INVALID(ExecuteShardedSpmm(ok, broken, devices.ptrs).status(),
                 "plan computes shard 1 on device 1 before b");
}

}  // namespace
}  // namespace sparsed
