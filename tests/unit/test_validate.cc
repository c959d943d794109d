// ValidateTensor (every rule, accepted and rejected) and SortAndSumDuplicates
// (against a std::map reference).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "kernels_test_util.h"
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
