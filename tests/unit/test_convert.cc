// Convert, Transpose and NarrowestIndexType against naive densification.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <random>

#include "kernels_test_util.h"
#include "sparsed/convert.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

using test::Densify;
using test::Triplet;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  int64_t rows, cols;
  std::vector<Triplet> entries;  // canonical, nonzero values
};

// Random and awkward matrices: empty, 0-sized, single row/column, all zero,
// fully dense, one long row among empty ones.
std::vector<Case> Cases() {
  std::mt19937_64 rng(1234);
  std::vector<Case> cases;
  cases.push_back({"empty_0x0", 0, 0, {}});
  cases.push_back({"zero_rows", 0, 6, {}});
  cases.push_back({"zero_cols", 5, 0, {}});
  cases.push_back({"all_zero", 4, 5, {}});
  cases.push_back({"one", 1, 1, test::RandomTriplets(1, 1, 1.0, rng)});
  cases.push_back({"row_vector", 1, 37, test::RandomTriplets(1, 37, 0.4, rng)});
  cases.push_back({"col_vector", 37, 1, test::RandomTriplets(37, 1, 0.4, rng)});
  cases.push_back({"full", 6, 7, test::RandomTriplets(6, 7, 1.0, rng)});
  cases.push_back({"long_row", 30, 40, test::RandomTriplets(30, 40, 0.0, rng, 17)});
  cases.push_back({"random_sparse", 23, 19, test::RandomTriplets(23, 19, 0.1, rng)});
  cases.push_back({"random_wide", 9, 120, test::RandomTriplets(9, 120, 0.05, rng)});
  cases.push_back({"random_tall", 150, 8, test::RandomTriplets(150, 8, 0.2, rng)});
  return cases;
}

std::vector<double> NaiveDense(const Case& c) {
  std::vector<double> d(c.rows * c.cols, 0.0);
  for (const Triplet& e : c.entries) d[e.r * c.cols + e.c] = e.v;
  return d;
}

Tensor Build(const Case& c, Format f, DType idx) {
  if (f == Format::kDense) {
    std::vector<double> d = NaiveDense(c);
    return test::MakeDense({c.rows, c.cols}, std::vector<float>(d.begin(), d.end()));
  }
  return test::MakeSparse(f, c.rows, c.cols, c.entries, idx);
}

// Same format, dtypes, shape and identical arrays.
void ExpectSameTensor(const Tensor& got, const Tensor& want) {
  ASSERT_EQ(got.format(), want.format());
  ASSERT_EQ(got.desc().shape, want.desc().shape);
  EXPECT_EQ(test::GetValues(got), test::GetValues(want));
  if (IsSparse(want.format())) {
    ASSERT_EQ(got.desc().nnz, want.desc().nnz);
    for (const char* name : {"row_ptr", "row_idx", "col_idx"}) {
      if (want.component(name) != nullptr) {
        EXPECT_EQ(test::GetIndices(got, name), test::GetIndices(want, name)) << name;
      }
    }
  }
}

using ConvertParam = std::tuple<Format, Format, DType, std::optional<DType>>;

class ConvertTest : public ::testing::TestWithParam<ConvertParam> {};

TEST_P(ConvertTest, MatchesNaiveDenseAndRoundTrips) {
  const auto [from, to, in_idx, out_idx] = GetParam();
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Tensor in = Build(c, from, in_idx);
    absl::StatusOr<Tensor> out = Convert(in, to, out_idx);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->format(), to);
    EXPECT_EQ(out->desc().shape, (std::vector<int64_t>{c.rows, c.cols}));
    EXPECT_TRUE(ValidateTensor(*out).ok()) << ValidateTensor(*out);  // canonical
    if (IsSparse(to)) {
      EXPECT_EQ(out->desc().nnz, static_cast<int64_t>(c.entries.size()));
      // Small matrices: the narrowest index type is i32 unless asked.
      EXPECT_EQ(out->desc().index_dtype, out_idx.value_or(DType::kI32));
    }
    EXPECT_EQ(Densify(*out), NaiveDense(c));
    // Back to where it came from, bit for bit.
    absl::StatusOr<Tensor> back = Convert(*out, from, in_idx);
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectSameTensor(*back, in);
    if (IsSparse(from)) {
      EXPECT_EQ(back->desc().index_dtype, in_idx);
    }
  }
}

std::string ConvertName(const ::testing::TestParamInfo<ConvertParam>& info) {
  const auto& [from, to, in_idx, out_idx] = info.param;
  return StrCat(FormatName(from), "_", DTypeName(in_idx), "_to_", FormatName(to), "_",
                out_idx ? DTypeName(*out_idx) : std::string_view("auto"));
}

INSTANTIATE_TEST_SUITE_P(
    AllPairs, ConvertTest,
    ::testing::Combine(::testing::Values(Format::kDense, Format::kCoo, Format::kCsr),
                       ::testing::Values(Format::kDense, Format::kCoo, Format::kCsr),
                       ::testing::Values(DType::kI32, DType::kI64),
                       ::testing::Values(std::nullopt, std::optional<DType>(DType::kI32),
                                         std::optional<DType>(DType::kI64))),
    ConvertName);

TEST(Convert, DenseToSparseDropsZerosOnlyFromDense) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor d = test::MakeDense({2, 3}, {0.0f, -0.0f, 2.0f, nan, 0.0f, -1.0f});
  absl::StatusOr<Tensor> csr = Convert(d, Format::kCsr);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(test::GetIndices(*csr, "row_ptr"), (std::vector<int64_t>{0, 1, 3}));
  EXPECT_EQ(test::GetIndices(*csr, "col_idx"), (std::vector<int64_t>{2, 0, 2}));
  std::vector<float> v = test::GetValues(*csr);
  EXPECT_EQ(v[0], 2.0f);
  EXPECT_TRUE(std::isnan(v[1]));  // NaN is not zero: kept
  EXPECT_EQ(v[2], -1.0f);
  // An explicit zero stored in a sparse tensor survives sparse-to-sparse.
  Tensor coo = test::MakeCoo(2, 2, {{0, 1, 0.0f}, {1, 0, 3.0f}}, DType::kI64);
  absl::StatusOr<Tensor> c2 = Convert(coo, Format::kCsr);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->desc().nnz, 2);
  EXPECT_EQ(c2->desc().index_dtype, DType::kI32);
  EXPECT_EQ(test::GetValues(*c2), (std::vector<float>{0.0f, 3.0f}));
}

TEST(Convert, RejectsInvalidInputAndBadArguments) {
  Tensor unsorted = test::MakeCsr(1, 4, {0, 2}, {3, 1}, {1, 1}, DType::kI32);
  absl::Status s = Convert(unsorted, Format::kCoo).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("col_idx[1] = 1"));
  Tensor out_of_range = test::MakeCoo(2, 2, {{0, 5, 1}}, DType::kI32);
  EXPECT_THAT(std::string(Convert(out_of_range, Format::kDense).status().message()),
              HasSubstr("col_idx[0] = 5"));
  Tensor vec = test::MakeDense({3}, {1, 0, 2});
  EXPECT_THAT(std::string(Convert(vec, Format::kCsr).status().message()),
              HasSubstr("only 2-D tensors convert to csr"));
  absl::StatusOr<Tensor> copy = Convert(vec, Format::kDense);
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(test::GetValues(*copy), (std::vector<float>{1, 0, 2}));
  Tensor m = test::MakeDense({1, 1}, {1});
  EXPECT_THAT(std::string(Convert(m, Format::kCsr, DType::kF32).status().message()),
              HasSubstr("index_dtype = 1"));
  EXPECT_THAT(std::string(Convert(m, static_cast<Format>(7)).status().message()),
              HasSubstr("format = 7"));
}

TEST(NarrowestIndexType, PicksI64OnlyWhenNeeded) {
  constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
  auto desc = [](int64_t r, int64_t c, int64_t nnz) {
    return TensorDesc{Format::kCsr, DType::kF32, DType::kI64, {r, c}, nnz};
  };
  EXPECT_EQ(NarrowestIndexType(desc(3, 4, 5)), DType::kI32);
  EXPECT_EQ(NarrowestIndexType(desc(kMax32, kMax32, kMax32)), DType::kI32);
  EXPECT_EQ(NarrowestIndexType(desc(kMax32 + 1, 2, 0)), DType::kI64);
  EXPECT_EQ(NarrowestIndexType(desc(2, kMax32 + 1, 0)), DType::kI64);
  EXPECT_EQ(NarrowestIndexType(desc(kMax32, kMax32, kMax32 + 1)), DType::kI64);
}

TEST(Convert, WideShapeGetsI64Indices) {
  // 3 x 2^31 fits no i32 column index; nnz is tiny so this costs nothing.
  const int64_t cols = int64_t{1} << 31;
  Tensor coo = test::MakeCoo(3, cols, {{0, cols - 1, 1.0f}, {2, 5, 2.0f}}, DType::kI64);
  absl::StatusOr<Tensor> csr = Convert(coo, Format::kCsr);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(csr->desc().index_dtype, DType::kI64);
  EXPECT_EQ(test::GetIndices(*csr, "col_idx"), (std::vector<int64_t>{cols - 1, 5}));
  EXPECT_THAT(std::string(Convert(coo, Format::kCsr, DType::kI32).status().message()),
              HasSubstr("i32 cannot index"));
}

class TransposeTest : public ::testing::TestWithParam<std::tuple<Format, DType>> {};

TEST_P(TransposeTest, MatchesNaiveTransposeAndIsAnInvolution) {
  const auto [format, idx] = GetParam();
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Tensor in = Build(c, format, idx);
    absl::StatusOr<Tensor> t = Transpose(in);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->format(), format);
    EXPECT_EQ(t->desc().shape, (std::vector<int64_t>{c.cols, c.rows}));
    if (IsSparse(format)) {
      EXPECT_EQ(t->desc().index_dtype, idx);
    }
    EXPECT_TRUE(ValidateTensor(*t).ok()) << ValidateTensor(*t);
    const std::vector<double> d = NaiveDense(c);
    std::vector<double> want(d.size());
    for (int64_t r = 0; r < c.rows; ++r) {
      for (int64_t k = 0; k < c.cols; ++k) want[k * c.rows + r] = d[r * c.cols + k];
    }
    EXPECT_EQ(Densify(*t), want);
    absl::StatusOr<Tensor> tt = Transpose(*t);
    ASSERT_TRUE(tt.ok());
    ExpectSameTensor(*tt, in);
  }
}

INSTANTIATE_TEST_SUITE_P(All, TransposeTest,
                         ::testing::Combine(::testing::Values(Format::kDense, Format::kCoo,
                                                              Format::kCsr),
                                            ::testing::Values(DType::kI32, DType::kI64)),
                         [](const auto& info) {
                           return StrCat(FormatName(std::get<0>(info.param)), "_",
                                         DTypeName(std::get<1>(info.param)));
                         });

TEST(Transpose, LargeDenseCrossesTiles) {
  std::mt19937_64 rng(5);
  const int64_t rows = 70, cols = 45;
  std::vector<float> v = test::RandomFloats(rows * cols, rng);
  absl::StatusOr<Tensor> t = Transpose(test::MakeDense({rows, cols}, v));
  ASSERT_TRUE(t.ok());
  std::vector<float> got = test::GetValues(*t);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(got[c * rows + r], v[r * cols + c]);
  }
}

TEST(Convert, RealMatrixRoundTrip) {
  int64_t rows = 0, cols = 0;
  std::vector<Triplet> e = test::ReadMtx(SPARSED_TEST_DATA "/zenios.mtx", &rows, &cols);
  std::sort(e.begin(), e.end(), [](const Triplet& x, const Triplet& y) {
    return std::make_pair(x.r, x.c) < std::make_pair(y.r, y.c);
  });
  Tensor coo = test::MakeCoo(rows, cols, e, DType::kI64);
  ASSERT_TRUE(ValidateTensor(coo).ok()) << ValidateTensor(coo);
  absl::StatusOr<Tensor> csr = Convert(coo, Format::kCsr);
  ASSERT_TRUE(csr.ok());
  // Row lengths from the triplets directly.
  std::vector<int64_t> row_ptr(rows + 1, 0);
  for (const Triplet& x : e) ++row_ptr[x.r + 1];
  for (int64_t r = 0; r < rows; ++r) row_ptr[r + 1] += row_ptr[r];
  EXPECT_EQ(test::GetIndices(*csr, "row_ptr"), row_ptr);
  absl::StatusOr<Tensor> t = Transpose(*csr);
  ASSERT_TRUE(t.ok());
  // zenios is symmetric: its transpose is itself.
  ExpectSameTensor(*t, *csr);
  absl::StatusOr<Tensor> back = Convert(*t, Format::kCoo, DType::kI64);
  ASSERT_TRUE(back.ok());
  ExpectSameTensor(*back, coo);
}

}  // namespace
}  // namespace sparsed
