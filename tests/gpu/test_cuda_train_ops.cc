// The CUDA backend's training primitives (train_ops.h) against two
// references: naive loops written here from the formulas of train_ops.h (in
// double), and the CPU backend. Float results must lie within the error bound
// of f32 accumulation, (k + 4) · 2^-23 · Σ|terms|, of the double reference;
// selections (top-k), masks and gathers must match exactly. The CUDA backend
// poisons its outputs with NaN, so an element a kernel leaves unwritten fails
// the comparison. Skipped where no GPU is present.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "../unit/kernels_test_util.h"
#include "gpu_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/gpu_info.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using ::testing::HasSubstr;

using gpu_test::HaveGpu;

using gpu_test::ToDevice;

std::vector<float> HostValues(const Tensor& t) {
  absl::StatusOr<Tensor> h = t.CopyTo(Device::Cpu());
  EXPECT_TRUE(h.ok()) << h.status();
  return h.ok() ? test::GetValues(*h) : std::vector<float>();
}

std::vector<float> RandomValues(int64_t count, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = u(rng);
  return v;
}

Tensor Dense(std::vector<int64_t> shape, const std::vector<float>& v) {
  return test::MakeDense(std::move(shape), v);
}

// A random CSR pattern [m, n]: about a fifth of the rows empty, the others
// of the given density (columns ascending).
struct Pattern {
  int64_t m = 0, n = 0;
  std::vector<int64_t> row_ptr{0}, col_idx;
  Tensor host;
};
Pattern RandomPattern(int64_t m, int64_t n, double density, DType idx, std::mt19937_64& rng) {
  Pattern p;
  p.m = m;
  p.n = n;
  std::bernoulli_distribution empty(0.2), keep(density);
  for (int64_t r = 0; r < m; ++r) {
    if (!empty(rng)) {
      for (int64_t c = 0; c < n; ++c) {
        if (keep(rng)) p.col_idx.push_back(c);
      }
    }
    p.row_ptr.push_back(static_cast<int64_t>(p.col_idx.size()));
  }
  std::vector<float> values(p.col_idx.size(), 1.0f);  // never read
  p.host = test::MakeCsr(m, n, p.row_ptr, p.col_idx, values, idx);
  return p;
}

// Every got[i] within (k + 4) · 2^-23 · scale[i] of want[i] (NaN fails).
void ExpectWithinF32Bound(const std::vector<float>& got, const std::vector<double>& want,
                          const std::vector<double>& scale, int64_t k, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i) {
    const double tol = (static_cast<double>(k) + 4) * 0x1p-23 * scale[i] + 1e-30;
    const double err = std::abs(static_cast<double>(got[i]) - want[i]);
    if (!(err <= tol)) {
      ++failures;
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", want " << want[i]
                    << " (tolerance " << tol << ")";
    }
  }
}

std::vector<uint32_t> Bits(const std::vector<float>& v) {
  std::vector<uint32_t> b(v.size());
  if (!v.empty()) std::memcpy(b.data(), v.data(), v.size() * 4);
  return b;
}

// op(X)[i, q] of a row-major stored matrix with `cols` columns.
double OpAt(const std::vector<float>& x, int64_t cols, bool transpose, int64_t i, int64_t q) {
  return transpose ? x[q * cols + i] : x[i * cols + q];
}

class CudaTrainOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU";
    CudaBackendOptions options;
    options.poison_outputs = true;
    absl::StatusOr<std::unique_ptr<Backend>> b = MakeCudaBackend(options);
    ASSERT_TRUE(b.ok()) << b.status();
    gpu_ = std::move(b).value();
    cpu_ = MakeCpuBackend(2);
  }

  std::unique_ptr<Backend> gpu_;
  std::unique_ptr<Backend> cpu_;
};

// ------------------------------------------------------------------ SDDMM

struct SddmmCase {
  int64_t m, n, k;
  double density;
};

TEST_F(CudaTrainOpsTest, SddmmMatchesNaiveAndCpu) {
  std::mt19937_64 rng(101);
  // k covers every lane-group width (4, 8, 16, 32) and k = 0.
  const SddmmCase cases[] = {{7, 96, 40, 0.3},      {1, 1, 1, 1.0},    {13, 9, 0, 0.5},
                             {33, 17, 5, 0.4},      {20, 31, 17, 0.6}, {9, 70, 65, 0.2},
                             {0, 12, 8, 0.5},       {12, 0, 8, 0.5},   {40, 50, 129, 0.0},
                             {1000, 700, 300, 0.03}};
  for (const SddmmCase& c : cases) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      const DType idx = t % 3 == 0 ? DType::kI64 : DType::kI32;
      SCOPED_TRACE(StrCat(c.m, "x", c.n, "x", c.k, " ta=", ta, " tb=", tb));
      const Pattern pat = RandomPattern(c.m, c.n, c.density, idx, rng);
      const int64_t nnz = static_cast<int64_t>(pat.col_idx.size());
      const std::vector<float> av = RandomValues(c.m * c.k, rng), bv = RandomValues(c.k * c.n, rng);
      const std::vector<float> cv = RandomValues(nnz, rng);
      const Tensor a =
          Dense(ta ? std::vector<int64_t>{c.k, c.m} : std::vector<int64_t>{c.m, c.k}, av);
      const Tensor b =
          Dense(tb ? std::vector<int64_t>{c.n, c.k} : std::vector<int64_t>{c.k, c.n}, bv);
      const Tensor ct = Dense({nnz}, cv);
      const float alpha = t == 1 ? -0.5f : 1.0f, beta = t >= 2 ? 0.75f : 0.0f;
      // Naive reference.
      std::vector<double> want(nnz), scale(nnz);
      for (int64_t i = 0; i < c.m; ++i) {
        for (int64_t p = pat.row_ptr[i]; p < pat.row_ptr[i + 1]; ++p) {
          const int64_t j = pat.col_idx[p];
          double dot = 0, mag = 0;
          for (int64_t q = 0; q < c.k; ++q) {
            const double x = OpAt(av, ta ? c.m : c.k, ta, i, q);
            const double y = OpAt(bv, tb ? c.k : c.n, !tb, j, q);
            dot += x * y;
            mag += std::abs(x * y);
          }
          want[p] = alpha * dot + (beta != 0.0f ? beta * cv[p] : 0.0);
          scale[p] = std::abs(alpha) * mag + std::abs(beta * cv[p]);
        }
      }
      const Tensor da = ToDevice(a), db = ToDevice(b), dp = ToDevice(pat.host), dc = ToDevice(ct);
      SddmmArgs args{&da, &db, ta, tb, &dp, alpha, beta, beta != 0.0f ? &dc : nullptr};
      absl::StatusOr<Tensor> got = gpu_->Sddmm(args);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->desc().shape, std::vector<int64_t>{nnz});
      ExpectWithinF32Bound(HostValues(*got), want, scale, c.k, "gpu vs naive");
      SddmmArgs host_args{&a, &b, ta, tb, &pat.host, alpha, beta, beta != 0.0f ? &ct : nullptr};
      absl::StatusOr<Tensor> ref = cpu_->Sddmm(host_args);
      ASSERT_TRUE(ref.ok()) << ref.status();
      ExpectWithinF32Bound(test::GetValues(*ref), want, scale, c.k, "cpu vs naive");
    }
  }
}

// ----------------------------------------------------------- dense matmul

struct MatmulCase {
  int64_t m, n, k, row_begin, row_end;
};

TEST_F(CudaTrainOpsTest, DenseMatmulMatchesNaiveAndCpu) {
  std::mt19937_64 rng(202);
  // Sizes off the 64 x 64 x 16 tiling, row ranges, k = 0 and empty tiles.
  const MatmulCase cases[] = {{7, 96, 40, 0, -1},        {1, 1, 1, 0, -1},   {65, 63, 17, 0, -1},
                              {130, 70, 33, 3, 129},     {20, 30, 0, 0, -1}, {20, 30, 5, 7, 7},
                              {0, 5, 3, 0, -1},          {9, 0, 4, 2, 5},    {100, 129, 16, 64, -1},
                              {1000, 700, 300, 130, 999}};
  for (const MatmulCase& c : cases) {
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      SCOPED_TRACE(StrCat(c.m, "x", c.n, "x", c.k, " rows [", c.row_begin, ", ", c.row_end,
                          ") ta=", ta, " tb=", tb));
      const std::vector<float> av = RandomValues(c.m * c.k, rng), bv = RandomValues(c.k * c.n, rng);
      const Tensor a =
          Dense(ta ? std::vector<int64_t>{c.k, c.m} : std::vector<int64_t>{c.m, c.k}, av);
      const Tensor b =
          Dense(tb ? std::vector<int64_t>{c.n, c.k} : std::vector<int64_t>{c.k, c.n}, bv);
      const int64_t end = c.row_end < 0 ? c.m : c.row_end, rows = end - c.row_begin;
      std::vector<double> want(rows * c.n), scale(rows * c.n);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = 0; j < c.n; ++j) {
          double dot = 0, mag = 0;
          for (int64_t q = 0; q < c.k; ++q) {
            const double x = OpAt(av, ta ? c.m : c.k, ta, c.row_begin + r, q);
            const double y = OpAt(bv, tb ? c.k : c.n, !tb, j, q);
            dot += x * y;
            mag += std::abs(x * y);
          }
          want[r * c.n + j] = dot;
          scale[r * c.n + j] = mag;
        }
      }
      const Tensor da = ToDevice(a), db = ToDevice(b);
      absl::StatusOr<Tensor> got = gpu_->DenseMatmul({&da, &db, ta, tb, c.row_begin, c.row_end});
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->desc().shape, (std::vector<int64_t>{rows, c.n}));
      ExpectWithinF32Bound(HostValues(*got), want, scale, c.k, "gpu vs naive");
      absl::StatusOr<Tensor> ref = cpu_->DenseMatmul({&a, &b, ta, tb, c.row_begin, c.row_end});
      ASSERT_TRUE(ref.ok()) << ref.status();
      ExpectWithinF32Bound(test::GetValues(*ref), want, scale, c.k, "cpu vs naive");
    }
  }
}

// -------------------------------------------------------------- optimizer

// The formulas of train_ops.h in double, one step.
void ReferenceStep(const OptimizerHyper& h, int64_t step, double grad_scale, std::vector<double>& p,
                   const std::vector<float>& grad, std::vector<double>& s1,
                   std::vector<double>& s2) {
  for (size_t i = 0; i < p.size(); ++i) {
    double g = grad_scale * grad[i];
    if (h.kind == OptimizerKind::kSgd) {
      g += h.weight_decay * p[i];
      if (h.momentum > 0) {
        s1[i] = h.momentum * s1[i] + g;
        p[i] -= h.lr * (h.nesterov ? g + h.momentum * s1[i] : s1[i]);
      } else {
        p[i] -= h.lr * g;
      }
      continue;
    }
    if (h.kind == OptimizerKind::kAdamW) {
      p[i] -= static_cast<double>(h.lr) * h.weight_decay * p[i];
    } else {
      g += h.weight_decay * p[i];
    }
    s1[i] = h.beta1 * s1[i] + (1.0 - h.beta1) * g;
    s2[i] = h.beta2 * s2[i] + (1.0 - h.beta2) * g * g;
    const double mhat = s1[i] / (1.0 - std::pow(static_cast<double>(h.beta1), step));
    const double vhat = s2[i] / (1.0 - std::pow(static_cast<double>(h.beta2), step));
    p[i] -= h.lr * mhat / (std::sqrt(vhat) + h.eps);
  }
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want,
                const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int failures = 0;
  for (size_t i = 0; i < got.size() && failures < 5; ++i) {
    const double tol = 1e-5 * (1.0 + std::abs(want[i]));
    if (!(std::abs(got[i] - want[i]) <= tol)) {
      ++failures;
      ADD_FAILURE() << what << "[" << i << "] = " << got[i] << ", want " << want[i];
    }
  }
}

TEST_F(CudaTrainOpsTest, OptimizerUpdatesFollowTheFormulasOverSteps) {
  struct Named {
    std::string name;
    OptimizerHyper h;
  };
  std::vector<Named> configs;
  {
    OptimizerHyper h;
    h.lr = 0.1f;
    configs.push_back({"sgd", h});
    h.weight_decay = 0.01f;
    h.momentum = 0.9f;
    configs.push_back({"sgd momentum", h});
    h.nesterov = true;
    configs.push_back({"sgd nesterov", h});
    OptimizerHyper a;
    a.kind = OptimizerKind::kAdam;
    a.lr = 0.01f;
    a.weight_decay = 0.05f;
    configs.push_back({"adam", a});
    a.kind = OptimizerKind::kAdamW;
    a.beta1 = 0.8f;
    a.beta2 = 0.99f;
    a.eps = 1e-6f;
    configs.push_back({"adamw", a});
  }
  std::mt19937_64 rng(303);
  for (const int64_t n : {int64_t{1}, int64_t{1037}, int64_t{70001}}) {
    for (const Named& c : configs) {
      SCOPED_TRACE(StrCat(c.name, " n=", n));
      const bool adam = c.h.kind != OptimizerKind::kSgd;
      const bool s1_used = adam || c.h.momentum > 0;
      const std::vector<float> p0 = RandomValues(n, rng);
      const std::vector<float> zeros(n, 0.0f);
      Tensor hp = Dense({n}, p0), hs1 = Dense({n}, zeros), hs2 = Dense({n}, zeros);
      Tensor dp = ToDevice(hp), ds1 = ToDevice(hs1), ds2 = ToDevice(hs2);
      std::vector<double> rp(p0.begin(), p0.end()), rs1(n, 0.0), rs2(n, 0.0);
      const float grad_scale = 0.5f;
      for (int64_t step = 1; step <= 5; ++step) {
        const Tensor hg = Dense({n}, RandomValues(n, rng));
        const Tensor dg = ToDevice(hg);
        ReferenceStep(c.h, step, grad_scale, rp, test::GetValues(hg), rs1, rs2);
        OptimizerUpdateArgs g{
            c.h, step, grad_scale, &dp, &dg, s1_used ? &ds1 : nullptr, adam ? &ds2 : nullptr};
        const absl::Status gs = gpu_->OptimizerUpdate(g);
        ASSERT_TRUE(gs.ok()) << gs;
        OptimizerUpdateArgs h{
            c.h, step, grad_scale, &hp, &hg, s1_used ? &hs1 : nullptr, adam ? &hs2 : nullptr};
        const absl::Status cs = cpu_->OptimizerUpdate(h);
        ASSERT_TRUE(cs.ok()) << cs;
      }
      ExpectNear(HostValues(dp), rp, "gpu param");
      ExpectNear(test::GetValues(hp), rp, "cpu param");
      if (s1_used) ExpectNear(HostValues(ds1), rs1, "gpu state1");
      if (adam) ExpectNear(HostValues(ds2), rs2, "gpu state2");
    }
  }
}

// ------------------------------------------------------------------ top-k

// The definition: stable sort of the indices by the order's key.
TopKResult ReferenceTopK(const std::vector<float>& v, int64_t k, TopKOrder order) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    switch (order) {
      case TopKOrder::kLargest:
        return v[a] > v[b];
      case TopKOrder::kLargestMagnitude:
        return std::abs(v[a]) > std::abs(v[b]);
      default:
        return std::abs(v[a]) < std::abs(v[b]);
    }
  });
  TopKResult r;
  for (int64_t i = 0; i < k; ++i) {
    r.indices.push_back(idx[i]);
    r.values.push_back(v[idx[i]]);
  }
  return r;
}

TEST_F(CudaTrainOpsTest, TopKMatchesTheDefinitionExactlyWithTies) {
  std::mt19937_64 rng(404);
  const float inf = std::numeric_limits<float>::infinity();
  // Few distinct values, so ties are everywhere: ±0, ±inf, equal magnitudes
  // of both signs, a denormal.
  const float palette[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, -0.5f, 2.0f, inf, -inf, 1e-40f, -3.0f};
  std::uniform_int_distribution<int> pick(0, static_cast<int>(std::size(palette)) - 1);
  std::uniform_real_distribution<float> u(-100.0f, 100.0f);
  for (const int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{100003}}) {
    for (const bool ties : {true, false}) {
      std::vector<float> v(n);
      for (float& x : v) x = ties ? palette[pick(rng)] : u(rng);
      const Tensor host = Dense({n}, v);
      const Tensor dev = ToDevice(host);
      for (const TopKOrder order :
           {TopKOrder::kLargest, TopKOrder::kLargestMagnitude, TopKOrder::kSmallestMagnitude}) {
        for (const int64_t k : {int64_t{0}, int64_t{1}, std::min<int64_t>(17, n), n / 2, n}) {
          if (k > n) continue;
          SCOPED_TRACE(
              StrCat("n=", n, " ties=", ties, " order=", static_cast<int>(order), " k=", k));
          const TopKResult want = ReferenceTopK(v, k, order);
          absl::StatusOr<TopKResult> got = gpu_->TopK(dev, k, order);
          ASSERT_TRUE(got.ok()) << got.status();
          EXPECT_EQ(got->indices, want.indices);
          EXPECT_EQ(Bits(got->values), Bits(want.values));
          absl::StatusOr<TopKResult> ref = cpu_->TopK(host, k, order);
          ASSERT_TRUE(ref.ok()) << ref.status();
          EXPECT_EQ(got->indices, ref->indices);
          EXPECT_EQ(Bits(got->values), Bits(ref->values));
        }
      }
    }
  }
}

TEST_F(CudaTrainOpsTest, TopKRefusesNaN) {
  for (const int64_t at : {int64_t{0}, int64_t{500}, int64_t{999}}) {
    std::vector<float> v(1000, 1.0f);
    v[at] = std::numeric_limits<float>::quiet_NaN();
    const Tensor dev = ToDevice(Dense({1000}, v));
    for (const int64_t k : {int64_t{0}, int64_t{3}, int64_t{1000}}) {
      absl::StatusOr<TopKResult> got = gpu_->TopK(dev, k, TopKOrder::kLargestMagnitude);
      EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
      EXPECT_THAT(got.status().message(), HasSubstr("NaN"));
    }
  }
}

// ------------------------------------------------------- element-wise ops

TEST_F(CudaTrainOpsTest, AxpbyReluBackwardAndColumnSumsMatch) {
  std::mt19937_64 rng(505);
  for (const auto& [r, c] : std::vector<std::pair<int64_t, int64_t>>{
           {7, 96}, {1, 1}, {0, 5}, {5, 0}, {1000, 3}, {3, 1000}, {4099, 67}}) {
    SCOPED_TRACE(StrCat(r, "x", c));
    const std::vector<float> xv = RandomValues(r * c, rng), yv = RandomValues(r * c, rng);
    const Tensor hx = Dense({r, c}, xv), hy = Dense({r, c}, yv);
    // Axpby (y as 1-D: only the element count must agree).
    {
      const Tensor dx = ToDevice(hx);
      Tensor dy = ToDevice(Dense({r * c}, yv));
      ASSERT_TRUE(gpu_->Axpby(1.5f, dx, -0.25f, dy).ok());
      std::vector<double> want(r * c), scale(r * c);
      for (int64_t i = 0; i < r * c; ++i) {
        want[i] = 1.5 * xv[i] - 0.25 * yv[i];
        scale[i] = std::abs(1.5 * xv[i]) + std::abs(0.25 * yv[i]);
      }
      ExpectWithinF32Bound(HostValues(dy), want, scale, 1, "axpby");
      // b = 0 does not read y: NaN there does not leak (a·x is exact in f32).
      Tensor nan_y = ToDevice(Dense({r, c}, std::vector<float>(r * c, std::nanf(""))));
      ASSERT_TRUE(gpu_->Axpby(-2.0f, dx, 0.0f, nan_y).ok());
      std::vector<float> twice(r * c);
      for (int64_t i = 0; i < r * c; ++i) twice[i] = -2.0f * xv[i];
      EXPECT_EQ(Bits(HostValues(nan_y)), Bits(twice));
    }
    // ReluBackward: exact (dy or 0); y has exact zeros too.
    {
      std::vector<float> yz = yv;
      for (size_t i = 0; i < yz.size(); i += 5) yz[i] = (i % 2) ? 0.0f : -0.0f;
      const Tensor dy = ToDevice(hx), y = ToDevice(Dense({r, c}, yz));
      absl::StatusOr<Tensor> got = gpu_->ReluBackward(dy, y);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->desc().shape, (std::vector<int64_t>{r, c}));
      std::vector<float> want(r * c);
      for (int64_t i = 0; i < r * c; ++i) want[i] = yz[i] > 0.0f ? xv[i] : 0.0f;
      EXPECT_EQ(Bits(HostValues(*got)), Bits(want));
      absl::StatusOr<Tensor> ref = cpu_->ReluBackward(hx, Dense({r, c}, yz));
      ASSERT_TRUE(ref.ok()) << ref.status();
      EXPECT_EQ(Bits(HostValues(*got)), Bits(test::GetValues(*ref)));
    }
    // ColumnSums.
    {
      const Tensor dx = ToDevice(hx);
      absl::StatusOr<Tensor> got = gpu_->ColumnSums(dx);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->desc().shape, std::vector<int64_t>{c});
      std::vector<double> want(c, 0.0), scale(c, 0.0);
      for (int64_t i = 0; i < r; ++i) {
        for (int64_t j = 0; j < c; ++j) {
          want[j] += xv[i * c + j];
          scale[j] += std::abs(xv[i * c + j]);
        }
      }
      ExpectWithinF32Bound(HostValues(*got), want, scale, r, "column sums");
      absl::StatusOr<Tensor> ref = cpu_->ColumnSums(hx);
      ASSERT_TRUE(ref.ok()) << ref.status();
      ExpectWithinF32Bound(test::GetValues(*ref), want, scale, r, "cpu column sums");
    }
  }
}

TEST_F(CudaTrainOpsTest, GrowthScoresMarkStoredPositions) {
  std::mt19937_64 rng(606);
  struct Case {
    int64_t m, n, row_begin, rows;
    double density;
  };
  for (const Case& c :
       {Case{7, 96, 0, 7, 0.3}, Case{50, 40, 13, 20, 0.5}, Case{10, 10, 10, 0, 0.5},
        Case{300, 77, 299, 1, 1.0}, Case{64, 33, 5, 40, 0.0}, Case{1000, 700, 100, 400, 0.05}}) {
    for (const DType idx : {DType::kI32, DType::kI64}) {
      SCOPED_TRACE(StrCat(c.m, "x", c.n, " rows [", c.row_begin, ", +", c.rows, ")"));
      const Pattern pat = RandomPattern(c.m, c.n, c.density, idx, rng);
      std::vector<float> tv = RandomValues(c.rows * c.n, rng);
      for (size_t i = 0; i < tv.size(); i += 7) tv[i] = -0.0f;
      std::vector<float> want(tv.size());
      for (size_t i = 0; i < tv.size(); ++i) want[i] = std::abs(tv[i]);
      for (int64_t r = 0; r < c.rows; ++r) {
        const int64_t pr = c.row_begin + r;
        for (int64_t p = pat.row_ptr[pr]; p < pat.row_ptr[pr + 1]; ++p) {
          want[r * c.n + pat.col_idx[p]] = -1.0f;
        }
      }
      Tensor tile = ToDevice(Dense({c.rows, c.n}, tv));
      const Tensor dp = ToDevice(pat.host);
      const absl::Status s = gpu_->GrowthScores(tile, dp, c.row_begin);
      ASSERT_TRUE(s.ok()) << s;
      EXPECT_EQ(Bits(HostValues(tile)), Bits(want));
      Tensor host_tile = Dense({c.rows, c.n}, tv);
      ASSERT_TRUE(cpu_->GrowthScores(host_tile, pat.host, c.row_begin).ok());
      EXPECT_EQ(Bits(HostValues(tile)), Bits(test::GetValues(host_tile)));
    }
  }
}

TEST_F(CudaTrainOpsTest, GatherOrZeroMatches) {
  std::mt19937_64 rng(707);
  for (const int64_t n : {int64_t{1}, int64_t{100}, int64_t{50000}}) {
    const std::vector<float> sv = RandomValues(n, rng);
    const Tensor src = ToDevice(Dense({n}, sv));
    std::uniform_int_distribution<int64_t> pick(-1, n - 1);
    for (const int64_t count : {int64_t{0}, int64_t{1}, n + 13}) {
      std::vector<int64_t> index(count);
      for (int64_t& i : index) i = pick(rng);
      absl::StatusOr<Tensor> got = gpu_->GatherOrZero(src, index);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->desc().shape, std::vector<int64_t>{count});
      std::vector<float> want(count);
      for (int64_t i = 0; i < count; ++i) want[i] = index[i] >= 0 ? sv[index[i]] : 0.0f;
      EXPECT_EQ(Bits(HostValues(*got)), Bits(want));
      absl::StatusOr<Tensor> ref = cpu_->GatherOrZero(Dense({n}, sv), index);
      ASSERT_TRUE(ref.ok()) << ref.status();
      EXPECT_EQ(Bits(HostValues(*got)), Bits(test::GetValues(*ref)));
    }
  }
}

// ------------------------------------------------------------- bad inputs

void ExpectInvalid(const absl::Status& s, const std::string& substring) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr(substring)) << s;
}

TEST_F(CudaTrainOpsTest, BadInputsAreInvalidArgument) {
  std::mt19937_64 rng(808);
  const Tensor ha = Dense({4, 3}, RandomValues(12, rng)), hb = Dense({3, 5}, RandomValues(15, rng));
  const Tensor a = ToDevice(ha), b = ToDevice(hb);
  const Pattern pat = RandomPattern(4, 5, 0.5, DType::kI32, rng);
  const Tensor p = ToDevice(pat.host);
  // Operands in host memory: refused, naming the field.
  ExpectInvalid(gpu_->Sddmm({&ha, &hb, false, false, &pat.host}).status(), "a is on cpu");
  ExpectInvalid(gpu_->DenseMatmul({&ha, &hb}).status(), "a is on cpu");
  ExpectInvalid(gpu_->Sddmm({&a, &hb, false, false, &p}).status(), "b is on cpu");
  ExpectInvalid(gpu_->ColumnSums(ha).status(), "x is on cpu");
  ExpectInvalid(gpu_->TopK(Dense({3}, {1, 2, 3}), 1, TopKOrder::kLargest).status(),
                "scores is on cpu");
  ExpectInvalid(gpu_->GatherOrZero(Dense({3}, {1, 2, 3}), {0}).status(), "src is on cpu");
  // Shapes and ranges.
  ExpectInvalid(gpu_->Sddmm({&a, &a, false, false, &p}).status(), "inner dimensions");
  ExpectInvalid(gpu_->Sddmm({&a, &b, false, false, &p, 1.0f, 0.5f, nullptr}).status(),
                "c is missing");
  ExpectInvalid(gpu_->DenseMatmul({&a, &b, false, false, 0, 5}).status(), "row_end = 5");
  ExpectInvalid(gpu_->DenseMatmul({&a, &b, false, false, 3, 2}).status(), "row_begin = 3");
  const Tensor s = ToDevice(Dense({3}, {1, 2, 3}));
  ExpectInvalid(gpu_->TopK(s, 4, TopKOrder::kLargest).status(), "k = 4");
  ExpectInvalid(gpu_->TopK(s, -1, TopKOrder::kLargest).status(), "k = -1");
  ExpectInvalid(gpu_->GatherOrZero(s, {0, 3}).status(), "index[1] = 3");
  ExpectInvalid(gpu_->GatherOrZero(s, {-2}).status(), "index[0] = -2");
  Tensor y = ToDevice(Dense({4}, {1, 2, 3, 4}));
  ExpectInvalid(gpu_->Axpby(1.0f, s, 1.0f, y), "differ in size");
  ExpectInvalid(gpu_->ReluBackward(s, y).status(), "dy.shape");
  ExpectInvalid(gpu_->ColumnSums(s).status(), "x.shape");
  Tensor tile = ToDevice(Dense({2, 5}, RandomValues(10, rng)));
  ExpectInvalid(gpu_->GrowthScores(tile, p, 3), "row_begin = 3");
  Tensor param = ToDevice(Dense({3}, {1, 2, 3}));
  OptimizerUpdateArgs bad_lr;
  bad_lr.hyper.lr = -1.0f;
  bad_lr.param = &param;
  bad_lr.grad = &s;
  ExpectInvalid(gpu_->OptimizerUpdate(bad_lr), "lr");
  OptimizerUpdateArgs no_state;
  no_state.hyper.kind = OptimizerKind::kAdam;
  no_state.param = &param;
  no_state.grad = &s;
  ExpectInvalid(gpu_->OptimizerUpdate(no_state), "state1");
}

}  // namespace
}  // namespace sparsed
