// CheckSpmm and the CPU SpMM backend against a naive dense reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>

#include "format_test_util.h"
#include "kernels_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/cast.h"
#include "sparsed/spmm.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using test::Triplet;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Reference: naive dense triple loop in double on densified operands.

struct Problem {
  int64_t m = 0, k = 0, n = 0;
  bool a_sparse = true;
  Format format = Format::kCsr;
  DType idx = DType::kI32;
  bool ta = false, tb = false;
  // Stored (not op-applied) operands.
  Tensor a, b, c, bias;
  float alpha = 1, beta = 0;
  bool use_bias = false, relu = false;
  std::optional<float> clamp;
};

// Row-major doubles of an f32 tensor of any format, decoded by the naive
// decoder of format_test_util.h.
std::vector<double> DensifyAny(const Tensor& t) {
  const test::Matrix x = test::Decode(t);
  std::vector<double> d(x.bits.size());
  for (size_t i = 0; i < d.size(); ++i) {
    float f;
    std::memcpy(&f, &x.bits[i], 4);
    d[i] = f;
  }
  return d;
}

struct Result {
  std::vector<double> value, magnitude;  // magnitude: the same sum of |terms|
};

Result Reference(const Problem& p) {
  const std::vector<double> a = DensifyAny(p.a), b = DensifyAny(p.b);
  const int64_t a_cols = p.a.desc().cols(), b_cols = p.b.desc().cols();
  auto op_a = [&](int64_t i, int64_t q) { return p.ta ? a[q * a_cols + i] : a[i * a_cols + q]; };
  auto op_b = [&](int64_t q, int64_t j) { return p.tb ? b[j * b_cols + q] : b[q * b_cols + j]; };
  Result r;
  r.value.assign(p.m * p.n, 0.0);
  r.magnitude.assign(p.m * p.n, 0.0);
  const std::vector<float> c = p.beta != 0 ? test::GetValues(p.c) : std::vector<float>();
  const std::vector<float> bias = p.use_bias ? test::GetValues(p.bias) : std::vector<float>();
  for (int64_t i = 0; i < p.m; ++i) {
    for (int64_t j = 0; j < p.n; ++j) {
      double s = 0, mag = 0;
      for (int64_t q = 0; q < p.k; ++q) {
        s += op_a(i, q) * op_b(q, j);
        mag += std::abs(op_a(i, q) * op_b(q, j));
      }
      double x = p.alpha * s;
      mag *= std::abs(p.alpha);
      if (p.beta != 0) {
        x += double{p.beta} * c[i * p.n + j];
        mag += std::abs(double{p.beta} * c[i * p.n + j]);
      }
      if (p.use_bias) {
        x += bias[j];
        mag += std::abs(bias[j]);
      }
      if (p.relu) x = std::max(x, 0.0);
      if (p.clamp) x = std::min(x, double{*p.clamp});
      r.value[i * p.n + j] = x;
      r.magnitude[i * p.n + j] = mag;
    }
  }
  return r;
}

SpmmArgs ArgsOf(const Problem& p) {
  SpmmArgs args;
  args.a = &p.a;
  args.b = &p.b;
  args.transpose_a = p.ta;
  args.transpose_b = p.tb;
  args.alpha = p.alpha;
  args.beta = p.beta;
  args.c = p.beta != 0 ? &p.c : nullptr;
  args.epilogue.bias = p.use_bias ? &p.bias : nullptr;
  args.epilogue.relu = p.relu;
  args.epilogue.clamp_max = p.clamp;
  return args;
}

// Runs with 1 and 4 threads, checks bit-identical results and the reference.
void RunAndCheck(const Problem& p) {
  std::vector<float> first;
  for (int threads : {1, 4}) {
    std::unique_ptr<Backend> cpu = MakeCpuBackend(threads);
    absl::StatusOr<Tensor> out = cpu->Spmm(ArgsOf(p));
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->format(), Format::kDense);
    ASSERT_EQ(out->desc().shape, (std::vector<int64_t>{p.m, p.n}));
    std::vector<float> got = test::GetValues(*out);
    if (threads == 1) {
      const Result want = Reference(p);
      for (size_t i = 0; i < got.size(); ++i) {
        const double tol = 1e-5 * (want.magnitude[i] + 1e-30) + 1e-30;
        ASSERT_NEAR(got[i], want.value[i], std::max(tol, 1e-6 * std::abs(want.value[i])))
            << "element " << i << " (row " << i / p.n << ", col " << i % p.n << ")";
      }
      first = got;
    } else {
      ASSERT_EQ(got.size(), first.size());
      ASSERT_TRUE(got.empty() ||
                  std::memcmp(got.data(), first.data(), got.size() * sizeof(float)) == 0)
          << "threads=4 differs from threads=1";
    }
  }
}

// The sparse operand's stored shape, given op and (m, k, n).
std::pair<int64_t, int64_t> StoredShape(bool sparse_is_a, bool transposed, int64_t m, int64_t k,
                                        int64_t n) {
  const int64_t r = sparse_is_a ? m : k, c = sparse_is_a ? k : n;
  return transposed ? std::make_pair(c, r) : std::make_pair(r, c);
}

struct Shape {
  std::string name;
  int64_t m, k, n;
  double density;
  int64_t long_row = -1;  // a full row of the stored sparse operand
};

std::vector<Shape> Shapes() {
  return {
      {"random", 13, 17, 9, 0.2},
      {"random_dense", 8, 6, 11, 0.9},
      {"nnz0", 5, 7, 3, 0.0},
      {"m0", 0, 5, 4, 0.5},
      {"k0", 4, 0, 5, 0.5},
      {"n0", 4, 5, 0, 0.5},
      {"all0", 0, 0, 0, 0.5},
      {"row_vector", 1, 40, 3, 0.3},
      {"col_result", 40, 6, 1, 0.3},
      {"inner1", 9, 1, 7, 0.5},
      {"long_row", 64, 50, 5, 0.01, 33},
      {"empty_rows_sparse", 50, 30, 4, 0.01},
  };
}

enum class Epi { kNone, kBias, kRelu, kClamp, kAllThree, kAlphaBetaC, kEverything };

std::string EpiName(Epi e) {
  switch (e) {
    case Epi::kNone:
      return "none";
    case Epi::kBias:
      return "bias";
    case Epi::kRelu:
      return "relu";
    case Epi::kClamp:
      return "clamp";
    case Epi::kAllThree:
      return "bias_relu_clamp";
    case Epi::kAlphaBetaC:
      return "alpha_beta_c";
    case Epi::kEverything:
      return "everything";
  }
  return "?";
}

// BSR operands use 3 x 2 blocks (edge blocks in most shapes).
constexpr int64_t kBlockRows = 3, kBlockCols = 2;

// An n:m that fits `cols` (m divides it; 2:4 preferred), or nullopt.
std::optional<std::pair<int, int>> NmFor(int64_t cols) {
  if (cols % 4 == 0) return std::make_pair(2, 4);
  for (int m = 2; m <= 32; ++m) {
    if (cols % m == 0) return std::make_pair(std::max(1, m / 2), m);
  }
  return std::nullopt;
}

// The sparse operand [rows, cols] in format f with random f32 values in
// [-1, 1]; an empty tensor when N:M cannot hold a matrix of that width.
Tensor MakeSparseOperand(Format f, int64_t rows, int64_t cols, double density, int64_t long_row,
                         DType idx, std::mt19937_64& rng) {
  if (f == Format::kCoo || f == Format::kCsr) {
    return test::MakeSparse(f, rows, cols, test::RandomTriplets(rows, cols, density, rng, long_row),
                            idx);
  }
  test::FormatParams p{idx, kBlockRows, kBlockCols};
  test::Matrix x;
  if (f == Format::kNm) {
    const std::optional<std::pair<int, int>> nm = NmFor(cols);
    if (!nm) return Tensor();
    p.nm_n = nm->first;
    p.nm_m = nm->second;
    x = test::RandomMatrix(rows, cols, std::max(density, 0.0), DType::kF32, rng, p.nm_n, p.nm_m);
  } else {
    x = test::RandomMatrix(rows, cols, density, DType::kF32, rng);
    if (long_row >= 0 && long_row < rows) {
      for (int64_t c = 0; c < cols; ++c) x.bits[long_row * cols + c] = 1;  // non-zero for now
    }
  }
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  for (uint32_t& b : x.bits) {
    if (b == 0) continue;
    float v = val(rng);
    if (v == 0.0f) v = 0.5f;
    std::memcpy(&b, &v, 4);
  }
  return test::Encode(x, f, p);
}

Problem MakeProblem(const Shape& s, bool a_sparse, Format f, DType idx, bool ta, bool tb, Epi epi,
                    std::mt19937_64& rng, bool bias_2d) {
  Problem p;
  p.m = s.m;
  p.k = s.k;
  p.n = s.n;
  p.a_sparse = a_sparse;
  p.format = f;
  p.idx = idx;
  p.ta = ta;
  p.tb = tb;
  const bool sparse_t = a_sparse ? ta : tb;
  auto [sr, sc] = StoredShape(a_sparse, sparse_t, s.m, s.k, s.n);
  Tensor sparse =
      MakeSparseOperand(f, sr, sc, s.density, s.long_row < sr ? s.long_row : -1, idx, rng);
  // The dense operand's stored shape.
  const bool dense_t = a_sparse ? tb : ta;
  int64_t dr = a_sparse ? s.k : s.m, dc = a_sparse ? s.n : s.k;
  if (dense_t) std::swap(dr, dc);
  Tensor dense = test::MakeDense({dr, dc}, test::RandomFloats(dr * dc, rng));
  p.a = a_sparse ? std::move(sparse) : std::move(dense);
  p.b = a_sparse ? std::move(dense) : std::move(sparse);
  const bool bias = epi == Epi::kBias || epi == Epi::kAllThree || epi == Epi::kEverything;
  if (bias) {
    p.use_bias = true;
    p.bias = bias_2d ? test::MakeDense({1, s.n}, test::RandomFloats(s.n, rng))
                     : test::MakeDense({s.n}, test::RandomFloats(s.n, rng));
  }
  p.relu = epi == Epi::kRelu || epi == Epi::kAllThree || epi == Epi::kEverything;
  if (epi == Epi::kClamp || epi == Epi::kAllThree || epi == Epi::kEverything) p.clamp = 0.25f;
  if (epi == Epi::kAlphaBetaC || epi == Epi::kEverything) {
    p.alpha = -1.5f;
    p.beta = 0.75f;
    p.c = test::MakeDense({s.m, s.n}, test::RandomFloats(s.m * s.n, rng));
  }
  return p;
}

using SpmmParam = std::tuple<bool, Format, DType, bool, bool, Epi>;

class CpuSpmmTest : public ::testing::TestWithParam<SpmmParam> {};

TEST_P(CpuSpmmTest, MatchesNaiveReference) {
  const auto [a_sparse, format, idx, ta, tb, epi] = GetParam();
  std::mt19937_64 rng(99);
  int variant = 0;
  for (const Shape& s : Shapes()) {
    SCOPED_TRACE(s.name);
    Problem p = MakeProblem(s, a_sparse, format, idx, ta, tb, epi, rng, (variant++ % 2) == 1);
    if (p.a.specs().empty() || p.b.specs().empty()) continue;  // no n:m fits this width
    RunAndCheck(p);
  }
}

std::string SpmmName(const ::testing::TestParamInfo<SpmmParam>& info) {
  const auto& [a_sparse, format, idx, ta, tb, epi] = info.param;
  return StrCat(a_sparse ? "SparseA_" : "SparseB_", FormatName(format), "_", DTypeName(idx),
                ta ? "_ta" : "", tb ? "_tb" : "", "_", EpiName(epi));
}

INSTANTIATE_TEST_SUITE_P(
    All, CpuSpmmTest,
    ::testing::Combine(::testing::Bool(),
                       ::testing::Values(Format::kCoo, Format::kCsr, Format::kCsc, Format::kBsr,
                                         Format::kNm),
                       ::testing::Values(DType::kI32, DType::kI64), ::testing::Bool(),
                       ::testing::Bool(),
                       ::testing::Values(Epi::kNone, Epi::kBias, Epi::kRelu, Epi::kClamp,
                                         Epi::kAllThree, Epi::kAlphaBetaC, Epi::kEverything)),
    SpmmName);

// Larger square blocks and other n:m, and 16-bit values: the backend's result
// against the reference on exact f32 copies of the 16-bit operands.
TEST(CpuSpmm, NewFormatsWithLargeBlocksAndSixteenBitValues) {
  std::mt19937_64 rng(21);
  struct Variant {
    Format format;
    test::FormatParams params;
  };
  const std::vector<Variant> variants = {{Format::kBsr, {DType::kI32, 16, 16}},
                                         {Format::kBsr, {DType::kI64, 32, 32}},
                                         {Format::kBsr, {DType::kI32, 64, 64}},
                                         {Format::kBsr, {DType::kI32, 128, 128}},
                                         {Format::kBsr, {DType::kI64, 5, 3}},
                                         {Format::kBsr, {DType::kI32, 1, 1}},
                                         {Format::kNm, {DType::kI32, 0, 0, 1, 4}},
                                         {Format::kNm, {DType::kI32, 0, 0, 2, 8}},
                                         {Format::kNm, {DType::kI32, 0, 0, 4, 16}},
                                         {Format::kNm, {DType::kI32, 0, 0, 8, 32}},
                                         {Format::kCsc, {DType::kI64}}};
  for (const Variant& v : variants) {
    for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (bool a_sparse : {true, false}) {
        for (bool ts : {false, true}) {
          SCOPED_TRACE(StrCat(FormatName(v.format), " ", v.params.block_rows, "x",
                              v.params.block_cols, " ", v.params.nm_n, ":", v.params.nm_m, " ",
                              DTypeName(dtype), a_sparse ? " sparse a" : " sparse b",
                              ts ? " transposed" : ""));
          // Stored sparse operand 70 x 96, dense side width 5.
          const int64_t sr = 70, sc = 96, w = 5;
          test::Matrix x =
              test::RandomMatrix(sr, sc, 0.3, DType::kF32, rng, v.params.nm_n, v.params.nm_m);
          std::uniform_real_distribution<float> val(-1.0f, 1.0f);
          for (uint32_t& b : x.bits) {
            if (b == 0) continue;
            const float f = val(rng) + 2.0f;  // never 0
            std::memcpy(&b, &f, 4);
          }
          Problem p;
          p.a_sparse = a_sparse;
          p.format = v.format;
          p.ta = a_sparse && ts;
          p.tb = !a_sparse && ts;
          const int64_t op_r = ts ? sc : sr, op_c = ts ? sr : sc;  // op(sparse)
          Tensor sparse = test::Encode(x, v.format, v.params);
          Tensor dense = a_sparse ? test::MakeDense({op_c, w}, test::RandomFloats(op_c * w, rng))
                                  : test::MakeDense({w, op_r}, test::RandomFloats(w * op_r, rng));
          p.m = a_sparse ? op_r : w;
          p.k = a_sparse ? op_c : op_r;
          p.n = a_sparse ? w : op_c;
          p.alpha = 0.5f;
          p.relu = true;
          // The backend gets 16-bit operands; the reference their exact f32 values.
          absl::StatusOr<Tensor> s16 = CastValues(sparse, dtype);
          absl::StatusOr<Tensor> d16 = CastValues(dense, dtype);
          ASSERT_TRUE(s16.ok() && d16.ok());
          absl::StatusOr<Tensor> s32 = CastValues(*s16, DType::kF32);
          absl::StatusOr<Tensor> d32 = CastValues(*d16, DType::kF32);
          ASSERT_TRUE(s32.ok() && d32.ok());
          p.a = a_sparse ? std::move(*s32) : std::move(*d32);
          p.b = a_sparse ? std::move(*d32) : std::move(*s32);
          const Result want = Reference(p);
          SpmmArgs args = ArgsOf(p);
          args.a = a_sparse ? &*s16 : &*d16;
          args.b = a_sparse ? &*d16 : &*s16;
          absl::StatusOr<Tensor> out = MakeCpuBackend(3)->Spmm(args);
          ASSERT_TRUE(out.ok()) << out.status();
          ASSERT_EQ(out->desc().shape, (std::vector<int64_t>{p.m, p.n}));
          const std::vector<float> got = test::GetValues(*out);
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_NEAR(got[i], want.value[i], 1e-5 * want.magnitude[i] + 1e-6) << i;
          }
        }
      }
    }
  }
}

TEST(CpuSpmm, BetaZeroIgnoresNanC) {
  std::mt19937_64 rng(1);
  Problem p = MakeProblem({"r", 6, 5, 4, 0.5}, true, Format::kCsr, DType::kI32, false, false,
                          Epi::kNone, rng, false);
  Tensor nan_c =
      test::MakeDense({6, 4}, std::vector<float>(24, std::numeric_limits<float>::quiet_NaN()));
  SpmmArgs args = ArgsOf(p);
  args.c = &nan_c;
  args.beta = 0.0f;
  absl::StatusOr<Tensor> out = MakeCpuBackend(2)->Spmm(args);
  ASSERT_TRUE(out.ok()) << out.status();
  for (float x : test::GetValues(*out)) EXPECT_FALSE(std::isnan(x));
  RunAndCheck(p);
}

TEST(CpuSpmm, KZeroGivesBetaCPlusEpilogue) {
  // With k = 0 the product is empty: C = relu(beta * C + bias), checked by hand.
  Tensor a = test::MakeCsr(2, 0, {0, 0, 0}, {}, {}, DType::kI32);
  Tensor b = test::MakeDense({0, 3}, {});
  Tensor c = test::MakeDense({2, 3}, {1, -2, 3, -4, 5, -6});
  Tensor bias = test::MakeDense({3}, {0.5f, 0.5f, 0.5f});
  SpmmArgs args;
  args.a = &a;
  args.b = &b;
  args.beta = 2.0f;
  args.c = &c;
  args.epilogue.bias = &bias;
  args.epilogue.relu = true;
  absl::StatusOr<Tensor> out = MakeCpuBackend(1)->Spmm(args);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(test::GetValues(*out), (std::vector<float>{2.5f, 0, 6.5f, 0, 10.5f, 0}));
}

// A real matrix with a few dense rows and columns (the load-balancing worst
// case), against a reference computed straight from the file's triplets.
TEST(CpuSpmm, ArrowMatrixBothSides) {
  int64_t rows = 0, cols = 0;
  std::vector<Triplet> e = test::ReadMtx(SPARSED_TEST_DATA "/arrow.mtx", &rows, &cols);
  std::sort(e.begin(), e.end(), [](const Triplet& x, const Triplet& y) {
    return std::make_pair(x.r, x.c) < std::make_pair(y.r, y.c);
  });
  e.erase(std::unique(e.begin(), e.end(),
                      [](const Triplet& x, const Triplet& y) { return x.r == y.r && x.c == y.c; }),
          e.end());
  Tensor s = test::MakeCsrFromTriplets(rows, cols, e, DType::kI32);
  std::mt19937_64 rng(8);
  const int64_t n = 3;
  Tensor d = test::MakeDense({cols, n}, test::RandomFloats(cols * n, rng));
  const std::vector<float> dv = test::GetValues(d);
  // Values in arrow.mtx are integers up to ~1e5: scale the tolerance by the
  // sum of |terms| per output.
  std::vector<double> want(rows * n, 0.0), mag(rows * n, 0.0);
  for (const Triplet& x : e) {
    for (int64_t j = 0; j < n; ++j) {
      want[x.r * n + j] += double{x.v} * dv[x.c * n + j];
      mag[x.r * n + j] += std::abs(double{x.v} * dv[x.c * n + j]);
    }
  }
  std::vector<float> first;
  for (int threads : {1, 4}) {
    SpmmArgs args;
    args.a = &s;
    args.b = &d;
    absl::StatusOr<Tensor> out = MakeCpuBackend(threads)->Spmm(args);
    ASSERT_TRUE(out.ok()) << out.status();
    std::vector<float> got = test::GetValues(*out);
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 1e-5 * mag[i] + 1e-6) << i;
    }
    if (threads == 1) first = got;
    EXPECT_EQ(got, first);
  }
  // Dense on the left: d^T [n, rows] * s^T (s transposed through the flag),
  // equal to (s * d)^T.
  Tensor dt = test::MakeDense({cols, n}, dv);
  SpmmArgs args;
  args.a = &dt;
  args.transpose_a = true;
  args.b = &s;
  args.transpose_b = true;
  absl::StatusOr<Tensor> out = MakeCpuBackend(4)->Spmm(args);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->desc().shape, (std::vector<int64_t>{n, rows}));
  std::vector<float> got = test::GetValues(*out);
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      ASSERT_NEAR(got[j * rows + i], want[i * n + j], 1e-5 * mag[i * n + j] + 1e-6);
    }
  }
}

// ---------------------------------------------------------------------------
// Argument checks.

class CheckSpmmTest : public ::testing::Test {
 protected:
  Tensor a_ = test::MakeCsr(4, 5, {0, 1, 1, 2, 2}, {0, 4}, {1, 2}, DType::kI32);  // [4, 5]
  Tensor b_ = test::MakeDense({5, 3}, std::vector<float>(15, 1.0f));              // [5, 3]
  SpmmArgs Args() {
    SpmmArgs args;
    args.a = &a_;
    args.b = &b_;
    return args;
  }
  static void ExpectInvalid(const SpmmArgs& args, const std::string& substr) {
    absl::StatusOr<std::vector<int64_t>> s = CheckSpmm(args);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
    EXPECT_THAT(std::string(s.status().message()), HasSubstr(substr));
    // The backend refuses the same arguments.
    absl::StatusOr<Tensor> out = MakeCpuBackend(1)->Spmm(args);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
    EXPECT_THAT(std::string(out.status().message()), HasSubstr(substr));
  }
};

TEST_F(CheckSpmmTest, ReturnsOutputShape) {
  absl::StatusOr<std::vector<int64_t>> s = CheckSpmm(Args());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, (std::vector<int64_t>{4, 3}));
  Tensor bt = test::MakeDense({7, 5}, std::vector<float>(35, 1.0f));
  SpmmArgs args = Args();
  args.b = &bt;
  args.transpose_b = true;
  EXPECT_EQ(*CheckSpmm(args), (std::vector<int64_t>{4, 7}));
  Tensor at = test::MakeDense({6, 4}, std::vector<float>(24, 1.0f));  // dense a^T: [4, 6]
  Tensor bs = test::MakeCoo(2, 6, {{1, 5, 1}}, DType::kI64);          // sparse b^T: [6, 2]
  args = SpmmArgs{};
  args.a = &at;
  args.transpose_a = true;
  args.b = &bs;
  args.transpose_b = true;
  EXPECT_EQ(*CheckSpmm(args), (std::vector<int64_t>{4, 2}));
}

TEST_F(CheckSpmmTest, MissingOperands) {
  SpmmArgs args = Args();
  args.a = nullptr;
  ExpectInvalid(args, "a is missing");
  args = Args();
  args.b = nullptr;
  ExpectInvalid(args, "b is missing");
}

TEST_F(CheckSpmmTest, ExactlyOneSparse) {
  Tensor dense_a = test::MakeDense({4, 5}, std::vector<float>(20, 1.0f));
  SpmmArgs args = Args();
  args.a = &dense_a;
  ExpectInvalid(args, "a is dense and b is dense: exactly one of a, b must be sparse");
  Tensor sparse_b = test::MakeCoo(5, 3, {}, DType::kI32);
  args = Args();
  args.b = &sparse_b;
  ExpectInvalid(args, "a is csr and b is coo: exactly one of a, b must be sparse");
}

TEST_F(CheckSpmmTest, ShapeMismatch) {
  Tensor b = test::MakeDense({6, 3}, std::vector<float>(18, 1.0f));
  SpmmArgs args = Args();
  args.b = &b;
  ExpectInvalid(args,
                "shape mismatch: op(a) is [4, 5] but op(b) is [6, 3] (inner dimensions 5 != 6)");
  args = Args();
  args.transpose_a = true;  // op(a) = [5, 4] against [5, 3]
  ExpectInvalid(args, "op(a) is [5, 4] but op(b) is [5, 3] (inner dimensions 4 != 5)");
  Tensor vec = test::MakeDense({5}, std::vector<float>(5, 1.0f));
  args = Args();
  args.b = &vec;
  ExpectInvalid(args, "b.shape = [5] must be 2-D");
}

TEST_F(CheckSpmmTest, ScalarsMustBeFinite) {
  SpmmArgs args = Args();
  args.alpha = std::numeric_limits<float>::quiet_NaN();
  ExpectInvalid(args, "alpha = nan is not finite");
  args = Args();
  args.beta = std::numeric_limits<float>::infinity();
  ExpectInvalid(args, "beta = inf is not finite");
  args = Args();
  args.epilogue.clamp_max = -std::numeric_limits<float>::infinity();
  ExpectInvalid(args, "epilogue.clamp_max = -inf is not finite");
}

TEST_F(CheckSpmmTest, BiasShape) {
  Tensor short_bias = test::MakeDense({2}, {1, 2});
  SpmmArgs args = Args();
  args.epilogue.bias = &short_bias;
  ExpectInvalid(args, "epilogue.bias.shape = [2] must be [3] or [1, 3]");
  Tensor column = test::MakeDense({3, 1}, {1, 2, 3});
  args.epilogue.bias = &column;
  ExpectInvalid(args, "epilogue.bias.shape = [3, 1]");
  Tensor sparse = test::MakeCsr(1, 3, {0, 0}, {}, {}, DType::kI32);
  args.epilogue.bias = &sparse;
  ExpectInvalid(args, "epilogue.bias.format = csr must be dense");
  Tensor ok_1d = test::MakeDense({3}, {1, 2, 3});
  Tensor ok_2d = test::MakeDense({1, 3}, {1, 2, 3});
  args.epilogue.bias = &ok_1d;
  EXPECT_TRUE(CheckSpmm(args).ok());
  args.epilogue.bias = &ok_2d;
  EXPECT_TRUE(CheckSpmm(args).ok());
}

TEST_F(CheckSpmmTest, CRequiredWhenBetaNonZero) {
  SpmmArgs args = Args();
  args.beta = 0.5f;
  ExpectInvalid(args, "c is missing but beta = 0.5 is not 0");
  Tensor wrong = test::MakeDense({3, 4}, std::vector<float>(12, 0.0f));
  args.c = &wrong;
  ExpectInvalid(args, "c.shape = [3, 4] must be the output shape [4, 3]");
  Tensor flat = test::MakeDense({12}, std::vector<float>(12, 0.0f));
  args.c = &flat;
  ExpectInvalid(args, "c.shape = [12]");
  Tensor sparse_c = test::MakeCoo(4, 3, {}, DType::kI32);
  args.c = &sparse_c;
  ExpectInvalid(args, "c.format = coo must be dense");
  // With beta == 0, c is not looked at at all.
  args.beta = 0.0f;
  args.c = &wrong;
  EXPECT_TRUE(CheckSpmm(args).ok());
}

TEST_F(CheckSpmmTest, AcceptsEverySparseFormat) {
  // dense [3, 4] times each sparse [4, 8], and the transposed forms.
  std::mt19937_64 rng(1);
  Tensor dense = test::MakeDense({3, 4}, std::vector<float>(12, 1.0f));
  Tensor dense_t = test::MakeDense({8, 5}, std::vector<float>(40, 1.0f));
  for (Format f : {Format::kCsc, Format::kBsr, Format::kNm}) {
    SCOPED_TRACE(FormatName(f));
    const Tensor b = test::Encode(test::RandomMatrix(4, 8, 0.3, DType::kF32, rng, 2, 4), f,
                                  {DType::kI32, 2, 3, 2, 4});
    SpmmArgs args;
    args.a = &dense;
    args.b = &b;
    absl::StatusOr<std::vector<int64_t>> s = CheckSpmm(args);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(*s, (std::vector<int64_t>{3, 8}));
    // Sparse on the left: op(a) = aᵀ [8, 4] cannot meet op(b) = bᵀ [5, 8].
    args.a = &b;
    args.b = &dense_t;
    args.transpose_a = true;
    args.transpose_b = true;
    EXPECT_EQ(CheckSpmm(args).status().code(), absl::StatusCode::kInvalidArgument);
    args.transpose_b = false;
    args.transpose_a = false;  // a [4, 8] times b [8, 5]
    s = CheckSpmm(args);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(*s, (std::vector<int64_t>{4, 5}));
  }
}

TEST_F(CheckSpmmTest, BackendRejectsInvalidContentOfNewFormats) {
  // BSR [4, 6] with 2 x 3 blocks: block column 2 does not exist.
  TensorDesc d{Format::kBsr, DType::kF32, DType::kI32, {4, 6}, 1};
  d.block_rows = 2;
  d.block_cols = 3;
  Tensor bsr = test::MustAllocate(d);
  test::SetIndices(bsr, "block_row_ptr", {0, 1, 1});
  test::SetIndices(bsr, "block_col_idx", {2});
  test::SetValues(bsr, std::vector<float>(6, 1.0f));
  Tensor dense = test::MakeDense({3, 4}, std::vector<float>(12, 1.0f));
  SpmmArgs args;
  args.a = &dense;
  args.b = &bsr;
  EXPECT_TRUE(CheckSpmm(args).ok());
  absl::StatusOr<Tensor> out = MakeCpuBackend(1)->Spmm(args);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("b.block_col_idx[0] = 2 is outside [0, block_col_count = 2)"));
}

TEST_F(CheckSpmmTest, BackendRejectsInvalidSparseContent) {
  Tensor bad = test::MakeCsr(4, 5, {0, 1, 1, 2, 2}, {0, 9}, {1, 2}, DType::kI32);
  SpmmArgs args = Args();
  args.a = &bad;
  EXPECT_TRUE(CheckSpmm(args).ok());  // descriptions only
  absl::StatusOr<Tensor> out = MakeCpuBackend(1)->Spmm(args);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("a.col_idx[1] = 9"));
}

TEST(CpuBackend, Identity) {
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  EXPECT_EQ(cpu->name(), "cpu");
  EXPECT_EQ(cpu->device(), Device::Cpu());
}

}  // namespace
}  // namespace sparsed
