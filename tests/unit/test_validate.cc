// ValidateTensor (every rule, accepted and rejected) and SortAndSumDuplicates
// (against a std::map reference).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "kernels_test_util.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

using test::MakeCoo;
using test::MakeCsr;
using test::Triplet;
using ::testing::HasSubstr;

class ValidateTest : public ::testing::TestWithParam<DType> {
 protected:
  DType idx() const { return GetParam(); }
};

absl::Status Check(const Tensor& t, bool allow_unsorted = false, bool reject_non_finite = false) {
  ValidateOptions o;
  o.allow_unsorted = allow_unsorted;
  o.reject_non_finite = reject_non_finite;
  return ValidateTensor(t, o, "a");
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

#define EXPECT_INVALID(status, substr)                              \
  do {                                                              \
    absl::Status _s = (status);                                     \
    EXPECT_EQ(_s.code(), absl::StatusCode::kInvalidArgument) << _s; \
    EXPECT_THAT(Msg(_s), HasSubstr(substr));                        \
  } while (0)

TEST_P(ValidateTest, AcceptsCanonicalCsr) {
  // Rows: {0: (0,1), (0,3)}, {1: empty}, {2: (2,0)}, {3: empty}.
  Tensor t = MakeCsr(4, 4, {0, 2, 2, 3, 3}, {1, 3, 0}, {1, 2, 3}, idx());
  EXPECT_TRUE(Check(t).ok()) << Check(t);
  EXPECT_TRUE(Check(MakeCsr(0, 0, {0}, {}, {}, idx())).ok());
  EXPECT_TRUE(Check(MakeCsr(3, 0, {0, 0, 0, 0}, {}, {}, idx())).ok());
  EXPECT_TRUE(Check(MakeCsr(1, 5, {0, 5}, {0, 1, 2, 3, 4}, {1, 1, 1, 1, 1}, idx())).ok());
}

TEST_P(ValidateTest, CsrRowPtrMustStartAtZero) {
  Tensor t = MakeCsr(2, 4, {1, 2, 3}, {1, 3, 0}, {1, 2, 3}, idx());
  EXPECT_INVALID(Check(t), "a.row_ptr[0] = 1 must be 0");
}

TEST_P(ValidateTest, CsrRowPtrMustNotDecrease) {
  Tensor t = MakeCsr(5, 8, {0, 2, 4, 7, 7, 3}, {0, 1, 0, 1, 0, 1, 2}, {1, 1, 1, 1, 1, 1, 1}, idx());
  EXPECT_INVALID(ValidateTensor(t, {}, "upload"),
                 "upload.row_ptr[5] = 3 is less than row_ptr[4] = 7 (row pointers must be "
                 "non-decreasing)");
  // A negative pointer in the middle is a decrease too.
  EXPECT_INVALID(Check(MakeCsr(2, 4, {0, -5, 1}, {0}, {1}, idx())),
                 "a.row_ptr[1] = -5 is less than row_ptr[0] = 0");
}

TEST_P(ValidateTest, CsrRowPtrBeyondNnzIsCaughtBeforeUse) {
  // row_ptr[1] would index far past col_idx; it must be rejected, not read.
  Tensor t = MakeCsr(2, 4, {0, 1000000, 1000000}, {0, 1}, {1, 1}, idx());
  EXPECT_INVALID(Check(t), "a.row_ptr[1] = 1000000 is greater than nnz = 2");
  Tensor u = MakeCsr(2, 4, {0, 2147483647, 2}, {0, 1}, {1, 1}, idx());
  EXPECT_INVALID(Check(u), "a.row_ptr[1] = 2147483647 is greater than nnz = 2");
}

TEST_P(ValidateTest, CsrLastRowPtrMustEqualNnz) {
  Tensor t = MakeCsr(2, 4, {0, 1, 2}, {0, 1, 2}, {1, 1, 1}, idx());
  EXPECT_INVALID(Check(t), "a.row_ptr[2] = 2 must equal nnz = 3");
}

TEST_P(ValidateTest, CsrColumnRange) {
  Tensor t = MakeCsr(4, 32, {0, 1, 1, 1, 3}, {5, 2, 40}, {1, 1, 1}, idx());
  EXPECT_INVALID(Check(t), "a.col_idx[2] = 40 is outside [0, cols = 32) (row 3)");
  Tensor neg = MakeCsr(2, 32, {0, 1, 2}, {5, -1}, {1, 1}, idx());
  EXPECT_INVALID(Check(neg), "a.col_idx[1] = -1 is outside [0, cols = 32) (row 1)");
  Tensor edge = MakeCsr(1, 32, {0, 1}, {32}, {1}, idx());
  EXPECT_INVALID(Check(edge), "a.col_idx[0] = 32 is outside [0, cols = 32) (row 0)");
  // Range checks apply even when unsorted input is allowed.
  EXPECT_INVALID(Check(t, /*allow_unsorted=*/true), "a.col_idx[2] = 40");
}

TEST_P(ValidateTest, CsrColumnsStrictlyIncreasingUnlessAllowed) {
  Tensor unsorted = MakeCsr(2, 8, {0, 1, 3}, {4, 6, 2}, {1, 1, 1}, idx());
  EXPECT_INVALID(Check(unsorted), "a.col_idx[2] = 2 is not greater than col_idx[1] = 6 (row 1");
  EXPECT_TRUE(Check(unsorted, true).ok());
  Tensor dup = MakeCsr(1, 8, {0, 2}, {3, 3}, {1, 1}, idx());
  EXPECT_INVALID(Check(dup), "a.col_idx[1] = 3 is not greater than col_idx[0] = 3");
  EXPECT_TRUE(Check(dup, true).ok());
  // A decrease across a row boundary is fine.
  EXPECT_TRUE(Check(MakeCsr(2, 8, {0, 1, 2}, {7, 0}, {1, 1}, idx())).ok());
}

TEST_P(ValidateTest, AcceptsCanonicalCoo) {
  EXPECT_TRUE(Check(MakeCoo(3, 4, {{0, 1, 1}, {0, 3, 2}, {2, 0, 3}}, idx())).ok());
  EXPECT_TRUE(Check(MakeCoo(0, 0, {}, idx())).ok());
  EXPECT_TRUE(Check(MakeCoo(5, 1, {{4, 0, 1}}, idx())).ok());
}

TEST_P(ValidateTest, CooIndexRanges) {
  EXPECT_INVALID(Check(MakeCoo(3, 4, {{0, 1, 1}, {3, 0, 1}}, idx())),
                 "a.row_idx[1] = 3 is outside [0, rows = 3)");
  EXPECT_INVALID(Check(MakeCoo(3, 4, {{-2, 1, 1}}, idx())),
                 "a.row_idx[0] = -2 is outside [0, rows = 3)");
  EXPECT_INVALID(Check(MakeCoo(3, 4, {{0, 1, 1}, {1, 4, 1}}, idx())),
                 "a.col_idx[1] = 4 is outside [0, cols = 4) (row 1)");
  EXPECT_INVALID(Check(MakeCoo(3, 4, {{1, 1, 1}, {0, 9, 1}}, idx()), true), "a.col_idx[1] = 9");
}

TEST_P(ValidateTest, CooOrderUnlessAllowed) {
  Tensor rows_back = MakeCoo(3, 4, {{1, 1, 1}, {0, 3, 1}}, idx());
  EXPECT_INVALID(Check(rows_back),
                 "a entry 1 (row_idx = 0, col_idx = 3) does not come after "
                 "entry 0 (row_idx = 1, col_idx = 1)");
  EXPECT_TRUE(Check(rows_back, true).ok());
  Tensor cols_back = MakeCoo(3, 4, {{1, 2, 1}, {1, 1, 1}}, idx());
  EXPECT_INVALID(Check(cols_back), "a entry 1 (row_idx = 1, col_idx = 1)");
  EXPECT_TRUE(Check(cols_back, true).ok());
  Tensor dup = MakeCoo(3, 4, {{2, 2, 1}, {2, 2, 1}}, idx());
  EXPECT_INVALID(Check(dup), "a entry 1 (row_idx = 2, col_idx = 2)");
  EXPECT_TRUE(Check(dup, true).ok());
}

TEST_P(ValidateTest, NonFiniteRejectedOnlyWhenAsked) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  Tensor csr = MakeCsr(2, 2, {0, 1, 2}, {0, 1}, {1, nan}, idx());
  EXPECT_TRUE(Check(csr).ok());
  EXPECT_INVALID(Check(csr, false, true), "a.values[1] = nan is not finite");
  Tensor coo = MakeCoo(2, 2, {{0, 0, -inf}}, idx());
  EXPECT_TRUE(Check(coo).ok());
  EXPECT_INVALID(Check(coo, false, true), "a.values[0] = -inf is not finite");
}

INSTANTIATE_TEST_SUITE_P(IndexTypes, ValidateTest, ::testing::Values(DType::kI32, DType::kI64),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(Validate, Dense) {
  Tensor t = test::MakeDense({2, 2}, {1, 0, std::numeric_limits<float>::infinity(), 3});
  EXPECT_TRUE(Check(t).ok());
  EXPECT_INVALID(Check(t, false, true), "a.values[2] = inf is not finite");
  EXPECT_TRUE(Check(test::MakeDense({0}, {})).ok());
}

// An independent statement of the CSR rules, for the fuzz test below.
bool CsrIsValid(int64_t rows, int64_t cols, const std::vector<int64_t>& rp,
                const std::vector<int64_t>& ci, bool allow_unsorted) {
  const int64_t nnz = static_cast<int64_t>(ci.size());
  if (rp[0] != 0 || rp[rows] != nnz) return false;
  for (int64_t r = 0; r < rows; ++r) {
    if (rp[r + 1] < rp[r] || rp[r + 1] > nnz) return false;
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
      if (ci[e] < 0 || ci[e] >= cols) return false;
      if (!allow_unsorted && e > rp[r] && ci[e] <= ci[e - 1]) return false;
    }
  }
  return true;
}

TEST_P(ValidateTest, FuzzCsrAgreesWithReferenceRules) {
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> small(-2, 7);
  int valid_seen = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    const int64_t rows = iter % 4, cols = 1 + iter % 5, nnz = iter % 7;
    if (nnz > rows * cols) continue;
    std::vector<int64_t> rp(rows + 1), ci(nnz);
    // Mostly-plausible row pointers (sorted samples), sometimes garbage.
    for (int64_t& x : rp) x = std::uniform_int_distribution<int64_t>(0, nnz)(rng);
    if (iter % 3 != 0) std::sort(rp.begin(), rp.end());
    rp[0] = iter % 11 == 0 ? small(rng) : 0;
    if (iter % 5 != 0) rp[rows] = nnz;
    for (int64_t& x : ci) x = small(rng);
    if (iter % 2 == 0) {
      // Sorted columns within rows make valid tensors common.
      for (int64_t r = 0; r < rows; ++r) {
        if (rp[r] >= 0 && rp[r] <= rp[r + 1] && rp[r + 1] <= nnz) {
          std::sort(ci.begin() + rp[r], ci.begin() + rp[r + 1]);
        }
      }
    }
    for (bool allow : {false, true}) {
      Tensor t = MakeCsr(rows, cols, rp, ci, std::vector<float>(nnz, 1.0f), idx());
      absl::Status s = Check(t, allow);
      const bool expect = CsrIsValid(rows, cols, rp, ci, allow);
      ASSERT_EQ(s.ok(), expect) << "iter " << iter << ": " << s;
      if (!s.ok()) {
        ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
      }
      valid_seen += expect;
    }
  }
  EXPECT_GT(valid_seen, 1000);  // the fuzz exercises both outcomes
}

// ---------------------------------------------------------------------------
// CSC: the CSR rules on col_ptr / row_idx.

Tensor MakeCsc(int64_t rows, int64_t cols, const std::vector<int64_t>& col_ptr,
               const std::vector<int64_t>& row_idx, const std::vector<float>& values, DType idx) {
  Tensor t = test::MustAllocate(
      {Format::kCsc, DType::kF32, idx, {rows, cols}, static_cast<int64_t>(row_idx.size())});
  test::SetIndices(t, "col_ptr", col_ptr);
  test::SetIndices(t, "row_idx", row_idx);
  test::SetValues(t, values);
  return t;
}

TEST_P(ValidateTest, AcceptsCanonicalCsc) {
  // Columns: {0: rows 1, 3}, {1: empty}, {2: row 0}.
  EXPECT_TRUE(Check(MakeCsc(4, 3, {0, 2, 2, 3}, {1, 3, 0}, {1, 2, 3}, idx())).ok());
  EXPECT_TRUE(Check(MakeCsc(0, 0, {0}, {}, {}, idx())).ok());
  EXPECT_TRUE(Check(MakeCsc(0, 3, {0, 0, 0, 0}, {}, {}, idx())).ok());
}

TEST_P(ValidateTest, CscColPtrMustStartAtZero) {
  EXPECT_INVALID(Check(MakeCsc(4, 2, {1, 2, 2}, {0, 1}, {1, 1}, idx())),
                 "a.col_ptr[0] = 1 must be 0");
}

TEST_P(ValidateTest, CscColPtrMustNotDecrease) {
  EXPECT_INVALID(Check(MakeCsc(4, 3, {0, 2, 0, 2}, {0, 1}, {1, 1}, idx())),
                 "a.col_ptr[2] = 0 is less than col_ptr[1] = 2 (column pointers must be "
                 "non-decreasing)");
}

TEST_P(ValidateTest, CscColPtrBeyondNnz) {
  EXPECT_INVALID(Check(MakeCsc(4, 2, {0, 100, 2}, {0, 1}, {1, 1}, idx())),
                 "a.col_ptr[1] = 100 is greater than nnz = 2");
}

TEST_P(ValidateTest, CscLastColPtrMustEqualNnz) {
  EXPECT_INVALID(Check(MakeCsc(4, 3, {0, 1, 1, 2}, {0, 1, 2}, {1, 1, 1}, idx())),
                 "a.col_ptr[3] = 2 must equal nnz = 3 (the last column pointer ends the last "
                 "column)");
}

TEST_P(ValidateTest, CscRowRange) {
  Tensor t = MakeCsc(4, 2, {0, 2, 2}, {1, 4}, {1, 1}, idx());
  EXPECT_INVALID(Check(t), "a.row_idx[1] = 4 is outside [0, rows = 4) (column 0)");
  EXPECT_INVALID(Check(t, /*allow_unsorted=*/true), "a.row_idx[1] = 4");
  EXPECT_INVALID(Check(MakeCsc(4, 2, {0, 0, 1}, {-1}, {1}, idx())),
                 "a.row_idx[0] = -1 is outside [0, rows = 4) (column 1)");
}

TEST_P(ValidateTest, CscRowsStrictlyIncreasingWithinAColumnUnlessAllowed) {
  Tensor unsorted = MakeCsc(4, 2, {0, 1, 3}, {3, 2, 0}, {1, 1, 1}, idx());
  EXPECT_INVALID(Check(unsorted),
                 "a.row_idx[2] = 0 is not greater than row_idx[1] = 2 (column 1; rows must be "
                 "strictly increasing within a column; set sort_and_sum_duplicates to have "
                 "them sorted and duplicates summed)");
  EXPECT_TRUE(Check(unsorted, true).ok());
  Tensor dup = MakeCsc(4, 1, {0, 2}, {2, 2}, {1, 1}, idx());
  EXPECT_INVALID(Check(dup), "a.row_idx[1] = 2 is not greater than row_idx[0] = 2 (column 0");
  EXPECT_TRUE(Check(dup, true).ok());
}

// ---------------------------------------------------------------------------
// BSR: 5 x 7 with 2 x 3 blocks has 3 block rows and 3 block columns; the last
// block row has padding row 5, the last block column padding columns 7 and 8.

Tensor MakeBsr(int64_t rows, int64_t cols, int64_t R, int64_t C,
               const std::vector<int64_t>& block_row_ptr, const std::vector<int64_t>& block_col_idx,
               std::vector<float> values, DType idx, DType dtype = DType::kF32) {
  TensorDesc d{
      Format::kBsr, DType::kF32, idx, {rows, cols}, static_cast<int64_t>(block_col_idx.size())};
  d.block_rows = R;
  d.block_cols = C;
  Tensor t = test::MustAllocate(d);
  test::SetIndices(t, "block_row_ptr", block_row_ptr);
  test::SetIndices(t, "block_col_idx", block_col_idx);
  test::SetValues(t, values);
  if (dtype == DType::kF32) return t;
  absl::StatusOr<Tensor> cast = CastValues(t, dtype);
  EXPECT_TRUE(cast.ok());
  return std::move(cast).value();
}

// Block values with every in-matrix position 1 and padding 0, for block
// (br, bc) of a 5 x 7 matrix with 2 x 3 blocks.
std::vector<float> Block57(int64_t br, int64_t bc) {
  std::vector<float> v;
  for (int64_t i = 0; i < 2; ++i) {
    for (int64_t j = 0; j < 3; ++j) v.push_back(br * 2 + i < 5 && bc * 3 + j < 7 ? 1.0f : 0.0f);
  }
  return v;
}

std::vector<float> Concat(std::initializer_list<std::vector<float>> parts) {
  std::vector<float> v;
  for (const auto& p : parts) v.insert(v.end(), p.begin(), p.end());
  return v;
}

TEST_P(ValidateTest, AcceptsCanonicalBsr) {
  Tensor t = MakeBsr(5, 7, 2, 3, {0, 2, 2, 4}, {0, 2, 0, 2},
                     Concat({Block57(0, 0), Block57(0, 2), Block57(2, 0), Block57(2, 2)}), idx());
  EXPECT_TRUE(Check(t).ok()) << Check(t);
  // -0 is zero padding too.
  std::vector<float> v = Block57(2, 2);
  v[1] = -0.0f;
  EXPECT_TRUE(Check(MakeBsr(5, 7, 2, 3, {0, 0, 0, 1}, {2}, v, idx())).ok());
  EXPECT_TRUE(Check(MakeBsr(0, 0, 4, 4, {0}, {}, {}, idx())).ok());
  EXPECT_TRUE(Check(MakeBsr(5, 0, 2, 3, {0, 0, 0, 0}, {}, {}, idx())).ok());
}

TEST_P(ValidateTest, BsrBlockRowPtrMustStartAtZero) {
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {1, 1, 1, 1}, {0}, Block57(0, 0), idx())),
                 "a.block_row_ptr[0] = 1 must be 0");
}

TEST_P(ValidateTest, BsrBlockRowPtrMustNotDecrease) {
  EXPECT_INVALID(
      Check(
          MakeBsr(5, 7, 2, 3, {0, 2, 1, 2}, {0, 1}, Concat({Block57(0, 0), Block57(0, 1)}), idx())),
      "a.block_row_ptr[2] = 1 is less than block_row_ptr[1] = 2 (block row pointers must be "
      "non-decreasing)");
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 9, 1, 1}, {0}, Block57(0, 0), idx())),
                 "a.block_row_ptr[1] = 9 is greater than nnz = 1");
}

TEST_P(ValidateTest, BsrLastBlockRowPtrMustEqualNnz) {
  EXPECT_INVALID(
      Check(
          MakeBsr(5, 7, 2, 3, {0, 1, 1, 1}, {0, 1}, Concat({Block57(0, 0), Block57(0, 1)}), idx())),
      "a.block_row_ptr[3] = 1 must equal nnz = 2 (the last block row pointer ends the last block "
      "row)");
}

TEST_P(ValidateTest, BsrBlockColumnRange) {
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 0, 2, 2}, {1, 3},
                               Concat({Block57(1, 1), Block57(1, 1)}), idx())),
                 "a.block_col_idx[1] = 3 is outside [0, block_col_count = 3) (block row 1)");
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 1, 1, 1}, {-1}, Block57(0, 0), idx())),
                 "a.block_col_idx[0] = -1 is outside [0, block_col_count = 3) (block row 0)");
}

TEST_P(ValidateTest, BsrBlockColumnsStrictlyIncreasingEvenWhenUnsortedAllowed) {
  Tensor t =
      MakeBsr(5, 7, 2, 3, {0, 2, 2, 2}, {1, 0}, Concat({Block57(0, 1), Block57(0, 0)}), idx());
  const std::string want =
      "a.block_col_idx[1] = 0 is not greater than block_col_idx[0] = 1 (block row 0; block "
      "columns must be strictly increasing within a block row)";
  EXPECT_INVALID(Check(t), want);
  EXPECT_INVALID(Check(t, /*allow_unsorted=*/true), want);
  Tensor dup =
      MakeBsr(5, 7, 2, 3, {0, 0, 2, 2}, {1, 1}, Concat({Block57(1, 1), Block57(1, 1)}), idx());
  EXPECT_INVALID(Check(dup), "a.block_col_idx[1] = 1 is not greater than block_col_idx[0] = 1");
}

TEST_P(ValidateTest, BsrEdgeBlockPaddingMustBeZero) {
  // Padding row 5 of block row 2 (block 0 at block column 0): element (1, 1).
  std::vector<float> v = Block57(2, 0);
  v[1 * 3 + 1] = 2.5f;
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 0, 0, 1}, {0}, v, idx())),
                 "a.values[4] = 2.5 is zero padding of block 0 (block row 2, block col 0) at row "
                 "5, col 1, outside the [5, 7] matrix, and must be 0");
  // Padding column 8 of block column 2 in block row 0 (the second block).
  std::vector<float> w = Concat({Block57(0, 0), Block57(0, 2)});
  w[6 + 0 * 3 + 2] = -1.0f;
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 2, 2, 2}, {0, 2}, w, idx())),
                 "a.values[8] = -1 is zero padding of block 1 (block row 0, block col 2) at row "
                 "0, col 8, outside the [5, 7] matrix, and must be 0");
  // Named with the float value for 16-bit tensors too; NaN padding is not 0.
  std::vector<float> h = Block57(2, 2);
  h[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 0, 0, 1}, {2}, h, idx(), DType::kF16)),
                 "a.values[5] = nan is zero padding of block 0 (block row 2, block col 2) at row "
                 "5, col 8");
  std::vector<float> b = Block57(0, 2);
  b[2] = 0.5f;
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 1, 1, 1}, {2}, b, idx(), DType::kBF16)),
                 "a.values[2] = 0.5 is zero padding");
  // In-matrix values may be anything.
  std::vector<float> in = Block57(2, 2);
  in[0] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(Check(MakeBsr(5, 7, 2, 3, {0, 0, 0, 1}, {2}, in, idx())).ok());
  EXPECT_INVALID(Check(MakeBsr(5, 7, 2, 3, {0, 0, 0, 1}, {2}, in, idx()), false, true),
                 "a.values[0] = inf is not finite");
}

// ---------------------------------------------------------------------------
// N:M.

Tensor MakeNm(int64_t rows, int64_t cols, int n, int m, const std::vector<int32_t>& meta) {
  TensorDesc d{Format::kNm, DType::kF32, DType::kI32, {rows, cols}, rows * (cols / m) * n};
  d.nm_n = n;
  d.nm_m = m;
  Tensor t = test::MustAllocate(d);
  test::SetValues(t, std::vector<float>(d.nnz, 1.0f));
  std::span<int32_t> s = t.data<int32_t>("meta");
  EXPECT_EQ(s.size(), meta.size());
  std::copy(meta.begin(), meta.end(), s.begin());
  return t;
}

// A 2:4 nibble: positions a (low 2 bits) and b.
constexpr int32_t Nib(int a, int b) { return a | (b << 2); }

TEST(ValidateNm, AcceptsCanonical24) {
  // 2 rows of 12 groups: 2 words per row, the second using 4 nibbles.
  const int32_t full = Nib(0, 1) | Nib(2, 3) << 4 | Nib(0, 3) << 8 | Nib(1, 2) << 12 |
                       Nib(0, 2) << 16 | Nib(1, 3) << 20 | Nib(0, 1) << 24 | Nib(2, 3) << 28;
  const int32_t part = Nib(0, 1) | Nib(1, 3) << 4 | Nib(0, 2) << 8 | Nib(2, 3) << 12;
  EXPECT_TRUE(Check(MakeNm(2, 48, 2, 4, {full, part, full, part})).ok());
  EXPECT_TRUE(Check(MakeNm(0, 8, 2, 4, {})).ok());
  EXPECT_TRUE(Check(MakeNm(3, 0, 2, 4, {})).ok());
}

TEST(ValidateNm, Packed24PositionsMustDiffer) {
  const int32_t w = Nib(0, 1) | Nib(1, 1) << 4;
  EXPECT_INVALID(Check(MakeNm(2, 8, 2, 4, {Nib(0, 1) | Nib(0, 1) << 4, w})),
                 "a.meta[1] = 0x00000054 (row 1): group 1 (bits 4..7) = 5 keeps positions 1 and "
                 "1; the two positions must differ");
}

TEST(ValidateNm, Packed24FirstPositionMustBeSmaller) {
  const int32_t w = Nib(0, 1) | Nib(0, 1) << 4 | Nib(0, 1) << 8 | Nib(0, 1) << 12 |
                    Nib(0, 1) << 16 | Nib(0, 1) << 20 | Nib(0, 1) << 24 | Nib(3, 2) << 28;
  EXPECT_INVALID(Check(MakeNm(1, 32, 2, 4, {w})),
                 "a.meta[0] = 0xb4444444 (row 0): group 7 (bits 28..31) = 11 keeps positions 3 "
                 "and 2; the first (low 2 bits) must be less than the second");
}

TEST(ValidateNm, Packed24UnusedNibblesMustBeZero) {
  // 10 groups: word 1 of each row uses bits 0..7 only.
  const int32_t w0 = 0x44444444;  // Nib(0, 1) everywhere
  EXPECT_INVALID(Check(MakeNm(2, 40, 2, 4, {w0, 0x44, w0, 0x1044})),
                 "a.meta[3] = 0x00001044 (row 1, last word): bits 8..31 are unused (10 groups per "
                 "row) and must be 0");
  // A row with groups a multiple of 8 has no unused bits.
  EXPECT_TRUE(Check(MakeNm(1, 32, 2, 4, {w0})).ok());
}

TEST(ValidateNm, GeneralPositionsInRange) {
  // 2:8, 1 row, 2 groups: slots (0, 3), (1, 8).
  EXPECT_INVALID(Check(MakeNm(1, 16, 2, 8, {0, 3, 1, 8})),
                 "a.meta[3] = 8 is outside [0, m = 8) (row 0, group 1, slot 1)");
  EXPECT_INVALID(Check(MakeNm(2, 16, 1, 8, {0, 3, 7, -1})),
                 "a.meta[3] = -1 is outside [0, m = 8) (row 1, group 1, slot 0)");
  EXPECT_TRUE(Check(MakeNm(2, 16, 1, 8, {0, 3, 7, 5})).ok());
  EXPECT_TRUE(
      Check(MakeNm(1, 64, 8, 32, {0, 1, 2, 3, 4, 5, 6, 31, 3, 7, 8, 9, 20, 21, 22, 30})).ok());
}

TEST(ValidateNm, GeneralPositionsStrictlyIncreasingWithinAGroup) {
  // 4:8, 2 rows x 1 group; row 1 repeats a position, then decreasing.
  EXPECT_INVALID(Check(MakeNm(2, 8, 4, 8, {0, 2, 4, 6, 1, 3, 3, 7})),
                 "a.meta[6] = 3 is not greater than meta[5] = 3 (row 1, group 0; positions must be "
                 "strictly increasing within a group)");
  EXPECT_INVALID(Check(MakeNm(1, 16, 4, 8, {0, 2, 4, 6, 5, 1, 2, 3})),
                 "a.meta[5] = 1 is not greater than meta[4] = 5 (row 0, group 1");
  // A decrease across groups is fine, and unsorted is never allowed.
  EXPECT_TRUE(Check(MakeNm(1, 16, 4, 8, {4, 5, 6, 7, 0, 1, 2, 3})).ok());
  EXPECT_INVALID(Check(MakeNm(1, 8, 2, 8, {3, 1}), /*allow_unsorted=*/true), "a.meta[1] = 1");
}

// ---------------------------------------------------------------------------
// SortAndSumDuplicates

using EntryMap = std::map<std::pair<int64_t, int64_t>, double>;

EntryMap ReferenceSum(const std::vector<Triplet>& e) {
  EntryMap m;
  for (const Triplet& x : e) m[{x.r, x.c}] += x.v;  // insertion order = stored order
  return m;
}

void ExpectCanonicalEquals(const Tensor& t, const EntryMap& want) {
  ASSERT_TRUE(ValidateTensor(t).ok()) << ValidateTensor(t);
  ASSERT_EQ(t.desc().nnz, static_cast<int64_t>(want.size()));
  std::vector<int64_t> rows;
  if (t.format() == Format::kCoo) {
    rows = test::GetIndices(t, "row_idx");
  } else {
    std::vector<int64_t> rp = test::GetIndices(t, "row_ptr");
    for (int64_t r = 0; r < t.desc().rows(); ++r) rows.insert(rows.end(), rp[r + 1] - rp[r], r);
  }
  std::vector<int64_t> cols = test::GetIndices(t, "col_idx");
  std::vector<float> vals = test::GetValues(t);
  size_t i = 0;
  for (const auto& [pos, v] : want) {
    EXPECT_EQ(rows[i], pos.first) << i;
    EXPECT_EQ(cols[i], pos.second) << i;
    EXPECT_FLOAT_EQ(vals[i], static_cast<float>(v)) << i;
    ++i;
  }
}

class SortAndSumTest : public ::testing::TestWithParam<std::tuple<Format, DType>> {};

TEST_P(SortAndSumTest, MatchesMapReference) {
  const auto [format, idx] = GetParam();
  std::mt19937_64 rng(7);
  for (auto [rows, cols, count] : std::vector<std::tuple<int64_t, int64_t, int>>{
           {0, 0, 0}, {2, 2, 4}, {1, 50, 50}, {50, 1, 50}, {6, 7, 0}, {6, 7, 30}, {40, 30, 900}}) {
    std::vector<Triplet> e;
    std::uniform_int_distribution<int64_t> r(0, std::max<int64_t>(rows - 1, 0));
    std::uniform_int_distribution<int64_t> c(0, std::max<int64_t>(cols - 1, 0));
    std::uniform_real_distribution<float> v(-1, 1);
    for (int i = 0; i < count; ++i) e.push_back({r(rng), c(rng), v(rng)});
    Tensor t = test::MakeSparse(format, rows, cols, e, idx);
    absl::StatusOr<Tensor> out = SortAndSumDuplicates(t);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->format(), format);
    EXPECT_EQ(out->desc().index_dtype, idx);
    EXPECT_EQ(out->desc().shape, t.desc().shape);
    // The CSR builder keeps the stored order within a row, so the map sees
    // duplicates in the same order the tensor stores them.
    std::vector<Triplet> stored = e;
    std::stable_sort(stored.begin(), stored.end(),
                     [](const Triplet& x, const Triplet& y) { return x.r < y.r; });
    ExpectCanonicalEquals(*out, ReferenceSum(stored));
  }
}

TEST_P(SortAndSumTest, KeepsCancelledDuplicatesAndRejectsOutOfRange) {
  const auto [format, idx] = GetParam();
  Tensor t = test::MakeSparse(format, 2, 3, {{1, 2, 1.5f}, {0, 1, 2}, {1, 2, -1.5f}}, idx);
  absl::StatusOr<Tensor> out = SortAndSumDuplicates(t);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectCanonicalEquals(*out, {{{0, 1}, 2.0}, {{1, 2}, 0.0}});
  Tensor bad = test::MakeSparse(format, 2, 3, {{0, 3, 1}}, idx);
  EXPECT_EQ(SortAndSumDuplicates(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(All, SortAndSumTest,
                         ::testing::Combine(::testing::Values(Format::kCoo, Format::kCsr),
                                            ::testing::Values(DType::kI32, DType::kI64)),
                         [](const auto& info) {
                           return StrCat(FormatName(std::get<0>(info.param)), "_",
                                         DTypeName(std::get<1>(info.param)));
                         });

TEST_P(ValidateTest, SortAndSumCscSortsWithinColumns) {
  std::mt19937_64 rng(11);
  for (auto [rows, cols, count] : std::vector<std::tuple<int64_t, int64_t, int>>{
           {0, 0, 0}, {3, 0, 0}, {1, 40, 30}, {40, 1, 30}, {9, 7, 60}}) {
    std::vector<Triplet> e;
    std::uniform_int_distribution<int64_t> r(0, std::max<int64_t>(rows - 1, 0));
    std::uniform_int_distribution<int64_t> c(0, std::max<int64_t>(cols - 1, 0));
    std::uniform_real_distribution<float> v(-1, 1);
    for (int i = 0; i < count; ++i) e.push_back({r(rng), c(rng), v(rng)});
    // Stored column by column, in random order within each column.
    std::stable_sort(e.begin(), e.end(),
                     [](const Triplet& x, const Triplet& y) { return x.c < y.c; });
    std::vector<int64_t> col_ptr(cols + 1, 0), row_idx;
    std::vector<float> vals;
    std::map<std::pair<int64_t, int64_t>, double> want;  // (col, row) -> sum in stored order
    for (const Triplet& x : e) {
      ++col_ptr[x.c + 1];
      row_idx.push_back(x.r);
      vals.push_back(x.v);
      want[{x.c, x.r}] += x.v;
    }
    for (int64_t k = 0; k < cols; ++k) col_ptr[k + 1] += col_ptr[k];
    absl::StatusOr<Tensor> out =
        SortAndSumDuplicates(MakeCsc(rows, cols, col_ptr, row_idx, vals, idx()));
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->format(), Format::kCsc);
    EXPECT_EQ(out->desc().index_dtype, idx());
    ASSERT_TRUE(ValidateTensor(*out).ok()) << ValidateTensor(*out);
    ASSERT_EQ(out->desc().nnz, static_cast<int64_t>(want.size()));
    const std::vector<int64_t> cp = test::GetIndices(*out, "col_ptr"),
                               ri = test::GetIndices(*out, "row_idx");
    const std::vector<float> ov = test::GetValues(*out);
    auto it = want.begin();
    for (int64_t k = 0; k < cols; ++k) {
      for (int64_t x = cp[k]; x < cp[k + 1]; ++x, ++it) {
        EXPECT_EQ(it->first, std::make_pair(k, ri[x]));
        EXPECT_FLOAT_EQ(ov[x], static_cast<float>(it->second));
      }
    }
  }
  EXPECT_INVALID(SortAndSumDuplicates(MakeCsc(2, 2, {0, 1, 1}, {2}, {1}, idx())).status(),
                 "tensor.row_idx[0] = 2 is outside [0, rows = 2)");
}

TEST(SortAndSum, RejectsBsrAndNm) {
  EXPECT_INVALID(SortAndSumDuplicates(MakeBsr(2, 2, 2, 2, {0, 0}, {}, {}, DType::kI32)).status(),
                 "SortAndSumDuplicates takes coo, csr or csc, not bsr");
  EXPECT_INVALID(SortAndSumDuplicates(MakeNm(1, 4, 2, 4, {Nib(0, 1)})).status(),
                 "SortAndSumDuplicates takes coo, csr or csc, not nm");
}

TEST(SortAndSum, DensePassesThrough) {
  Tensor t = test::MakeDense({2, 2}, {1, 2, 3, 4});
  absl::StatusOr<Tensor> out = SortAndSumDuplicates(t);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(test::GetValues(*out), (std::vector<float>{1, 2, 3, 4}));
}

TEST(SortAndSum, RealMatrixWithSymmetricExpansionShuffled) {
  int64_t rows = 0, cols = 0;
  std::vector<Triplet> e = test::ReadMtx(SPARSED_TEST_DATA "/bcsstk13.mtx", &rows, &cols);
  ASSERT_EQ(rows, 2003);
  std::mt19937_64 rng(3);
  std::shuffle(e.begin(), e.end(), rng);
  e.push_back(e[17]);  // one explicit duplicate
  Tensor t = MakeCoo(rows, cols, e, DType::kI32);
  absl::StatusOr<Tensor> out = SortAndSumDuplicates(t);
  ASSERT_TRUE(out.ok()) << out.status();
  ExpectCanonicalEquals(*out, ReferenceSum(e));
}

}  // namespace
}  // namespace sparsed

namespace sparsed {
namespace {

// Regression (found by fuzz_upload): an upload asking for sort-and-sum of a
// BSR or N:M tensor reached the COO/CSR canonicaliser, which read components
// those formats do not have. Their order is fixed by the format, so the
// request is refused instead.
TEST(SortAndSumRegressionTest, CooWithAHugeRowCountNeedsNoMemoryPerRow) {
  // fuzz_matrix_market: a coordinate header of 2·10^14 rows made the COO
  // canonicaliser allocate a row pointer of that length. Entries are sorted
  // by (row, column) now: memory O(nnz).
  const int64_t rows = int64_t{200000100000200};
  absl::StatusOr<Tensor> out = SortAndSumDuplicates(
      MakeCoo(rows, 3, {{rows - 1, 2, 1}, {5, 1, 2}, {rows - 1, 2, 4}, {5, 0, 8}, {0, 2, 16}},
              DType::kI64));
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(ValidateTensor(*out).ok()) << ValidateTensor(*out);
  EXPECT_EQ(test::GetIndices(*out, "row_idx"), (std::vector<int64_t>{0, 5, 5, rows - 1}));
  EXPECT_EQ(test::GetIndices(*out, "col_idx"), (std::vector<int64_t>{2, 0, 1, 2}));
  EXPECT_EQ(test::GetValues(*out), (std::vector<float>{16, 8, 2, 5}));
  absl::StatusOr<Tensor> empty = SortAndSumDuplicates(MakeCoo(rows, 0, {}, DType::kI64));
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->desc().nnz, 0);
  // Converting or transposing it would need 2·10^14 offsets on the host: a
  // clean RESOURCE_EXHAUSTED, not bad_alloc.
  absl::Status s = Convert(*empty, Format::kDense).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("[200000100000200, 0]"));
  EXPECT_EQ(Transpose(*empty).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(SortAndSumRegressionTest, BsrAndNmAreRefusedNotMisread) {
  const Tensor dense = test::MakeDense({4, 8}, {1, 0, 0, 2, 0, 3, 0, 0, 0, 0, 4, 0, 5, 0, 0, 0,
                                                0, 6, 0, 0, 0, 0, 7, 0, 8, 0, 0, 0, 0, 0, 0, 9});
  ConvertOptions bsr;
  bsr.block_rows = 2;
  bsr.block_cols = 3;
  ConvertOptions nm;
  nm.nm_n = 2;
  nm.nm_m = 4;
  for (auto [format, options] : {std::pair{Format::kBsr, bsr}, std::pair{Format::kNm, nm}}) {
    absl::StatusOr<Tensor> t = Convert(dense, format, options);
    ASSERT_TRUE(t.ok()) << t.status();
    absl::StatusOr<Tensor> out = SortAndSumDuplicates(*t);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << FormatName(format);
    EXPECT_THAT(out.status().message(), HasSubstr(std::string(FormatName(format))));
  }
}

}  // namespace
}  // namespace sparsed
