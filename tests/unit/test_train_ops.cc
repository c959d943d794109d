// The CPU backend's training primitives (train_ops.h) against naive
// double-precision references written here, a finite-difference check of the
// SDDMM weight gradient, and the Check* errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/str_cat.h"
#include "sparsed/train_ops.h"

namespace sparsed {
namespace {

using test::GetIndices;
using test::GetValues;
using test::MakeCsr;
using test::MakeCsrFromTriplets;
using test::MakeDense;
using test::MustAllocate;
using test::RandomFloats;
using test::Triplet;
using ::testing::HasSubstr;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

class TrainOpsTest : public ::testing::Test {
 protected:
  // Several threads so that the parallel splits are exercised.
  std::unique_ptr<Backend> cpu_ = MakeCpuBackend(3);
};

void ExpectInvalid(const absl::Status& s, std::string_view needle) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(needle)) << s;
}

Tensor RandomDense(std::vector<int64_t> shape, std::mt19937_64& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return MakeDense(std::move(shape), RandomFloats(n, rng));
}

// A random CSR [m, n]; row 1 (when there is one) is left empty and the last
// row is full when `full_last_row`.
Tensor RandomPattern(int64_t m, int64_t n, double density, DType idx, std::mt19937_64& rng,
                     bool full_last_row = true) {
  std::vector<Triplet> e =
      test::RandomTriplets(m, n, density, rng, full_last_row && m > 2 ? m - 1 : -1);
  std::erase_if(e, [&](const Triplet& t) { return m > 2 && t.r == 1; });
  return MakeCsrFromTriplets(m, n, e, idx);
}

std::vector<double> AsDoubles(const Tensor& t) {
  std::vector<float> v = GetValues(t);
  return {v.begin(), v.end()};
}

// ---------------------------------------------------------------------------
// SDDMM

struct SddmmCase {
  int64_t m, k, n;
  double density;
};

// out[p] for every stored (i, j) of the pattern, by a naive triple loop.
std::vector<double> SddmmReference(const Tensor& a, const Tensor& b, bool ta, bool tb,
                                   const Tensor& pattern, double alpha, double beta,
                                   const std::vector<float>& c, std::vector<double>* magnitude) {
  const std::vector<double> av = AsDoubles(a), bv = AsDoubles(b);
  const int64_t a_cols = a.desc().shape[1], b_cols = b.desc().shape[1];
  const int64_t k = ta ? a.desc().shape[0] : a_cols;
  const std::vector<int64_t> rp = GetIndices(pattern, "row_ptr"),
                             ci = GetIndices(pattern, "col_idx");
  std::vector<double> out;
  magnitude->clear();
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(rp.size()); ++i) {
    for (int64_t p = rp[i]; p < rp[i + 1]; ++p) {
      const int64_t j = ci[p];
      double s = 0, mag = 0;
      for (int64_t q = 0; q < k; ++q) {
        const double x = ta ? av[q * a_cols + i] : av[i * a_cols + q];
        const double y = tb ? bv[j * b_cols + q] : bv[q * b_cols + j];
        s += x * y;
        mag += std::abs(x * y);
      }
      double r = alpha * s;
      mag *= std::abs(alpha);
      if (beta != 0) {
        r += beta * c[p];
        mag += std::abs(beta * c[p]);
      }
      out.push_back(r);
      magnitude->push_back(mag);
    }
  }
  return out;
}

TEST_F(TrainOpsTest, SddmmMatchesNaiveReference) {
  std::mt19937_64 rng(1234);
  const SddmmCase cases[] = {{7, 5, 9, 0.3}, {1, 1, 1, 1.0},    {6, 4, 5, 1.0},
                             {5, 0, 6, 0.5}, {4, 3, 5, 0.0},    {0, 3, 4, 0.5},
                             {3, 4, 0, 0.5}, {33, 17, 21, 0.2}, {40, 64, 3, 0.7}};
  int checked = 0;
  for (const SddmmCase& sc : cases) {
    for (DType idx : {DType::kI32, DType::kI64}) {
      for (int t = 0; t < 4; ++t) {
        const bool ta = t & 1, tb = t & 2;
        for (int scaled = 0; scaled < 2; ++scaled) {
          SCOPED_TRACE(StrCat("m=", sc.m, " k=", sc.k, " n=", sc.n, " idx=", DTypeName(idx),
                              " ta=", ta, " tb=", tb, " scaled=", scaled));
          Tensor a =
              RandomDense(ta ? std::vector<int64_t>{sc.k, sc.m} : std::vector{sc.m, sc.k}, rng);
          Tensor b =
              RandomDense(tb ? std::vector<int64_t>{sc.n, sc.k} : std::vector{sc.k, sc.n}, rng);
          Tensor pattern = RandomPattern(sc.m, sc.n, sc.density, idx, rng);
          const int64_t nnz = pattern.desc().nnz;
          Tensor c = RandomDense({nnz}, rng);
          SddmmArgs args;
          args.a = &a;
          args.b = &b;
          args.transpose_a = ta;
          args.transpose_b = tb;
          args.pattern = &pattern;
          if (scaled) {
            args.alpha = -1.75f;
            args.beta = 0.5f;
            args.c = &c;
          }
          absl::StatusOr<Tensor> got = cpu_->Sddmm(args);
          ASSERT_TRUE(got.ok()) << got.status();
          ASSERT_EQ(got->format(), Format::kDense);
          ASSERT_EQ(got->desc().shape, std::vector<int64_t>{nnz});
          std::vector<double> mag;
          const std::vector<double> want =
              SddmmReference(a, b, ta, tb, pattern, args.alpha, args.beta, GetValues(c), &mag);
          const std::vector<float> g = GetValues(*got);
          ASSERT_EQ(g.size(), want.size());
          for (size_t p = 0; p < want.size(); ++p) {
            EXPECT_NEAR(g[p], want[p], 1e-6 * mag[p] + 1e-30) << "p=" << p;
          }
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 9 * 2 * 4 * 2);
}

TEST_F(TrainOpsTest, SddmmFollowsUnsortedPatternOrder) {
  // Columns within a row in descending order: the output follows the pattern.
  std::mt19937_64 rng(7);
  Tensor a = RandomDense({3, 4}, rng), b = RandomDense({4, 5}, rng);
  for (DType idx : {DType::kI32, DType::kI64}) {
    Tensor pattern = MakeCsr(3, 5, {0, 3, 3, 5}, {4, 2, 0, 3, 1}, {0, 0, 0, 0, 0}, idx);
    SddmmArgs args;
    args.a = &a;
    args.b = &b;
    args.pattern = &pattern;
    absl::StatusOr<Tensor> got = cpu_->Sddmm(args);
    ASSERT_TRUE(got.ok()) << got.status();
    std::vector<double> mag;
    const std::vector<double> want = SddmmReference(a, b, false, false, pattern, 1, 0, {}, &mag);
    const std::vector<float> g = GetValues(*got);
    ASSERT_EQ(g.size(), 5u);
    for (size_t p = 0; p < 5; ++p) EXPECT_NEAR(g[p], want[p], 1e-6 * mag[p]) << p;
  }
}

TEST_F(TrainOpsTest, SddmmBetaZeroIgnoresNaNInC) {
  std::mt19937_64 rng(8);
  Tensor a = RandomDense({2, 3}, rng), b = RandomDense({3, 2}, rng);
  Tensor pattern = MakeCsr(2, 2, {0, 1, 2}, {1, 0}, {1, 1}, DType::kI32);
  Tensor c = MakeDense({2}, {kNaN, kNaN});
  SddmmArgs args;
  args.a = &a;
  args.b = &b;
  args.pattern = &pattern;
  args.c = &c;  // given, but beta = 0 must not read it
  absl::StatusOr<Tensor> got = cpu_->Sddmm(args);
  ASSERT_TRUE(got.ok()) << got.status();
  for (float v : GetValues(*got)) EXPECT_FALSE(std::isnan(v));
}

// L(W) = sum(G ⊙ (X · Wᵀ)) with W [out, in] nonzero only on a CSR pattern:
// dL/dW at each stored position is SDDMM(Gᵀ, X), checked against central
// finite differences of L evaluated in float64.
TEST_F(TrainOpsTest, SddmmWeightGradientMatchesFiniteDifferences) {
  std::mt19937_64 rng(99);
  const int64_t batch = 6, in = 9, out = 7;
  for (DType idx : {DType::kI32, DType::kI64}) {
    Tensor x = RandomDense({batch, in}, rng), g = RandomDense({batch, out}, rng);
    Tensor w = RandomPattern(out, in, 0.4, idx, rng);
    const std::vector<double> xv = AsDoubles(x), gv = AsDoubles(g);
    const std::vector<int64_t> rp = GetIndices(w, "row_ptr"), ci = GetIndices(w, "col_idx");
    std::vector<double> wv = AsDoubles(w);

    auto loss = [&](const std::vector<double>& values) {
      std::vector<double> dense(out * in, 0.0);
      for (int64_t o = 0; o < out; ++o) {
        for (int64_t p = rp[o]; p < rp[o + 1]; ++p) dense[o * in + ci[p]] = values[p];
      }
      double l = 0;
      for (int64_t s = 0; s < batch; ++s) {
        for (int64_t o = 0; o < out; ++o) {
          double y = 0;
          for (int64_t i = 0; i < in; ++i) y += xv[s * in + i] * dense[o * in + i];
          l += gv[s * out + o] * y;
        }
      }
      return l;
    };

    SddmmArgs args;
    args.a = &g;
    args.transpose_a = true;
    args.b = &x;
    args.pattern = &w;
    absl::StatusOr<Tensor> grad = cpu_->Sddmm(args);
    ASSERT_TRUE(grad.ok()) << grad.status();
    const std::vector<float> gw = GetValues(*grad);
    ASSERT_EQ(static_cast<int64_t>(gw.size()), w.desc().nnz);
    ASSERT_GT(gw.size(), 0u);
    const double h = 1e-3;
    for (size_t p = 0; p < gw.size(); ++p) {
      std::vector<double> plus = wv, minus = wv;
      plus[p] += h;
      minus[p] -= h;
      const double fd = (loss(plus) - loss(minus)) / (2 * h);
      EXPECT_NEAR(gw[p], fd, 1e-6 * (1 + std::abs(fd))) << "p=" << p;
    }
  }
}

// ---------------------------------------------------------------------------
// Dense matmul tiles

TEST_F(TrainOpsTest, DenseMatmulMatchesNaiveReference) {
  std::mt19937_64 rng(42);
  struct Case {
    int64_t m, k, n, begin, end;
  };
  const Case cases[] = {{5, 4, 6, 0, -1}, {5, 4, 6, 2, 5},    {5, 4, 6, 3, 3}, {5, 4, 6, 5, 5},
                        {5, 4, 6, 0, 1},  {1, 1, 1, 0, -1},   {6, 0, 3, 1, 4}, {0, 3, 2, 0, -1},
                        {4, 5, 0, 0, -1}, {37, 19, 23, 5, 36}};
  for (const Case& c : cases) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      SCOPED_TRACE(StrCat("m=", c.m, " k=", c.k, " n=", c.n, " rows=[", c.begin, ", ", c.end,
                          ") ta=", ta, " tb=", tb));
      Tensor a = RandomDense(ta ? std::vector<int64_t>{c.k, c.m} : std::vector{c.m, c.k}, rng);
      Tensor b = RandomDense(tb ? std::vector<int64_t>{c.n, c.k} : std::vector{c.k, c.n}, rng);
      DenseMatmulArgs args;
      args.a = &a;
      args.b = &b;
      args.transpose_a = ta;
      args.transpose_b = tb;
      args.row_begin = c.begin;
      args.row_end = c.end;
      absl::StatusOr<Tensor> got = cpu_->DenseMatmul(args);
      ASSERT_TRUE(got.ok()) << got.status();
      const int64_t end = c.end < 0 ? c.m : c.end, rows = end - c.begin;
      ASSERT_EQ(got->desc().shape, (std::vector<int64_t>{rows, c.n}));
      const std::vector<double> av = AsDoubles(a), bv = AsDoubles(b);
      const std::vector<float> g = GetValues(*got);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = c.begin + r;
        for (int64_t j = 0; j < c.n; ++j) {
          double s = 0, mag = 0;
          for (int64_t q = 0; q < c.k; ++q) {
            const double x = ta ? av[q * c.m + i] : av[i * c.k + q];
            const double y = tb ? bv[j * c.k + q] : bv[q * c.n + j];
            s += x * y;
            mag += std::abs(x * y);
          }
          EXPECT_NEAR(g[r * c.n + j], s, 1e-6 * mag + 1e-30) << r << "," << j;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Element-wise ops and reductions

TEST_F(TrainOpsTest, ColumnSumsMatchesNaiveReference) {
  std::mt19937_64 rng(5);
  const std::vector<std::vector<int64_t>> shapes = {{13, 70}, {1, 1}, {200, 3},
                                                    {0, 5},   {4, 0}, {3, 129}};
  for (const auto& shape : shapes) {
    SCOPED_TRACE(StrCat(shape[0], "x", shape[1]));
    Tensor x = RandomDense(shape, rng);
    absl::StatusOr<Tensor> got = cpu_->ColumnSums(x);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->desc().shape, std::vector<int64_t>{shape[1]});
    const std::vector<double> xv = AsDoubles(x);
    const std::vector<float> g = GetValues(*got);
    for (int64_t j = 0; j < shape[1]; ++j) {
      double s = 0, mag = 0;
      for (int64_t r = 0; r < shape[0]; ++r) {
        s += xv[r * shape[1] + j];
        mag += std::abs(xv[r * shape[1] + j]);
      }
      EXPECT_NEAR(g[j], s, 1e-6 * mag + 1e-30) << j;
    }
  }
}

TEST_F(TrainOpsTest, ReluBackwardMasksByOutputSign) {
  std::mt19937_64 rng(6);
  for (const std::vector<int64_t>& shape :
       {std::vector<int64_t>{4, 5}, std::vector<int64_t>{7}, std::vector<int64_t>{0, 3}}) {
    Tensor dy = RandomDense(shape, rng), y = RandomDense(shape, rng);
    std::vector<float> yv = GetValues(y);
    if (yv.size() >= 4) {
      yv[0] = 0.0f;
      yv[1] = -0.0f;
      yv[2] = kNaN;  // not > 0: masked
      yv[3] = 1e-38f;
      test::SetValues(y, yv);
    }
    absl::StatusOr<Tensor> got = cpu_->ReluBackward(dy, y);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->desc().shape, shape);
    const std::vector<float> g = GetValues(*got), d = GetValues(dy);
    for (size_t i = 0; i < yv.size(); ++i) EXPECT_EQ(g[i], yv[i] > 0 ? d[i] : 0.0f) << i;
  }
}

TEST_F(TrainOpsTest, AxpbyMatchesDoubleReference) {
  std::mt19937_64 rng(11);
  Tensor x = RandomDense({6, 7}, rng), y = RandomDense({42}, rng);  // same numel, other shape
  const std::vector<float> xv = GetValues(x), y0 = GetValues(y);
  ASSERT_TRUE(cpu_->Axpby(0.3f, x, -1.25f, y).ok());
  std::vector<float> got = GetValues(y);
  for (size_t i = 0; i < got.size(); ++i) {
    const double want = double{0.3f} * xv[i] + double{-1.25f} * y0[i];
    EXPECT_EQ(got[i], static_cast<float>(want)) << i;
  }
  // b = 0: y is overwritten, its NaNs are not read.
  test::SetValues(y, std::vector<float>(42, kNaN));
  ASSERT_TRUE(cpu_->Axpby(2.0f, x, 0.0f, y).ok());
  got = GetValues(y);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], 2.0f * xv[i]) << i;
  Tensor e1 = MakeDense({0}, {}), e2 = MakeDense({0, 4}, {});
  EXPECT_TRUE(cpu_->Axpby(1.0f, e1, 1.0f, e2).ok());
}

TEST_F(TrainOpsTest, GrowthScoresMarksStoredPositions) {
  std::mt19937_64 rng(21);
  const int64_t m = 9, n = 11;
  for (DType idx : {DType::kI32, DType::kI64}) {
    Tensor pattern = RandomPattern(m, n, 0.3, idx, rng);
    const std::vector<int64_t> rp = GetIndices(pattern, "row_ptr"),
                               ci = GetIndices(pattern, "col_idx");
    for (auto [begin, rows] :
         {std::pair<int64_t, int64_t>{0, m}, {0, 3}, {1, 4}, {6, 3}, {m, 0}, {4, 0}}) {
      SCOPED_TRACE(StrCat(DTypeName(idx), " rows [", begin, ", ", begin + rows, ")"));
      Tensor tile = RandomDense({rows, n}, rng);
      const std::vector<float> before = GetValues(tile);
      ASSERT_TRUE(cpu_->GrowthScores(tile, pattern, begin).ok());
      const std::vector<float> got = GetValues(tile);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<bool> stored(n, false);
        for (int64_t p = rp[begin + r]; p < rp[begin + r + 1]; ++p) stored[ci[p]] = true;
        for (int64_t j = 0; j < n; ++j) {
          const float want = stored[j] ? -1.0f : std::abs(before[r * n + j]);
          EXPECT_EQ(got[r * n + j], want) << r << "," << j;
        }
      }
    }
  }
}

TEST_F(TrainOpsTest, GatherOrZeroPicksOrZeroes) {
  std::mt19937_64 rng(31);
  Tensor src = RandomDense({8}, rng);
  const std::vector<float> s = GetValues(src);
  const std::vector<std::vector<int64_t>> indices = {
      {3, -1, 0, 7, 7, -1}, {}, {-1, -1}, {0, 1, 2, 3, 4, 5, 6, 7}};
  for (const auto& index : indices) {
    absl::StatusOr<Tensor> got = cpu_->GatherOrZero(src, index);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->desc().shape, std::vector<int64_t>{static_cast<int64_t>(index.size())});
    const std::vector<float> g = GetValues(*got);
    for (size_t i = 0; i < index.size(); ++i) {
      EXPECT_EQ(g[i], index[i] < 0 ? 0.0f : s[index[i]]) << i;
    }
  }
  Tensor empty = MakeDense({0}, {});
  absl::StatusOr<Tensor> got = cpu_->GatherOrZero(empty, {-1, -1, -1});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(GetValues(*got), std::vector<float>(3, 0.0f));
}

// ---------------------------------------------------------------------------
// Optimizers: the documented PyTorch formulas in double, state kept in double.

struct RefOptimizer {
  OptimizerHyper h;
  std::vector<double> p, s1, s2;

  void Step(const std::vector<float>& grad, double scale, int64_t step) {
    for (size_t i = 0; i < p.size(); ++i) {
      double g = scale * grad[i];
      if (h.kind == OptimizerKind::kSgd) {
        g += double{h.weight_decay} * p[i];
        if (h.momentum > 0) {
          s1[i] = double{h.momentum} * s1[i] + g;
          p[i] -= double{h.lr} * (h.nesterov ? g + double{h.momentum} * s1[i] : s1[i]);
        } else {
          p[i] -= double{h.lr} * g;
        }
        continue;
      }
      if (h.kind == OptimizerKind::kAdamW) {
        p[i] -= double{h.lr} * double{h.weight_decay} * p[i];
      } else {
        g += double{h.weight_decay} * p[i];
      }
      const double b1 = h.beta1, b2 = h.beta2;
      s1[i] = b1 * s1[i] + (1 - b1) * g;
      s2[i] = b2 * s2[i] + (1 - b2) * g * g;
      const double m_hat = s1[i] / (1 - std::pow(b1, step));
      const double v_hat = s2[i] / (1 - std::pow(b2, step));
      p[i] -= double{h.lr} * m_hat / (std::sqrt(v_hat) + double{h.eps});
    }
  }
};

TEST_F(TrainOpsTest, OptimizersMatchPyTorchFormulas) {
  struct Case {
    const char* name;
    OptimizerHyper h;
    float grad_scale;
  };
  auto sgd = [](float lr, float momentum, bool nesterov, float wd) {
    OptimizerHyper h;
    h.kind = OptimizerKind::kSgd;
    h.lr = lr;
    h.momentum = momentum;
    h.nesterov = nesterov;
    h.weight_decay = wd;
    return h;
  };
  auto adam = [](OptimizerKind kind, float lr, float wd, float b1, float b2, float eps) {
    OptimizerHyper h;
    h.kind = kind;
    h.lr = lr;
    h.weight_decay = wd;
    h.beta1 = b1;
    h.beta2 = b2;
    h.eps = eps;
    return h;
  };
  const Case cases[] = {
      {"sgd", sgd(0.1f, 0, false, 0), 1.0f},
      {"sgd_wd", sgd(0.05f, 0, false, 0.01f), 0.5f},
      {"sgd_momentum", sgd(0.1f, 0.9f, false, 0), 1.0f},
      {"sgd_nesterov_wd", sgd(0.02f, 0.8f, true, 0.1f), 0.25f},
      {"adam", adam(OptimizerKind::kAdam, 0.01f, 0, 0.9f, 0.999f, 1e-8f), 1.0f},
      {"adam_wd", adam(OptimizerKind::kAdam, 0.003f, 0.05f, 0.8f, 0.99f, 1e-6f), 0.125f},
      {"adamw", adam(OptimizerKind::kAdamW, 0.01f, 0.1f, 0.9f, 0.999f, 1e-8f), 1.0f},
      {"adamw_lr0", adam(OptimizerKind::kAdamW, 0.0f, 0.1f, 0.5f, 0.5f, 1e-3f), 1.0f},
  };
  std::mt19937_64 rng(2024);
  const int64_t n = 70001;  // above the parallel grain: several chunks
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor param = RandomDense({n}, rng);
    Tensor s1 = MakeDense({n}, std::vector<float>(n, 0.0f));
    Tensor s2 = MakeDense({n}, std::vector<float>(n, 0.0f));
    const bool needs_state1 = c.h.kind != OptimizerKind::kSgd || c.h.momentum > 0;
    RefOptimizer ref{c.h, AsDoubles(param), std::vector<double>(n, 0.0),
                     std::vector<double>(n, 0.0)};
    for (int64_t step = 1; step <= 6; ++step) {
      Tensor grad = RandomDense({n}, rng);
      OptimizerUpdateArgs args;
      args.hyper = c.h;
      args.step = step;
      args.grad_scale = c.grad_scale;
      args.param = &param;
      args.grad = &grad;
      args.state1 = needs_state1 ? &s1 : nullptr;
      args.state2 = c.h.kind != OptimizerKind::kSgd ? &s2 : nullptr;
      ASSERT_TRUE(cpu_->OptimizerUpdate(args).ok()) << "step " << step;
      ref.Step(GetValues(grad), c.grad_scale, step);
      const std::vector<float> got = GetValues(param);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], ref.p[i], 1e-5 * (1 + std::abs(ref.p[i])))
            << "step " << step << " i " << i;
      }
      if (needs_state1) {
        const std::vector<float> m = GetValues(s1);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(m[i], ref.s1[i], 1e-5 * (1 + std::abs(ref.s1[i]))) << i;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Top-k

TEST_F(TrainOpsTest, TopKMatchesStableSort) {
  std::mt19937_64 rng(77);
  for (int64_t n : {0, 1, 2, 17, 300}) {
    // Few distinct values so that ties are common; both zeros and infinities.
    std::uniform_int_distribution<int> pick(-4, 4);
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(pick(rng)) * 0.5f;
    if (n >= 17) {
      v[3] = -0.0f;
      v[5] = kInf;
      v[9] = -kInf;
      v[16] = 0.0f;
    }
    Tensor scores = MakeDense({n}, v);
    for (TopKOrder order :
         {TopKOrder::kLargest, TopKOrder::kLargestMagnitude, TopKOrder::kSmallestMagnitude}) {
      std::vector<int64_t> want(n);
      std::iota(want.begin(), want.end(), 0);
      std::stable_sort(want.begin(), want.end(), [&](int64_t a, int64_t b) {
        switch (order) {
          case TopKOrder::kLargest:
            return v[a] > v[b];
          case TopKOrder::kLargestMagnitude:
            return std::abs(v[a]) > std::abs(v[b]);
          default:
            return std::abs(v[a]) < std::abs(v[b]);
        }
      });
      for (int64_t k : {int64_t{0}, int64_t{1}, n / 3, n - 1, n}) {
        if (k < 0 || k > n) continue;
        SCOPED_TRACE(StrCat("n=", n, " k=", k, " order=", static_cast<int>(order)));
        absl::StatusOr<TopKResult> got = cpu_->TopK(scores, k, order);
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_EQ(got->indices, std::vector<int64_t>(want.begin(), want.begin() + k));
        ASSERT_EQ(got->values.size(), static_cast<size_t>(k));
        for (int64_t i = 0; i < k; ++i) {
          // Stored values, bit for bit (the sign of zero included).
          EXPECT_EQ(std::signbit(got->values[i]), std::signbit(v[want[i]]));
          EXPECT_EQ(got->values[i], v[want[i]]);
        }
      }
    }
  }
}

TEST_F(TrainOpsTest, TopKRefusesNaN) {
  Tensor scores = MakeDense({5}, {1, 2, 3, kNaN, 0});
  for (int64_t k : {0, 2}) {
    absl::StatusOr<TopKResult> got = cpu_->TopK(scores, k, TopKOrder::kLargest);
    ExpectInvalid(got.status(), "scores[3]");
  }
}

// ---------------------------------------------------------------------------
// Errors: every check names the field.

TEST_F(TrainOpsTest, SddmmErrorsNameTheField) {
  std::mt19937_64 rng(3);
  Tensor a = RandomDense({3, 4}, rng), b = RandomDense({4, 5}, rng);
  Tensor pattern = RandomPattern(3, 5, 0.5, DType::kI32, rng);
  Tensor c = RandomDense({pattern.desc().nnz}, rng);
  Tensor a16 = MustAllocate({Format::kDense, DType::kF16, DType::kI32, {3, 4}, 0});
  Tensor a1d = RandomDense({12}, rng), b_bad = RandomDense({3, 5}, rng);
  Tensor p_bad_shape = RandomPattern(3, 6, 0.5, DType::kI32, rng);
  Tensor c_bad = RandomDense({pattern.desc().nnz + 1}, rng);
  auto base = [&] {
    SddmmArgs args;
    args.a = &a;
    args.b = &b;
    args.pattern = &pattern;
    return args;
  };
  SddmmArgs args = base();
  ASSERT_TRUE(cpu_->Sddmm(args).ok());
  args.a = nullptr;
  ExpectInvalid(cpu_->Sddmm(args).status(), "a is missing");
  args = base();
  args.a = &a16;
  ExpectInvalid(cpu_->Sddmm(args).status(), "a.dtype");
  args.a = &a1d;
  ExpectInvalid(cpu_->Sddmm(args).status(), "a.shape");
  args = base();
  args.b = &b_bad;
  ExpectInvalid(cpu_->Sddmm(args).status(), "inner dimensions");
  args = base();
  args.pattern = &b;
  ExpectInvalid(cpu_->Sddmm(args).status(), "pattern.format");
  args.pattern = &p_bad_shape;
  ExpectInvalid(cpu_->Sddmm(args).status(), "pattern.shape");
  args = base();
  args.beta = 1.0f;
  ExpectInvalid(cpu_->Sddmm(args).status(), "c is missing");
  args.c = &c_bad;
  ExpectInvalid(cpu_->Sddmm(args).status(), "c.shape");
  args = base();
  args.alpha = kNaN;
  ExpectInvalid(cpu_->Sddmm(args).status(), "alpha");
  args = base();
  args.beta = kInf;
  args.c = &c;
  ExpectInvalid(cpu_->Sddmm(args).status(), "beta");
  // Indices out of range are refused before the kernel reads them.
  Tensor p_bad_idx = MakeCsr(3, 5, {0, 1, 1, 2}, {0, 5}, {1, 1}, DType::kI64);
  args = base();
  args.pattern = &p_bad_idx;
  ExpectInvalid(cpu_->Sddmm(args).status(), "pattern");
}

TEST_F(TrainOpsTest, DenseMatmulErrorsNameTheField) {
  std::mt19937_64 rng(4);
  Tensor a = RandomDense({4, 3}, rng), b = RandomDense({3, 2}, rng),
         b_bad = RandomDense({4, 2}, rng);
  Tensor i32 = MustAllocate({Format::kDense, DType::kBF16, DType::kI32, {3, 2}, 0});
  DenseMatmulArgs args;
  args.a = &a;
  args.b = &b;
  args.row_end = 5;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "row_end = 5");
  args.row_end = -2;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "row_end = -2");
  args.row_end = 2;
  args.row_begin = 3;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "row_begin = 3");
  args.row_begin = -1;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "row_begin = -1");
  args.row_begin = 0;
  args.row_end = -1;
  args.b = &b_bad;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "inner dimensions");
  args.b = &i32;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "b.dtype");
  args.b = nullptr;
  ExpectInvalid(cpu_->DenseMatmul(args).status(), "b is missing");
}

TEST_F(TrainOpsTest, OptimizerErrorsNameTheField) {
  std::mt19937_64 rng(5);
  Tensor p = RandomDense({6}, rng), g = RandomDense({6}, rng), s1 = RandomDense({6}, rng),
         s2 = RandomDense({6}, rng), short_g = RandomDense({5}, rng);
  const std::vector<float> p0 = GetValues(p);
  auto base = [&] {
    OptimizerUpdateArgs args;
    args.hyper.kind = OptimizerKind::kAdam;
    args.param = &p;
    args.grad = &g;
    args.state1 = &s1;
    args.state2 = &s2;
    return args;
  };
  struct Bad {
    std::function<void(OptimizerUpdateArgs&)> edit;
    const char* needle;
  };
  const Bad bad[] = {
      {[](auto& a) { a.hyper.lr = -1; }, "optimizer.lr"},
      {[](auto& a) { a.hyper.lr = kInf; }, "optimizer.lr"},
      {[](auto& a) { a.hyper.weight_decay = -0.5f; }, "optimizer.weight_decay"},
      {[](auto& a) { a.hyper.beta1 = 1.0f; }, "optimizer.beta1"},
      {[](auto& a) { a.hyper.beta2 = -0.1f; }, "optimizer.beta2"},
      {[](auto& a) { a.hyper.eps = 0; }, "optimizer.eps"},
      {[](auto& a) { a.hyper.kind = static_cast<OptimizerKind>(7); }, "optimizer.kind"},
      {[](auto& a) { a.hyper.nesterov = true; }, "optimizer.nesterov"},
      {[](auto& a) {
         a.hyper.kind = OptimizerKind::kSgd;
         a.hyper.momentum = 1.0f;
       },
       "optimizer.momentum"},
      {[](auto& a) { a.step = 0; }, "step = 0"},
      {[](auto& a) { a.grad_scale = kNaN; }, "grad_scale"},
      {[&](auto& a) { a.grad = &short_g; }, "grad.shape"},
      {[](auto& a) { a.state1 = nullptr; }, "state1 is missing"},
      {[](auto& a) { a.state2 = nullptr; }, "state2 is missing"},
      {[](auto& a) {
         a.hyper.kind = OptimizerKind::kSgd;
         a.hyper.momentum = 0.5f;
         a.state1 = nullptr;
       },
       "state1 is missing"},
      {[](auto& a) { a.param = nullptr; }, "param is missing"},
  };
  for (const Bad& b : bad) {
    SCOPED_TRACE(b.needle);
    OptimizerUpdateArgs args = base();
    b.edit(args);
    ExpectInvalid(cpu_->OptimizerUpdate(args), b.needle);
    EXPECT_EQ(GetValues(p), p0);  // nothing written on refusal
  }
  // SGD without momentum needs no state.
  OptimizerUpdateArgs args = base();
  args.hyper.kind = OptimizerKind::kSgd;
  args.state1 = args.state2 = nullptr;
  EXPECT_TRUE(cpu_->OptimizerUpdate(args).ok());
}

TEST_F(TrainOpsTest, TopKErrorsNameTheField) {
  Tensor s = MakeDense({4}, {1, 2, 3, 4}), s2d = MakeDense({2, 2}, {1, 2, 3, 4});
  ExpectInvalid(cpu_->TopK(s, -1, TopKOrder::kLargest).status(), "k = -1");
  ExpectInvalid(cpu_->TopK(s, 5, TopKOrder::kLargest).status(), "k = 5");
  ExpectInvalid(cpu_->TopK(s2d, 1, TopKOrder::kLargest).status(), "scores.shape");
  ExpectInvalid(cpu_->TopK(s, 1, static_cast<TopKOrder>(9)).status(), "order = 9");
}

TEST_F(TrainOpsTest, ElementwiseErrorsNameTheField) {
  std::mt19937_64 rng(6);
  Tensor x = RandomDense({4}, rng), y5 = RandomDense({5}, rng), y22 = RandomDense({2, 2}, rng);
  Tensor h = MustAllocate({Format::kDense, DType::kF16, DType::kI32, {4}, 0});
  Tensor csr = MakeCsr(2, 2, {0, 1, 1}, {0}, {1}, DType::kI32);
  ExpectInvalid(cpu_->Axpby(1, x, 1, y5), "x.shape");
  ExpectInvalid(cpu_->Axpby(1, x, 1, h), "y.dtype");
  ExpectInvalid(cpu_->Axpby(1, csr, 1, y22), "x.format");
  ExpectInvalid(cpu_->ReluBackward(x, y22).status(), "dy.shape");
  ExpectInvalid(cpu_->ReluBackward(h, x).status(), "dy.dtype");
  ExpectInvalid(cpu_->ColumnSums(x).status(), "x.shape");
  ExpectInvalid(cpu_->ColumnSums(csr).status(), "x.format");
  ExpectInvalid(cpu_->GatherOrZero(x, {0, 4}).status(), "index[1] = 4");
  ExpectInvalid(cpu_->GatherOrZero(x, {-2}).status(), "index[0] = -2");
  ExpectInvalid(cpu_->GatherOrZero(y22, {0}).status(), "src.shape");
}

TEST_F(TrainOpsTest, GrowthScoresErrorsNameTheField) {
  std::mt19937_64 rng(8);
  Tensor pattern = RandomPattern(5, 4, 0.5, DType::kI32, rng);
  Tensor tile = RandomDense({2, 4}, rng), wide = RandomDense({2, 5}, rng);
  ExpectInvalid(cpu_->GrowthScores(wide, pattern, 0), "tile.shape");
  ExpectInvalid(cpu_->GrowthScores(tile, pattern, 4), "row_begin = 4");
  ExpectInvalid(cpu_->GrowthScores(tile, pattern, -1), "row_begin = -1");
  ExpectInvalid(cpu_->GrowthScores(tile, tile, 0), "pattern.format");
  // Broken indices in the rows the tile covers are refused, not read.
  Tensor bad_ptr = MakeCsr(3, 4, {0, 2, 1, 2}, {0, 1}, {1, 1}, DType::kI64);
  ExpectInvalid(cpu_->GrowthScores(tile, bad_ptr, 1), "pattern.row_ptr[2]");
  Tensor bad_col = MakeCsr(3, 4, {0, 1, 2, 2}, {0, 9}, {1, 1}, DType::kI32);
  ExpectInvalid(cpu_->GrowthScores(tile, bad_col, 0), "pattern.col_idx[1] = 9");
}

}  // namespace
}  // namespace sparsed
