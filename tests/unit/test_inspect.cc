// Inspect and Spy against naive statistics of the dense matrix the tensor
// holds, for every format (CSC, BSR and N:M tensors are built by hand from
// their documented layouts).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "prune_test_util.h"
#include "sparsed/inspect.h"

namespace sparsed {
namespace {

using test::Matrix;
using test::RandomMatrix;
using test::ToTensor;
using ::testing::HasSubstr;

constexpr DType kValueTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

// What a tensor holding m should report (stored and bytes come from the
// caller, which knows the layout it built).
void ExpectStats(const Tensor& t, const Matrix& m, int64_t stored, int64_t bytes) {
  absl::StatusOr<TensorStats> s = Inspect(t);
  ASSERT_TRUE(s.ok()) << s.status();
  std::vector<int64_t> lengths(m.rows, 0);
  int64_t nonzeros = 0;
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (!m.Zero(i)) {
      ++lengths[i / m.cols];
      ++nonzeros;
    }
  }
  EXPECT_EQ(s->desc.format, t.format());
  EXPECT_EQ(s->desc.shape, t.desc().shape);
  EXPECT_EQ(s->stored, stored);
  EXPECT_EQ(s->bytes, bytes);
  EXPECT_EQ(s->nonzeros, nonzeros);
  EXPECT_DOUBLE_EQ(s->density, m.rows * m.cols > 0 ? static_cast<double>(nonzeros) /
                                                         static_cast<double>(m.rows * m.cols)
                                                   : 0.0);
  const RowLengthStats& r = s->rows;
  const int64_t mx = lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
  EXPECT_EQ(r.min, lengths.empty() ? 0 : *std::min_element(lengths.begin(), lengths.end()));
  EXPECT_EQ(r.max, mx);
  double mean = 0.0, var = 0.0;
  for (int64_t x : lengths) mean += static_cast<double>(x);
  if (!lengths.empty()) mean /= static_cast<double>(lengths.size());
  for (int64_t x : lengths) var += (x - mean) * (x - mean);
  if (!lengths.empty()) var /= static_cast<double>(lengths.size());
  EXPECT_NEAR(r.mean, mean, 1e-12 * (1 + mean));
  EXPECT_NEAR(r.std, std::sqrt(var), 1e-12 * (1 + mean));
  std::vector<int64_t> edges = {0, 1};
  while (edges.back() <= mx) edges.push_back(edges.back() * 2);
  EXPECT_EQ(r.edges, edges);
  std::vector<int64_t> hist(edges.size() - 1, 0);
  for (int64_t x : lengths) {
    for (size_t i = 0; i + 1 < edges.size(); ++i) {
      if (edges[i] <= x && x < edges[i + 1]) ++hist[i];
    }
  }
  EXPECT_EQ(r.histogram, hist);
}

void ExpectSpy(const Tensor& t, const Matrix& m, int64_t max_h, int64_t max_w) {
  SCOPED_TRACE(::testing::Message() << "spy " << max_h << "x" << max_w);
  absl::StatusOr<SpyGrid> g = Spy(t, max_h, max_w);
  ASSERT_TRUE(g.ok()) << g.status();
  const int64_t cr = std::max<int64_t>(1, (m.rows + max_h - 1) / max_h);
  const int64_t cc = std::max<int64_t>(1, (m.cols + max_w - 1) / max_w);
  const int64_t h = (m.rows + cr - 1) / cr, w = (m.cols + cc - 1) / cc;
  EXPECT_EQ(g->cell_rows, cr);
  EXPECT_EQ(g->cell_cols, cc);
  EXPECT_EQ(g->height, h);
  EXPECT_EQ(g->width, w);
  EXPECT_LE(g->height, max_h);
  EXPECT_LE(g->width, max_w);
  std::vector<int64_t> counts(h * w, 0);
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (!m.Zero(i)) ++counts[(i / m.cols) / cr * w + (i % m.cols) / cc];
  }
  EXPECT_EQ(g->counts, counts);
}

void ExpectSpies(const Tensor& t, const Matrix& m) {
  for (auto [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {3, 7}, {4096, 4096}, {10, 4096}}) {
    ExpectSpy(t, m, h, w);
  }
  if (m.rows > 0 && m.cols > 0) ExpectSpy(t, m, m.rows, m.cols);  // exact fit
}

std::set<int64_t> SomeZeros(const Matrix& m, std::mt19937_64& rng) {
  std::set<int64_t> z;
  std::bernoulli_distribution pick(0.15);
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (m.Zero(i) && pick(rng)) z.insert(i);
  }
  return z;
}

void ExpectBasicFormats(const Matrix& m, DType idx, std::mt19937_64& rng) {
  const int64_t vs = SizeOf(m.dtype), is = SizeOf(idx), numel = m.rows * m.cols;
  {
    SCOPED_TRACE("dense");
    const Tensor t = ToTensor(m, Format::kDense, idx);
    ExpectStats(t, m, numel, numel * vs);
    ExpectSpies(t, m);
  }
  for (Format f : {Format::kCoo, Format::kCsr, Format::kCsc}) {
    SCOPED_TRACE(FormatName(f));
    const std::set<int64_t> zeros = SomeZeros(m, rng);
    const int64_t nnz = static_cast<int64_t>(test::StoredPositions(m, zeros).size());
    const int64_t index_bytes = f == Format::kCoo   ? 2 * nnz * is
                                : f == Format::kCsr ? (m.rows + 1 + nnz) * is
                                                    : (m.cols + 1 + nnz) * is;
    const Tensor t = ToTensor(m, f, idx, zeros);
    ExpectStats(t, m, nnz, index_bytes + nnz * vs);
    ExpectSpies(t, m);
  }
}

void ExpectBsr(const Matrix& m, int64_t R, int64_t C, DType idx, std::mt19937_64& rng) {
  SCOPED_TRACE(::testing::Message() << "bsr " << R << "x" << C);
  const std::set<int64_t> zeros = SomeZeros(m, rng);
  const Tensor t = test::ToBsr(m, R, C, idx, zeros);
  const int64_t blocks = t.desc().nnz, brc = (m.rows + R - 1) / R;
  ExpectStats(t, m, blocks * R * C,
              (brc + 1 + blocks) * SizeOf(idx) + blocks * R * C * SizeOf(m.dtype));
  ExpectSpies(t, m);
}

// A random matrix with at most n non-zeros in every group of `group`.
Matrix NmPatterned(int64_t rows, int64_t cols, DType dt, int n, int group, std::mt19937_64& rng) {
  Matrix m = RandomMatrix(rows, cols, dt, 0.8, false, rng);
  for (int64_t g0 = 0; g0 < rows * cols; g0 += group) {
    std::vector<int> order(group);
    for (int i = 0; i < group; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int i = n; i < group; ++i) m.bits[g0 + order[i]] = 0;
  }
  return m;
}

void ExpectNm(const Matrix& m, int n, int group) {
  SCOPED_TRACE(::testing::Message() << "nm " << n << ":" << group);
  const Tensor t = test::ToNm(m, n, group);
  const int64_t slots = m.rows * (m.cols / group) * n;
  const int64_t meta = n == 2 && group == 4 ? m.rows * ((m.cols / group + 7) / 8) : slots;
  ExpectStats(t, m, slots, slots * SizeOf(m.dtype) + meta * 4);
  ExpectSpies(t, m);
}

TEST(Inspect, RandomEveryFormatMatchesNaiveStats) {
  std::mt19937_64 rng(41);
  for (DType dt : kValueTypes) {
    for (DType idx : {DType::kI32, DType::kI64}) {
      for (auto [rows, cols] : {std::pair<int64_t, int64_t>{37, 53}, {1, 1}, {1, 64}, {64, 1}}) {
        SCOPED_TRACE(::testing::Message()
                     << DTypeName(dt) << " " << DTypeName(idx) << " " << rows << "x" << cols);
        const Matrix m = RandomMatrix(rows, cols, dt, 0.3, false, rng);
        ExpectBasicFormats(m, idx, rng);
        for (auto [R, C] : {std::pair<int64_t, int64_t>{3, 5}, {4, 4}, {16, 16}}) {
          ExpectBsr(m, R, C, idx, rng);
        }
      }
      for (auto [n, group] : {std::pair<int, int>{2, 4}, {1, 4}, {2, 8}, {8, 32}}) {
        // 23 rows x 96 columns: 24 groups of 4, so 2:4 rows use 3 metadata words.
        ExpectNm(NmPatterned(23, 96, dt, n, group, rng), n, group);
      }
    }
  }
}

TEST(Inspect, RowsOfVeryDifferentLengths) {
  std::mt19937_64 rng(42);
  Matrix m{50, 300, DType::kF32, {}};
  for (int64_t r = 0; r < m.rows; ++r) {
    const Matrix row =
        RandomMatrix(1, m.cols, DType::kF32, r % 10 == 0 ? 1.0 : 0.02 * (r % 7), false, rng);
    m.bits.insert(m.bits.end(), row.bits.begin(), row.bits.end());
  }
  ExpectBasicFormats(m, DType::kI32, rng);
}

TEST(Inspect, HandWorkedHistogram) {
  // Row lengths 0, 1, 4, 3: edges 0 1 2 4 8, one row in each bucket.
  std::vector<float> v(4 * 5, 0.0f);
  v[5] = 1;
  for (int c = 0; c < 4; ++c) v[10 + c] = 2;
  for (int c = 0; c < 3; ++c) v[15 + c] = -3;
  absl::StatusOr<TensorStats> s = Inspect(test::MakeDense({4, 5}, v));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->rows.edges, (std::vector<int64_t>{0, 1, 2, 4, 8}));
  EXPECT_EQ(s->rows.histogram, (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(s->rows.min, 0);
  EXPECT_EQ(s->rows.max, 4);
  EXPECT_DOUBLE_EQ(s->rows.mean, 2.0);
  EXPECT_DOUBLE_EQ(s->rows.std, std::sqrt(2.5));  // (4 + 1 + 4 + 1) / 4
  EXPECT_EQ(s->nonzeros, 8);
  EXPECT_DOUBLE_EQ(s->density, 0.4);
}

TEST(Inspect, EmptyAllZeroAndVectorTensors) {
  std::mt19937_64 rng(43);
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{0, 7}, {7, 0}, {0, 0}}) {
    ExpectBasicFormats(Matrix{rows, cols, DType::kF16, {}}, DType::kI32, rng);
  }
  Matrix zeros{6, 9, DType::kBF16, std::vector<uint32_t>(54, 0)};
  zeros.bits[10] = test::NegativeZero(DType::kBF16);
  ExpectBasicFormats(zeros, DType::kI64, rng);
  ExpectBsr(zeros, 2, 2, DType::kI32, rng);  // explicit zeros: blocks stored, no non-zeros
  ExpectNm(Matrix{3, 8, DType::kF32, std::vector<uint32_t>(24, 0)}, 2, 4);
  ExpectNm(Matrix{0, 8, DType::kF32, {}}, 2, 4);
  // A 1-D dense tensor of n values reads as n rows of 1 column.
  const Tensor vec = test::MakeDense({5}, {1, 0, 2, 0, 0});
  absl::StatusOr<TensorStats> s = Inspect(vec);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->nonzeros, 2);
  EXPECT_EQ(s->rows.histogram, (std::vector<int64_t>{3, 2}));
  absl::StatusOr<SpyGrid> g = Spy(vec, 2, 2);
  ASSERT_TRUE(g.ok());
  // Cells of ceil(5 / 2) = 3 rows: {1, 0, 2} and {0, 0}.
  EXPECT_EQ(g->cell_rows, 3);
  EXPECT_EQ(g->counts, (std::vector<int64_t>{2, 0}));
}

TEST(Inspect, HugeSparseShapeIsNotDensified) {
  // 3 x 2^40 with i64 indices: only O(rows + nnz) work.
  const int64_t cols = int64_t{1} << 40;
  const Tensor t =
      test::MakeCsr(3, cols, {0, 2, 2, 3}, {5, cols - 1, 7}, {1.0f, 0.0f, -2.0f}, DType::kI64);
  absl::StatusOr<TensorStats> s = Inspect(t);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->stored, 3);
  EXPECT_EQ(s->nonzeros, 2);
  EXPECT_EQ(s->rows.histogram, (std::vector<int64_t>{1, 2}));
  absl::StatusOr<SpyGrid> g = Spy(t, 4096, 4096);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->cell_cols, int64_t{1} << 28);
  EXPECT_EQ(g->width, 4096);
  EXPECT_EQ(g->height, 3);
  EXPECT_EQ(g->counts[0], 1);
  EXPECT_EQ(g->counts[2 * 4096], 1);
}

TEST(Spy, RejectsBadGridSizes) {
  const Tensor t = test::MakeDense({2, 2}, {1, 2, 3, 4});
  for (auto [h, w, text] : {std::tuple<int64_t, int64_t, const char*>{0, 5, "max_height = 0"},
                            {4097, 5, "max_height = 4097"},
                            {5, -1, "max_width = -1"},
                            {5, 4097, "max_width = 4097"}}) {
    absl::StatusOr<SpyGrid> g = Spy(t, h, w);
    ASSERT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr(text));
  }
}

TEST(Inspect, RejectsMalformedIndices) {
  // CSR through ValidateTensor; CSC, BSR and N:M by the reader's own checks.
  EXPECT_EQ(
      Inspect(test::MakeCsr(2, 3, {0, 1, 2}, {0, 3}, {1.0f, 2.0f}, DType::kI32)).status().code(),
      absl::StatusCode::kInvalidArgument);
  std::mt19937_64 rng(44);
  const Matrix m = RandomMatrix(6, 8, DType::kF32, 0.5, false, rng);
  Tensor csc = ToTensor(m, Format::kCsc, DType::kI32);
  if (csc.desc().nnz > 0) {
    csc.data<int32_t>("row_idx")[0] = 6;
    EXPECT_EQ(Inspect(csc).status().code(), absl::StatusCode::kInvalidArgument);
  }
  Tensor bsr = test::ToBsr(m, 4, 4, DType::kI32);
  ASSERT_GT(bsr.desc().nnz, 0);
  bsr.data<int32_t>("block_col_idx")[0] = 2;
  EXPECT_EQ(Inspect(bsr).status().code(), absl::StatusCode::kInvalidArgument);
  Tensor nm = test::ToNm(Matrix{2, 8, DType::kF32, std::vector<uint32_t>(16, 0)}, 2, 8);
  nm.data<int32_t>("meta")[1] = 8;
  EXPECT_EQ(Spy(nm, 8, 8).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace sparsed
