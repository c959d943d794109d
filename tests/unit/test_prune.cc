// Pruning against brute-force references written here: every candidate
// (|w| or block norm, row-major position) of a dense copy is sorted and the
// first `kept` taken; outputs are decoded straight from their arrays.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "prune_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/prune.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

using test::Effective;
using test::GetIndices;
using test::Matrix;
using test::RandomMatrix;
using test::ToTensor;
using test::ValueBits;
using ::testing::HasSubstr;

constexpr DType kValueTypes[] = {DType::kF32, DType::kF16, DType::kBF16};
constexpr Format kInputFormats[] = {Format::kDense, Format::kCoo, Format::kCsr, Format::kCsc};

int64_t Kept(int64_t total, double sparsity) {
  return total - static_cast<int64_t>(std::llround(sparsity * static_cast<double>(total)));
}

// Sorts (key, position) pairs by key descending, then position ascending, and
// returns the positions of the first `keep`.
std::vector<int64_t> TopPositions(std::vector<std::pair<double, int64_t>> c, int64_t keep) {
  std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<int64_t> out;
  for (int64_t i = 0; i < keep && i < static_cast<int64_t>(c.size()); ++i)
    out.push_back(c[i].second);
  std::sort(out.begin(), out.end());
  return out;
}

// position -> value bits that magnitude pruning keeps.
std::map<int64_t, uint32_t> ReferenceMagnitude(const Matrix& m, double sparsity, bool per_row) {
  std::map<int64_t, uint32_t> kept;
  const auto take = [&](int64_t first, int64_t count, int64_t total) {
    std::vector<std::pair<double, int64_t>> c;
    for (int64_t p = first; p < first + count; ++p) {
      if (!m.Zero(p)) c.push_back({m.Abs(p), p});
    }
    for (int64_t p : TopPositions(c, Kept(total, sparsity))) kept[p] = m.bits[p];
  };
  if (per_row) {
    for (int64_t r = 0; r < m.rows; ++r) take(r * m.cols, m.cols, m.cols);
  } else {
    take(0, m.rows * m.cols, m.rows * m.cols);
  }
  return kept;
}

// Checks a CSR result and reads it back as position -> bits.
std::map<int64_t, uint32_t> ReadCsr(const Tensor& t, const Matrix& m) {
  std::map<int64_t, uint32_t> out;
  EXPECT_EQ(t.format(), Format::kCsr);
  EXPECT_TRUE(ValidateDesc(t.desc()).ok());
  EXPECT_TRUE(ValidateTensor(t).ok()) << ValidateTensor(t);
  EXPECT_EQ(t.desc().dtype, m.dtype);
  EXPECT_EQ(t.desc().shape, (std::vector<int64_t>{m.rows, m.cols}));
  const std::vector<int64_t> rp = GetIndices(t, "row_ptr"), ci = GetIndices(t, "col_idx");
  const std::vector<uint32_t> v = ValueBits(t);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t e = rp[r]; e < rp[r + 1]; ++e) out[r * m.cols + ci[e]] = v[e];
  }
  return out;
}

PruneOptions Magnitude(double sparsity, bool per_row = false) {
  PruneOptions o;
  o.mode = PruneMode::kMagnitude;
  o.sparsity = sparsity;
  o.per_row = per_row;
  return o;
}

PruneOptions Nm(int n, int m) {
  PruneOptions o;
  o.mode = PruneMode::kNm;
  o.nm_n = n;
  o.nm_m = m;
  return o;
}

PruneOptions Block(int64_t r, int64_t c, double sparsity) {
  PruneOptions o;
  o.mode = PruneMode::kBlock;
  o.block_rows = r;
  o.block_cols = c;
  o.sparsity = sparsity;
  return o;
}

Tensor MustPrune(const Tensor& t, const PruneOptions& o) {
  absl::StatusOr<Tensor> r = Prune(t, o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(r).value() : Tensor();
}

// Random explicit zeros among the positions that hold zero.
std::set<int64_t> SomeZeroPositions(const Matrix& m, std::mt19937_64& rng) {
  std::set<int64_t> z;
  std::bernoulli_distribution pick(0.2);
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (m.Zero(i) && pick(rng)) z.insert(i);
  }
  return z;
}

void ExpectMagnitude(const Matrix& m, Format f, DType idx, double sparsity, bool per_row,
                     std::mt19937_64& rng) {
  SCOPED_TRACE(::testing::Message()
               << FormatName(f) << " " << DTypeName(m.dtype) << " idx " << DTypeName(idx) << " "
               << m.rows << "x" << m.cols << " sparsity " << sparsity << " per_row " << per_row);
  const std::set<int64_t> zeros =
      f == Format::kDense ? std::set<int64_t>{} : SomeZeroPositions(m, rng);
  const Tensor in = ToTensor(m, f, idx, zeros);
  const Tensor out = MustPrune(in, Magnitude(sparsity, per_row));
  EXPECT_EQ(ReadCsr(out, m), ReferenceMagnitude(m, sparsity, per_row));
  // A sparse input keeps its index dtype; dense gets the narrowest (i32 here).
  EXPECT_EQ(out.desc().index_dtype, f == Format::kDense ? DType::kI32 : idx);
}

TEST(PruneMagnitude, RandomMatchesBruteForce) {
  std::mt19937_64 rng(11);
  for (DType dt : kValueTypes) {
    for (Format f : kInputFormats) {
      for (bool ties : {false, true}) {
        for (auto [rows, cols] : {std::pair<int64_t, int64_t>{23, 37}, {1, 1}, {1, 50}, {40, 3}}) {
          const Matrix m = RandomMatrix(rows, cols, dt, 0.6, ties, rng);
          for (double s : {0.0, 0.1, 0.25, 0.5, 0.77, 0.9, 1.0}) {
            for (bool per_row : {false, true}) {
              ExpectMagnitude(m, f, f == Format::kCsr ? DType::kI64 : DType::kI32, s, per_row, rng);
            }
          }
        }
      }
    }
  }
}

TEST(PruneMagnitude, PerRowWithRowsOfDifferentDensity) {
  std::mt19937_64 rng(12);
  Matrix m{30, 64, DType::kF32, {}};
  for (int64_t r = 0; r < m.rows; ++r) {
    // Row r has density r / 29: empty first row, full last row.
    Matrix row = RandomMatrix(1, m.cols, DType::kF32, static_cast<double>(r) / 29.0, false, rng);
    m.bits.insert(m.bits.end(), row.bits.begin(), row.bits.end());
  }
  for (Format f : kInputFormats) {
    for (double s : {0.0, 0.3, 0.5, 0.9, 1.0}) ExpectMagnitude(m, f, DType::kI32, s, true, rng);
  }
}

TEST(PruneMagnitude, TiesKeepTheSmallerPosition) {
  // |w| all equal: keep = 4 - round(0.5 * 4) = 2, the first two positions.
  Matrix m{2, 2, DType::kF32, {}};
  for (float v : {1.0f, -1.0f, 1.0f, -1.0f}) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    m.bits.push_back(u);
  }
  for (Format f : kInputFormats) {
    const Tensor out = MustPrune(ToTensor(m, f, DType::kI32), Magnitude(0.5));
    EXPECT_EQ(ReadCsr(out, m), (std::map<int64_t, uint32_t>{{0, m.bits[0]}, {1, m.bits[1]}}));
    // Per row: keep 1 of each row, column 0.
    const Tensor rows = MustPrune(ToTensor(m, f, DType::kI32), Magnitude(0.5, true));
    EXPECT_EQ(ReadCsr(rows, m), (std::map<int64_t, uint32_t>{{0, m.bits[0]}, {2, m.bits[2]}}));
  }
}

TEST(PruneMagnitude, ZerosArePrunedFirstAndNeverStored) {
  std::mt19937_64 rng(13);
  // 90% zeros (some -0, some stored explicitly), target 50%: every non-zero stays.
  const Matrix m = RandomMatrix(20, 20, DType::kF16, 0.1, false, rng);
  for (Format f : kInputFormats) {
    const std::set<int64_t> zeros =
        f == Format::kDense ? std::set<int64_t>{} : SomeZeroPositions(m, rng);
    const Tensor out = MustPrune(ToTensor(m, f, DType::kI32, zeros), Magnitude(0.5));
    std::map<int64_t, uint32_t> nonzeros;
    for (int64_t i = 0; i < 400; ++i) {
      if (!m.Zero(i)) nonzeros[i] = m.bits[i];
    }
    EXPECT_EQ(ReadCsr(out, m), nonzeros);
  }
  // All zeros: nothing kept, whatever the target.
  Matrix z{4, 5, DType::kBF16, std::vector<uint32_t>(20, 0)};
  z.bits[3] = test::NegativeZero(DType::kBF16);
  for (Format f : kInputFormats) {
    for (double s : {0.0, 0.5, 1.0}) {
      const Tensor out = MustPrune(ToTensor(z, f, DType::kI32, {3, 7}), Magnitude(s));
      EXPECT_EQ(out.desc().nnz, 0);
      EXPECT_TRUE(ValidateTensor(out).ok());
    }
  }
}

TEST(PruneMagnitude, EmptyShapes) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{0, 5}, {5, 0}, {0, 0}}) {
    const Matrix m{rows, cols, DType::kF32, {}};
    for (Format f : kInputFormats) {
      for (bool per_row : {false, true}) {
        const Tensor out = MustPrune(ToTensor(m, f, DType::kI32), Magnitude(0.5, per_row));
        EXPECT_EQ(out.desc().nnz, 0);
        EXPECT_EQ(ReadCsr(out, m).size(), 0u);
      }
    }
  }
}

TEST(PruneMagnitude, HugeSparseShapeIsNeverDensified) {
  // 1000 x 2^40 positions with 200 entries: a dense copy could not exist, so
  // this passing shows the sparse path stays O(nnz + rows).
  const int64_t rows = 1000, cols = int64_t{1} << 40;
  std::vector<test::Triplet> e;
  std::vector<std::pair<double, int64_t>> candidates;
  for (int64_t i = 0; i < 200; ++i) {
    e.push_back({i * 5, i * 4000000007LL, static_cast<float>(i % 17 + 1)});
    candidates.push_back({i % 17 + 1.0, i * 5 * cols + i * 4000000007LL});
  }
  const Matrix shape_only{rows, cols, DType::kF32, {}};
  for (Format f : {Format::kCoo, Format::kCsr}) {
    const Tensor in = test::MakeSparse(f, rows, cols, e, DType::kI64);
    // Global: a target that keeps about 120 of the 200 (ties included).
    const double s = 1.0 - 120.0 / (static_cast<double>(rows) * static_cast<double>(cols));
    std::map<int64_t, uint32_t> got = ReadCsr(MustPrune(in, Magnitude(s)), shape_only);
    std::vector<int64_t> positions;
    for (const auto& [p, bits] : got) positions.push_back(p);
    EXPECT_EQ(positions, TopPositions(candidates, Kept(rows * cols, s)));
    // Per row: every row keeps its only entry.
    EXPECT_EQ(MustPrune(in, Magnitude(0.5, true)).desc().nnz, 200);
  }
}

TEST(PruneMagnitude, SparsityRoundsHalfAwayFromZero) {
  // 10 non-zeros, sparsity 0.25: round(2.5) = 3 pruned, 7 kept.
  std::mt19937_64 rng(14);
  const Matrix m = RandomMatrix(2, 5, DType::kF32, 1.0, false, rng);
  const Tensor out = MustPrune(ToTensor(m, Format::kDense, DType::kI32), Magnitude(0.25));
  EXPECT_EQ(out.desc().nnz, 7);
  EXPECT_EQ(ReadCsr(out, m), ReferenceMagnitude(m, 0.25, false));
}

// ---------------------------------------------------------------------------
// N:M

// Decodes an N:M result: per row and group the kept positions (2:4 metadata
// read bit by bit) and the slot values. Also checks unused 2:4 nibbles are 0.
struct NmDecoded {
  std::vector<std::vector<int>> positions;  // [row * groups + group] -> positions
  std::vector<uint32_t> bits;               // slot values
};

NmDecoded DecodeNm(const Tensor& t) {
  const TensorDesc& d = t.desc();
  const int64_t groups = d.cols() / d.nm_m;
  std::span<const int32_t> meta = t.data<int32_t>("meta");
  NmDecoded out;
  out.bits = ValueBits(t);
  const int64_t words = (groups + 7) / 8;
  for (int64_t r = 0; r < d.rows(); ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<int> p;
      if (d.nm_n == 2 && d.nm_m == 4) {
        const uint32_t w = static_cast<uint32_t>(meta[r * words + g / 8]);
        const int base = static_cast<int>(4 * (g % 8));
        const auto bit = [&](int i) { return static_cast<int>((w >> (base + i)) & 1u); };
        p = {bit(0) | bit(1) << 1, bit(2) | bit(3) << 1};
      } else {
        for (int s = 0; s < d.nm_n; ++s) p.push_back(meta[(r * groups + g) * d.nm_n + s]);
      }
      out.positions.push_back(p);
    }
    if (d.nm_n == 2 && d.nm_m == 4) {
      for (int64_t g = groups; g < words * 8; ++g) {
        const uint32_t w = static_cast<uint32_t>(meta[r * words + g / 8]);
        EXPECT_EQ((w >> (4 * (g % 8))) & 15u, 0u) << "unused nibble, row " << r << " group " << g;
      }
    }
  }
  return out;
}

void ExpectNm(const Matrix& m, Format f, DType idx, int n, int group) {
  SCOPED_TRACE(::testing::Message() << FormatName(f) << " " << DTypeName(m.dtype) << " " << m.rows
                                    << "x" << m.cols << " " << n << ":" << group);
  const Matrix eff = Effective(m, f);
  const Tensor out = MustPrune(ToTensor(m, f, idx), Nm(n, group));
  ASSERT_EQ(out.format(), Format::kNm);
  ASSERT_TRUE(ValidateDesc(out.desc()).ok());
  EXPECT_EQ(out.desc().dtype, m.dtype);
  EXPECT_EQ(out.desc().nm_n, n);
  EXPECT_EQ(out.desc().nm_m, group);
  const int64_t groups = m.cols / group;
  ASSERT_EQ(out.desc().nnz, m.rows * groups * n);
  const NmDecoded got = DecodeNm(out);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::vector<std::pair<double, int64_t>> c;
      for (int p = 0; p < group; ++p) c.push_back({eff.Abs(r * m.cols + g * group + p), p});
      const std::vector<int64_t> want = TopPositions(c, n);
      const std::vector<int>& have = got.positions[r * groups + g];
      ASSERT_EQ(have, std::vector<int>(want.begin(), want.end())) << "row " << r << " group " << g;
      for (int s = 0; s < n; ++s) {
        EXPECT_EQ(got.bits[(r * groups + g) * n + s], eff.bits[r * m.cols + g * group + want[s]])
            << "row " << r << " group " << g << " slot " << s;
      }
    }
  }
}

constexpr std::pair<int, int> kRatios[] = {{1, 4}, {2, 4}, {2, 8}, {4, 8}, {4, 16}, {8, 32}};

TEST(PruneNm, AllRatiosMatchBruteForce) {
  std::mt19937_64 rng(21);
  for (auto [n, group] : kRatios) {
    for (DType dt : kValueTypes) {
      for (Format f : kInputFormats) {
        for (bool ties : {false, true}) {
          // 96 columns: 2:4 rows have 24 groups, three metadata words with
          // the last one full; 160 leaves unused nibbles for 2:4 (40 groups).
          for (int64_t cols : {int64_t{96}, int64_t{160}}) {
            const Matrix m = RandomMatrix(9, cols, dt, 0.5, ties, rng);
            ExpectNm(m, f, DType::kI32, n, group);
          }
        }
      }
    }
  }
}

TEST(PruneNm, AwkwardInputs) {
  std::mt19937_64 rng(22);
  for (auto [n, group] : kRatios) {
    for (Format f : kInputFormats) {
      // All zeros: every group keeps positions 0..n-1 holding zeros.
      ExpectNm(Matrix{3, 64, DType::kF32, std::vector<uint32_t>(192, 0)}, f, DType::kI64, n, group);
      // Full density, all ties.
      ExpectNm(RandomMatrix(2, 64, DType::kBF16, 1.0, true, rng), f, DType::kI32, n, group);
      // One group per row, 1 row; and 0 rows.
      ExpectNm(RandomMatrix(1, group, DType::kF16, 0.7, false, rng), f, DType::kI32, n, group);
      ExpectNm(Matrix{0, 32, DType::kF32, {}}, f, DType::kI32, n, group);
    }
  }
  // 0 columns (m divides 0).
  ExpectNm(Matrix{4, 0, DType::kF32, {}}, Format::kCsr, DType::kI32, 2, 4);
}

TEST(PruneNm, HandWorked24Metadata) {
  // Row [0.5, -3, 0, 3 | 1, 1, 1, 1]: group 0 keeps 1 and 3 (|3| tie -> both),
  // group 1 keeps 0 and 1 (ties -> smaller positions). Nibbles 0b1101, 0b0100.
  Matrix m{1, 8, DType::kF32, {}};
  for (float v : {0.5f, -3.0f, 0.0f, 3.0f, 1.0f, 1.0f, 1.0f, 1.0f}) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    m.bits.push_back(u);
  }
  const Tensor out = MustPrune(ToTensor(m, Format::kDense, DType::kI32), Nm(2, 4));
  EXPECT_EQ(static_cast<uint32_t>(out.data<int32_t>("meta")[0]), 0x4Du);
  EXPECT_EQ(ValueBits(out), (std::vector<uint32_t>{m.bits[1], m.bits[3], m.bits[4], m.bits[5]}));
}

TEST(PruneNm, RefusesResultsOver2To31Values) {
  // 2^20 x 2^16 at 2:4 would store 2^35 values; the input itself is empty.
  const Tensor in = test::MakeCoo(int64_t{1} << 20, int64_t{1} << 16, {}, DType::kI32);
  absl::StatusOr<Tensor> r = Prune(in, Nm(2, 4));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("shape = [1048576, 65536]"));
}

// ---------------------------------------------------------------------------
// Blocks

void ExpectBlock(const Matrix& m, Format f, DType idx, int64_t R, int64_t C, double sparsity) {
  SCOPED_TRACE(::testing::Message()
               << FormatName(f) << " " << DTypeName(m.dtype) << " " << m.rows << "x" << m.cols
               << " block " << R << "x" << C << " sparsity " << sparsity);
  const Matrix eff = Effective(m, f);
  const int64_t brc = (m.rows + R - 1) / R, bcc = (m.cols + C - 1) / C;
  std::vector<std::pair<double, int64_t>> c;
  for (int64_t b = 0; b < brc * bcc; ++b) {
    double sum = 0.0;
    for (int64_t i = 0; i < R; ++i) {
      for (int64_t j = 0; j < C; ++j) {
        const int64_t r = b / bcc * R + i, col = b % bcc * C + j;
        if (r < m.rows && col < m.cols)
          sum += eff.Abs(r * m.cols + col) * eff.Abs(r * m.cols + col);
      }
    }
    if (sum > 0.0) c.push_back({sum, b});
  }
  const std::vector<int64_t> kept = TopPositions(c, Kept(brc * bcc, sparsity));

  const Tensor out = MustPrune(ToTensor(m, f, idx), Block(R, C, sparsity));
  ASSERT_EQ(out.format(), Format::kBsr);
  ASSERT_TRUE(ValidateDesc(out.desc()).ok());
  EXPECT_EQ(out.desc().dtype, m.dtype);
  EXPECT_EQ(out.desc().block_rows, R);
  EXPECT_EQ(out.desc().block_cols, C);
  ASSERT_EQ(out.desc().nnz, static_cast<int64_t>(kept.size()));
  std::vector<int64_t> want_ptr(brc + 1, 0), want_cols;
  std::vector<uint32_t> want_bits;
  for (int64_t b : kept) {
    ++want_ptr[b / bcc + 1];
    want_cols.push_back(b % bcc);
    for (int64_t i = 0; i < R; ++i) {
      for (int64_t j = 0; j < C; ++j) {
        const int64_t r = b / bcc * R + i, col = b % bcc * C + j;
        want_bits.push_back(r < m.rows && col < m.cols ? eff.bits[r * m.cols + col] : 0);
      }
    }
  }
  for (int64_t i = 0; i < brc; ++i) want_ptr[i + 1] += want_ptr[i];
  EXPECT_EQ(GetIndices(out, "block_row_ptr"), want_ptr);
  EXPECT_EQ(GetIndices(out, "block_col_idx"), want_cols);
  EXPECT_EQ(ValueBits(out), want_bits);
}

TEST(PruneBlock, RandomMatchesBruteForce) {
  std::mt19937_64 rng(31);
  for (DType dt : kValueTypes) {
    for (Format f : kInputFormats) {
      // Blocky sparsity: some whole blocks empty, the rest partly filled.
      for (auto [R, C] : {std::pair<int64_t, int64_t>{3, 5}, {16, 16}, {32, 32}}) {
        const Matrix m = RandomMatrix(100, 90, dt, 0.05, false, rng);
        for (double s : {0.0, 0.3, 0.5, 0.8, 1.0}) ExpectBlock(m, f, DType::kI32, R, C, s);
      }
    }
  }
}

TEST(PruneBlock, LargeBlocksAndEdgeBlocks) {
  std::mt19937_64 rng(32);
  for (int64_t side : {64, 128}) {
    // 300 x 200 is not a multiple of either side: edge blocks are padded.
    const Matrix m = RandomMatrix(300, 200, DType::kF16, 0.02, false, rng);
    for (Format f : kInputFormats) {
      for (double s : {0.0, 0.5, 0.9}) ExpectBlock(m, f, DType::kI64, side, side, s);
    }
  }
  // Blocks larger than the matrix, 1x1 matrices, 0 rows.
  for (Format f : kInputFormats) {
    ExpectBlock(RandomMatrix(5, 7, DType::kF32, 0.5, false, rng), f, DType::kI32, 16, 16, 0.0);
    ExpectBlock(RandomMatrix(1, 1, DType::kBF16, 1.0, false, rng), f, DType::kI32, 3, 5, 0.0);
    ExpectBlock(RandomMatrix(1, 1, DType::kBF16, 1.0, false, rng), f, DType::kI32, 1, 1, 1.0);
    ExpectBlock(Matrix{0, 9, DType::kF32, {}}, f, DType::kI32, 3, 5, 0.5);
    ExpectBlock(Matrix{6, 6, DType::kF32, std::vector<uint32_t>(36, 0)}, f, DType::kI32, 2, 2, 0.0);
  }
}

TEST(PruneBlock, TiesKeepTheSmallerBlockAndZeroBlocksAreNeverKept) {
  std::mt19937_64 rng(33);
  // Four 4x4 blocks of identical values (ties) in a 8x12 matrix whose other
  // two blocks are empty; sparsity 0.5 keeps 3 of the 6 block positions.
  const Matrix block = RandomMatrix(4, 4, DType::kF32, 1.0, true, rng);
  Matrix m{8, 12, DType::kF32, std::vector<uint32_t>(96, 0)};
  for (int64_t b : {0, 2, 3, 5}) {
    for (int64_t i = 0; i < 4; ++i) {
      for (int64_t j = 0; j < 4; ++j)
        m.bits[(b / 3 * 4 + i) * 12 + b % 3 * 4 + j] = block.bits[i * 4 + j];
    }
  }
  for (Format f : kInputFormats) {
    ExpectBlock(m, f, DType::kI32, 4, 4, 0.5);
    const Tensor out = MustPrune(ToTensor(m, f, DType::kI32), Block(4, 4, 0.5));
    EXPECT_EQ(GetIndices(out, "block_col_idx"), (std::vector<int64_t>{0, 2, 0}));
    // Sparsity 0 keeps only the 4 non-empty blocks.
    EXPECT_EQ(MustPrune(ToTensor(m, f, DType::kI32), Block(4, 4, 0.0)).desc().nnz, 4);
  }
}

TEST(PruneBlock, HugeSparseShapeStaysProportionalToNnz) {
  // 1x1 blocks over 100 x 2^40 positions: only blocks holding entries are
  // ever materialised.
  std::vector<test::Triplet> e;
  for (int64_t i = 0; i < 100; ++i) e.push_back({i, i * 10000000019LL, static_cast<float>(i + 1)});
  const Tensor in = test::MakeCsrFromTriplets(100, int64_t{1} << 40, e, DType::kI64);
  const Tensor out = MustPrune(in, Block(1, 1, 0.0));
  EXPECT_EQ(out.desc().nnz, 100);
  EXPECT_EQ(GetIndices(out, "block_col_idx")[99], 99 * 10000000019LL);
}

TEST(PruneBlock, RefusesResultsOver2To31Values) {
  // 46 x 46 blocks of 1024 x 1024, one entry in each: 2116 blocks of 2^20.
  std::vector<test::Triplet> e;
  for (int64_t i = 0; i < 46; ++i) {
    for (int64_t j = 0; j < 46; ++j) e.push_back({i * 1024, j * 1024, 1.0f});
  }
  const Tensor in = test::MakeCoo(46 * 1024, 46 * 1024, e, DType::kI32);
  absl::StatusOr<Tensor> r = Prune(in, Block(1024, 1024, 0.0));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("shape = [47104, 47104]"));
  // A target keeping 2116 - round(0.999 * 2116) = 2 blocks fits.
  absl::StatusOr<Tensor> few = Prune(in, Block(1024, 1024, 0.999));
  ASSERT_TRUE(few.ok()) << few.status();
  EXPECT_EQ(few->desc().nnz, 2);
}

// ---------------------------------------------------------------------------
// Option checks

void ExpectInvalid(const Tensor& t, const PruneOptions& o, const std::string& text) {
  SCOPED_TRACE(text);
  absl::StatusOr<Tensor> r = Prune(t, o);
  ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr(text));
  EXPECT_EQ(CheckPrune(t.desc(), o).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckPrune, RejectsBadOptionsNamingThem) {
  const Tensor t = test::MakeDense({4, 8}, std::vector<float>(32, 1.0f));
  PruneOptions bad_mode;
  bad_mode.mode = static_cast<PruneMode>(7);
  ExpectInvalid(t, bad_mode, "mode = 7");
  ExpectInvalid(t, Magnitude(-0.1), "sparsity = -0.1");
  ExpectInvalid(t, Magnitude(1.5), "sparsity = 1.5");
  ExpectInvalid(t, Magnitude(std::nan("")), "sparsity = nan");
  ExpectInvalid(t, Magnitude(INFINITY), "sparsity = inf");
  ExpectInvalid(t, Block(4, 4, 2.0), "sparsity = 2");
  PruneOptions o = Magnitude(0.5);
  o.nm_n = 2;
  ExpectInvalid(t, o, "nm = 2:0");
  o = Magnitude(0.5);
  o.block_rows = 4;
  ExpectInvalid(t, o, "block = [4, 0]");
  o = Nm(2, 4);
  o.sparsity = 0.5;
  ExpectInvalid(t, o, "sparsity = 0.5");
  o = Nm(2, 4);
  o.block_cols = 2;
  ExpectInvalid(t, o, "block = [0, 2]");
  o = Block(2, 2, 0.5);
  o.per_row = true;
  ExpectInvalid(t, o, "per_row");
  o = Block(2, 2, 0.5);
  o.nm_m = 4;
  ExpectInvalid(t, o, "nm = 0:4");
  ExpectInvalid(t, Nm(0, 4), "nm = 0:4");
  ExpectInvalid(t, Nm(4, 4), "nm = 4:4");
  ExpectInvalid(t, Nm(2, 64), "nm = 2:64");
  ExpectInvalid(t, Nm(2, 3), "tensor.shape[1] = 8");
  ExpectInvalid(t, Block(0, 4, 0.5), "block = [0, 4]");
  ExpectInvalid(t, Block(4, 1025, 0.5), "block = [4, 1025]");
  ExpectInvalid(test::MakeDense({8}, std::vector<float>(8, 1.0f)), Magnitude(0.5), "shape = [8]");
  EXPECT_TRUE(CheckPrune(t.desc(), Nm(8, 32)).code() == absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckPrune(t.desc(), Nm(1, 8)).ok());
  EXPECT_TRUE(CheckPrune(t.desc(), Block(1024, 1, 1.0)).ok());
}

TEST(Prune, RejectsNanAndInvalidContent) {
  std::vector<float> v(16, 1.0f);
  v[6] = std::nanf("");
  const Tensor t = test::MakeDense({4, 4}, v);
  for (const PruneOptions& o : {Magnitude(0.5), Nm(2, 4), Block(2, 2, 0.5)}) {
    absl::StatusOr<Tensor> r = Prune(t, o);
    ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("row 1, column 2"));
  }
  // Out-of-range column index.
  const Tensor bad = test::MakeCsr(2, 3, {0, 1, 2}, {0, 3}, {1.0f, 2.0f}, DType::kI32);
  EXPECT_EQ(Prune(bad, Magnitude(0.5)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Prune, InfinityRanksAboveEverything) {
  const Tensor t = test::MakeDense({1, 4}, {1.0f, -INFINITY, 2.0f, INFINITY});
  const Tensor out = MustPrune(t, Magnitude(0.5));
  EXPECT_EQ(GetIndices(out, "col_idx"), (std::vector<int64_t>{1, 3}));
}

TEST(Prune, CpuBackendPrunes) {
  std::mt19937_64 rng(51);
  const Matrix m = RandomMatrix(12, 16, DType::kF32, 0.7, false, rng);
  const std::unique_ptr<Backend> cpu = MakeCpuBackend(1);
  absl::StatusOr<Tensor> out = cpu->Prune(ToTensor(m, Format::kCsr, DType::kI32), Magnitude(0.6));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(ReadCsr(*out, m), ReferenceMagnitude(m, 0.6, false));
}

}  // namespace
}  // namespace sparsed
