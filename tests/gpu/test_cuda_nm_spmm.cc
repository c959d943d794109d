// 2:4 SpMM on sparse tensor cores (the nm_tc_* and nm_wg_* variants) against a naive
// float64 dense product computed here from the same (exactly
// representable) values: every tile forced, both operand orders (W·op(B)
// and op(X)·Wᵀ, the F.linear shape) with the dense operand stored either
// way, bf16 and f16, every output dtype, every epilogue step, awkward shapes
// (k not a multiple of 64 or of 16, rows not a multiple of 16, one group,
// one row, one column, all-zero groups) and decode sizes that split k;
// outputs poisoned before each run. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "../unit/kernels_test_util.h"
#include "gpu_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/cast.h"
#include "sparsed/gpu_info.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using gpu_test::HaveGpu;

using gpu_test::Cast;

using gpu_test::ApplyEpilogue;
using gpu_test::Expected;
using gpu_test::ToDevice;

// A random 2:4 [rows, cols] of `dtype` (positions drawn per group, about a
// tenth of the groups all zero), and the float64 dense matrix it holds.
struct Nm {
  Tensor t;
  std::vector<double> dense;
};
Nm RandomNm24(int64_t rows, int64_t cols, DType dtype, std::mt19937_64& rng) {
  const int64_t groups = cols / 4, words = (groups + 7) / 8;
  TensorDesc d{Format::kNm, DType::kF32, DType::kI32, {rows, cols}, rows * groups * 2};
  d.nm_n = 2;
  d.nm_m = 4;
  Tensor t = test::MustAllocate(d);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 5);
  std::bernoulli_distribution zero_group(0.1);
  const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  std::span<float> vals = t.data<float>("values");
  std::span<int32_t> meta = t.data<int32_t>("meta");
  std::fill(meta.begin(), meta.end(), 0);
  std::vector<int> pos(rows * groups * 2);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const int* pp = pairs[pick(rng)];
      const bool zero = zero_group(rng);
      uint32_t& w = reinterpret_cast<uint32_t&>(meta[r * words + g / 8]);
      w |= static_cast<uint32_t>(pp[0] | (pp[1] << 2)) << (4 * (g % 8));
      for (int s = 0; s < 2; ++s) {
        vals[(r * groups + g) * 2 + s] = zero ? 0.0f : u(rng);
        pos[(r * groups + g) * 2 + s] = pp[s];
      }
    }
  }
  Nm out;
  out.t = Cast(t, dtype);
  const std::vector<float> back = test::GetValues(Cast(out.t, DType::kF32));
  out.dense.assign(rows * cols, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      for (int s = 0; s < 2; ++s) {
        const int64_t e = (r * groups + g) * 2 + s;
        out.dense[r * cols + g * 4 + pos[e]] = back[e];
      }
    }
  }
  return out;
}

// A random n:m (n ≠ 2 or m ≠ 4: one stored position per kept value), with
// about a tenth of the kept values zero.
Nm RandomNm(int64_t rows, int64_t cols, int n, int m, DType dtype, std::mt19937_64& rng) {
  if (n == 2 && m == 4) return RandomNm24(rows, cols, dtype, rng);
  const int64_t groups = cols / m;
  TensorDesc d{Format::kNm, DType::kF32, DType::kI32, {rows, cols}, rows * groups * n};
  d.nm_n = n;
  d.nm_m = m;
  Tensor t = test::MustAllocate(d);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::bernoulli_distribution zero(0.1);
  std::span<float> vals = t.data<float>("values");
  std::span<int32_t> meta = t.data<int32_t>("meta");
  std::vector<int> all(m);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      std::sort(all.begin(), all.begin() + n);
      for (int s = 0; s < n; ++s) {
        meta[(r * groups + g) * n + s] = all[s];
        vals[(r * groups + g) * n + s] = zero(rng) ? 0.0f : u(rng);
      }
    }
  }
  Nm out;
  out.t = Cast(t, dtype);
  const std::vector<float> back = test::GetValues(Cast(out.t, DType::kF32));
  out.dense.assign(rows * cols, 0.0);
  for (int64_t e = 0; e < rows * groups * n; ++e) {
    const int64_t r = e / (groups * n), g = (e / n) % groups;
    out.dense[r * cols + g * m + meta[e]] = back[e];
  }
  return out;
}

struct Case {
  int64_t m, k, n;       // of C = op(A)·op(B)
  bool w_is_a = true;    // W = A (W·op(B)); else W = B transposed (op(X)·Wᵀ)
  bool dense_t = false;  // the dense operand stored transposed
  DType dtype = DType::kBF16, out = DType::kBF16;
  bool beta = false, bias = false, relu = false, clamp = false;
  int nm_n = 2, nm_m = 4;  // W's pattern
  bool twice = false;      // multiply again: the same bits (a cached repack)
};

std::string Name(const Case& c) {
  return StrCat(c.nm_n, ":", c.nm_m, " ", c.m, "x", c.k, "x", c.n,
                c.w_is_a ? " W·op(B)" : " op(X)·Wt", c.dense_t ? " dense_t" : "", " ",
                DTypeName(c.dtype), ">", DTypeName(c.out), c.beta ? " beta" : "",
                c.bias ? " bias" : "", c.relu ? " relu" : "", c.clamp ? " clamp" : "");
}

void Check(Backend& gpu, const Case& cs, std::mt19937_64& rng) {
  SCOPED_TRACE(Name(cs));
  // W is [m, k] (W = A) or [n, k] (W = B, used transposed).
  Nm w = RandomNm(cs.w_is_a ? cs.m : cs.n, cs.k, cs.nm_n, cs.nm_m, cs.dtype, rng);
  // The dense operand: op(B) [k, n] or op(X) [m, k], stored transposed if asked.
  int64_t dr = cs.w_is_a ? cs.k : cs.m, dc = cs.w_is_a ? cs.n : cs.k;
  if (cs.dense_t) std::swap(dr, dc);
  Tensor dense = test::MakeDense({dr, dc}, test::RandomFloats(dr * dc, rng));
  dense = Cast(dense, cs.dtype);
  const std::vector<float> dv = test::GetValues(Cast(dense, DType::kF32));
  auto dense_op = [&](int64_t i, int64_t j) -> double {  // op(dense)[i][j]
    return cs.dense_t ? dv[j * dc + i] : dv[i * dc + j];
  };
  const float alpha = cs.beta ? -1.25f : 1.0f, beta = cs.beta ? 0.5f : 0.0f;
  const std::vector<float> cin = test::RandomFloats(cs.m * cs.n, rng);
  const std::vector<float> bias = test::RandomFloats(cs.n, rng);
  const float clamp = 0.3f;

  Tensor dw = ToDevice(w.t), dd = ToDevice(dense);
  Tensor dc_in = ToDevice(test::MakeDense({cs.m, cs.n}, cin));
  Tensor dbias = ToDevice(test::MakeDense({cs.n}, bias));
  SpmmArgs args;
  args.a = cs.w_is_a ? &dw : &dd;
  args.b = cs.w_is_a ? &dd : &dw;
  args.transpose_a = cs.w_is_a ? false : cs.dense_t;
  args.transpose_b = cs.w_is_a ? cs.dense_t : true;
  args.alpha = alpha;
  args.beta = beta;
  args.c = cs.beta ? &dc_in : nullptr;
  args.epilogue.bias = cs.bias ? &dbias : nullptr;
  args.epilogue.relu = cs.relu;
  if (cs.clamp) args.epilogue.clamp_max = clamp;
  args.out_dtype = cs.out;
  absl::StatusOr<Tensor> got = gpu.Spmm(args);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->desc().shape, (std::vector<int64_t>{cs.m, cs.n}));
  ASSERT_EQ(got->desc().dtype, cs.out);
  absl::StatusOr<Tensor> host = got->CopyTo(Device::Cpu());
  ASSERT_TRUE(host.ok()) << host.status();
  const std::vector<float> g = test::GetValues(Cast(*host, DType::kF32));
  const double out_tol = cs.out == DType::kBF16  ? 1.0 / 256
                         : cs.out == DType::kF16 ? 1.0 / 1024
                                                 : 0;
  const double acc_tol = 1e-5 * (1.0 + static_cast<double>(cs.k) / 256.0);
  // This case's epilogue on the float64 product of element (i, j).
  auto ExpectedAt = [&](double acc, double mag, int64_t i, int64_t j) {
    using std::nullopt;
    return ApplyEpilogue(acc, mag, alpha,
                         cs.beta ? std::optional<double>(beta * cin[i * cs.n + j]) : nullopt,
                         cs.bias ? std::optional<double>(bias[j]) : nullopt, cs.relu,
                         cs.clamp ? std::optional<double>(clamp) : nullopt);
  };
  for (int64_t i = 0; i < cs.m; ++i) {
    for (int64_t j = 0; j < cs.n; ++j) {
      double acc = 0, mag = 0;
      for (int64_t l = 0; l < cs.k; ++l) {
        const double x = cs.w_is_a ? w.dense[i * cs.k + l] * dense_op(l, j)
                                   : dense_op(i, l) * w.dense[j * cs.k + l];
        acc += x;
        mag += std::abs(x);
      }
      const Expected e = ExpectedAt(acc, mag, i, j);
      const float v = g[i * cs.n + j];
      ASSERT_FALSE(std::isnan(v)) << "C[" << i << ", " << j << "] not written (poison left)";
      ASSERT_NEAR(v, e.value, out_tol * std::abs(e.value) + acc_tol * (e.magnitude + 1e-6))
          << "C[" << i << ", " << j << "]";
    }
  }
  if (cs.twice) {
    absl::StatusOr<Tensor> again = gpu.Spmm(args);
    ASSERT_TRUE(again.ok()) << again.status();
    absl::StatusOr<Tensor> again_host = again->CopyTo(Device::Cpu());
    ASSERT_TRUE(again_host.ok()) << again_host.status();
    ASSERT_EQ(again_host->bytes(), host->bytes());
    EXPECT_EQ(std::memcmp(again_host->component("values")->data(),
                          host->component("values")->data(), host->bytes()),
              0)
        << "the second product of the same operands differs";
  }
}

// "tuned": the default tuner; "tuned_wgmma": with the wgmma tiles enabled.
std::unique_ptr<Backend> MakeGpu(const std::string& variant) {
  CudaBackendOptions options;
  options.force_variant = variant.starts_with("tuned") ? "" : variant;
  options.nm_wgmma = variant == "tuned_wgmma";
  options.poison_outputs = true;
  absl::StatusOr<std::unique_ptr<Backend>> b = MakeCudaBackend(options);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

class NmTcVariantTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
    gpu_ = MakeGpu(GetParam());
    ASSERT_NE(gpu_, nullptr);
  }
  std::unique_ptr<Backend> gpu_;
};

// Shapes × operand forms × types × epilogues; a forced tile that does not
// take a shape (too wide for n) leaves it to the tuner.
TEST_P(NmTcVariantTest, ShapesFormsTypesAndEpilogues) {
  std::mt19937_64 rng(std::random_device{}());
  struct Shape {
    int64_t m, k, n;
  };
  const Shape shapes[] = {{16, 32, 8},    {100, 68, 40},   {128, 256, 128}, {130, 200, 136},
                          {256, 4096, 1}, {300, 1024, 16}, {64, 96, 3},     {1, 64, 64},
                          {37, 4, 9},     {200, 520, 64}};
  int i = 0;
  for (const Shape& s : shapes) {
    for (int form = 0; form < 4; ++form) {
      Case c{s.m, s.k, s.n};
      c.w_is_a = form < 2;
      c.dense_t = form % 2 == 1;
      c.dtype = i % 2 == 0 ? DType::kBF16 : DType::kF16;
      const DType outs[] = {DType::kBF16, DType::kF32, DType::kF16};
      c.out = outs[i % 3];
      c.beta = c.bias = c.relu = c.clamp = (i % 4 == 1);
      if (i % 4 == 3) c.bias = true;
      ++i;
      Check(*gpu_, c, rng);
      if (HasFatalFailure()) return;
    }
  }
}

// Prefill-like shapes in the two forms whose dense operand is stored [n][k]
// (what the wgmma tiles take): several CTA tiles each way, edges in m, n
// and k (k not a multiple of 64, nor of 16: the unaligned copy paths), and
// a k long enough that the tiles split it across CTAs.
TEST_P(NmTcVariantTest, PrefillShapesNMajorDense) {
  std::mt19937_64 rng(std::random_device{}());
  struct Shape {
    int64_t m, k, n;
  };
  const Shape shapes[] = {{320, 1000, 264}, {192, 2048, 256}, {257, 512, 300}, {64, 128, 64}};
  int i = 0;
  for (const Shape& s : shapes) {
    for (const bool w_is_a : {true, false}) {
      Case c{s.m, s.k, s.n};
      c.w_is_a = w_is_a;
      c.dense_t = w_is_a;  // B stored [n][k], or X [m][k] row-major
      c.dtype = i % 2 == 0 ? DType::kBF16 : DType::kF16;
      const DType outs[] = {DType::kBF16, DType::kF32, DType::kF16};
      c.out = outs[i % 3];
      c.beta = c.bias = c.relu = c.clamp = (i % 3 == 1);
      ++i;
      Check(*gpu_, c, rng);
      if (HasFatalFailure()) return;
    }
  }
}

// Wider patterns: n ≤ 2 with m a multiple of 4 run on the 2:4 tiles after a
// repack on the device; 4:8 and 3:4 (no such mapping) take the CUDA-core
// kernel. Both operand orders, a decode and a prefill size.
TEST_P(NmTcVariantTest, WiderPatterns) {
  std::mt19937_64 rng(std::random_device{}());
  const int patterns[][2] = {{1, 4}, {2, 8}, {1, 8}, {2, 16}, {2, 32}, {4, 8}, {3, 4}};
  int i = 0;
  for (const auto& nm : patterns) {
    for (const bool w_is_a : {true, false}) {
      Case c{w_is_a ? 96 : 5, 256, w_is_a ? 130 : 72};
      c.w_is_a = w_is_a;
      c.dense_t = w_is_a && i % 2 == 0;
      c.nm_n = nm[0];
      c.nm_m = nm[1];
      c.dtype = i % 2 == 0 ? DType::kBF16 : DType::kF16;
      c.out = i % 3 == 0 ? DType::kF32 : c.dtype;
      c.bias = c.relu = i % 2 == 1;
      ++i;
      Check(*gpu_, c, rng);
      if (HasFatalFailure()) return;
    }
  }
}

// A 2:8 weight is repacked to 2:4 once and kept by its buffers' ids: the
// second product of each weight (from the kept repack) equals the first, and
// each fresh weight of the same shape and pattern (likely at the address the
// previous one freed) gets its own repack, never the previous one's.
TEST_P(NmTcVariantTest, RepackedWeightsAreKeptPerTensor) {
  std::mt19937_64 rng(std::random_device{}());
  for (int round = 0; round < 3; ++round) {
    for (const bool w_is_a : {false, true}) {
      Case c{w_is_a ? 64 : 40, 256, w_is_a ? 40 : 64};
      c.w_is_a = w_is_a;
      c.nm_n = 2;
      c.nm_m = 8;
      c.twice = true;
      Check(*gpu_, c, rng);
      if (HasFatalFailure()) return;
    }
  }
}

// Decode sizes on the F.linear shape: 1–64 tokens on a wide k (split-k).
TEST_P(NmTcVariantTest, DecodeSizes) {
  std::mt19937_64 rng(std::random_device{}());
  for (int64_t tokens : {1, 2, 7, 16, 33, 64}) {
    Case c{tokens, 2048, 192};
    c.w_is_a = false;
    c.bias = tokens % 2 == 1;
    Check(*gpu_, c, rng);
    if (HasFatalFailure()) return;
  }
}

std::vector<std::string> Variants() {
  std::vector<std::string> v = CudaSpmmVariantNames(Format::kNm);
  v.push_back("tuned");
  v.push_back("tuned_wgmma");
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, NmTcVariantTest, ::testing::ValuesIn(Variants()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace sparsed
