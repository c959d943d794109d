// The row-gather kernel for D·Sᵀ in f32 (kernels/cuda/spmm/dense_csr_gather.h,
// CudaBackendOptions::csr_dense_gather), every compiled configuration
// (csr_dense_gather_config), against a float64 host reference, outputs
// poisoned: m off the token tiles (32, 64), n off the row batches (128,
// 256), k not a multiple of 4 (scalar staging), rows of S with 0 and with
// more than 32 entries (windows of 32), k wide enough for column chunks
// (and columns unordered within a row, which the chunking does not rely on),
// slices of the persistent grid crossing token tiles, every epilogue step,
// and the Sparse DNN layer shape. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "../unit/kernels_test_util.h"
#include "gpu_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using gpu_test::ApplyEpilogue;
using gpu_test::Expected;
using gpu_test::HaveGpu;
using gpu_test::ToDevice;

struct GatherCase {
  int64_t m, k, n;  // C [m, n] = D [m, k] · Sᵀ, S [n, k]
  double density;   // of S, when row_lengths is empty
  // Else row j of S holds row_lengths[j % size] entries (at most k) at
  // distinct random columns, ascending unless `shuffled`.
  std::vector<int64_t> row_lengths = {};
  bool shuffled = false;
  bool beta = false, bias = false, relu = false, clamp = false;
};

std::vector<test::Triplet> RowLengthTriplets(const GatherCase& cs, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  std::vector<int64_t> cols(cs.k);
  std::vector<test::Triplet> e;
  for (int64_t r = 0; r < cs.n; ++r) {
    const int64_t len = std::min(cs.k, cs.row_lengths[r % cs.row_lengths.size()]);
    std::iota(cols.begin(), cols.end(), 0);
    for (int64_t i = 0; i < len; ++i) {
      std::swap(cols[i], cols[i + static_cast<int64_t>(rng() % (cs.k - i))]);
    }
    if (!cs.shuffled) std::sort(cols.begin(), cols.begin() + len);
    for (int64_t i = 0; i < len; ++i) {
      float v = val(rng);
      if (v == 0.0f) v = 0.5f;
      e.push_back({r, cols[i], v});
    }
  }
  return e;
}

class DenseGatherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
    names_ = CudaDenseGatherConfigNames();
    ASSERT_FALSE(names_.empty());
    for (size_t i = 0; i < names_.size(); ++i) {
      CudaBackendOptions o;
      o.csr_dense_gather = true;
      o.csr_dense_gather_config = static_cast<int>(i);
      o.poison_outputs = true;
      auto b = MakeCudaBackend(o);
      ASSERT_TRUE(b.ok()) << b.status();
      gpus_.push_back(std::move(b).value());
    }
  }

  // One product, checked under every configuration.
  void Check(const GatherCase& cs, std::mt19937_64& rng) {
    SCOPED_TRACE(StrCat(cs.m, "x", cs.k, " · (", cs.n, "x", cs.k, ")ᵀ ",
                        cs.row_lengths.empty() ? StrCat("density ", cs.density) : "row lengths",
                        cs.shuffled ? " shuffled" : "", cs.beta ? " beta" : "",
                        cs.bias ? " bias" : "", cs.relu ? " relu" : "", cs.clamp ? " clamp" : ""));
    const std::vector<test::Triplet> e = cs.row_lengths.empty()
                                             ? test::RandomTriplets(cs.n, cs.k, cs.density, rng)
                                             : RowLengthTriplets(cs, rng);
    const Tensor s = test::MakeCsrFromTriplets(cs.n, cs.k, e, DType::kI32);
    const std::vector<float> dv = test::RandomFloats(cs.m * cs.k, rng);
    const std::vector<float> cin = test::RandomFloats(cs.m * cs.n, rng);
    const std::vector<float> bias = test::RandomFloats(cs.n, rng);
    Tensor dd = ToDevice(test::MakeDense({cs.m, cs.k}, dv)), ds = ToDevice(s);
    Tensor dc = ToDevice(test::MakeDense({cs.m, cs.n}, cin));
    Tensor db = ToDevice(test::MakeDense({cs.n}, bias));
    SpmmArgs args;
    args.a = &dd;
    args.b = &ds;
    args.transpose_b = true;
    args.alpha = cs.beta ? 0.75f : 1.0f;
    args.beta = cs.beta ? -0.5f : 0.0f;
    args.c = cs.beta ? &dc : nullptr;
    args.epilogue.bias = cs.bias ? &db : nullptr;
    args.epilogue.relu = cs.relu;
    if (cs.clamp) args.epilogue.clamp_max = 0.4f;

    // The float64 reference, from S's stored entries.
    const std::vector<int64_t> rp = test::GetIndices(s, "row_ptr");
    const std::vector<int64_t> col = test::GetIndices(s, "col_idx");
    const std::vector<float> sv = test::GetValues(s);
    std::vector<Expected> want(cs.m * cs.n);
    for (int64_t i = 0; i < cs.m; ++i) {
      for (int64_t j = 0; j < cs.n; ++j) {
        double acc = 0, mag = 0;
        for (int64_t x = rp[j]; x < rp[j + 1]; ++x) {
          const double p = static_cast<double>(dv[i * cs.k + col[x]]) * sv[x];
          acc += p;
          mag += std::abs(p);
        }
        want[i * cs.n + j] = ApplyEpilogue(
            acc, mag, args.alpha,
            cs.beta ? std::optional<double>(args.beta * cin[i * cs.n + j]) : std::nullopt,
            cs.bias ? std::optional<double>(bias[j]) : std::nullopt, cs.relu,
            cs.clamp ? std::optional<double>(0.4) : std::nullopt);
      }
    }

    for (size_t config = 0; config < gpus_.size(); ++config) {
      SCOPED_TRACE(StrCat("config ", config, " (", names_[config], ")"));
      auto got = gpus_[config]->Spmm(args);
      ASSERT_TRUE(got.ok()) << got.status();
      auto host = got->CopyTo(Device::Cpu());
      ASSERT_TRUE(host.ok()) << host.status();
      const std::vector<float> g = test::GetValues(*host);
      ASSERT_EQ(g.size(), want.size());
      for (int64_t i = 0; i < cs.m; ++i) {
        for (int64_t j = 0; j < cs.n; ++j) {
          const Expected& w = want[i * cs.n + j];
          const float v = g[i * cs.n + j];
          ASSERT_FALSE(std::isnan(v)) << "C[" << i << ", " << j << "] not written";
          ASSERT_NEAR(v, w.value, 1e-5 * (w.magnitude + 1.0)) << "C[" << i << ", " << j << "]";
        }
      }
    }
  }

  std::vector<std::string> names_;
  std::vector<std::unique_ptr<Backend>> gpus_;  // one per configuration
};

TEST_F(DenseGatherTest, ShapesOnAndOffTheTileEdgesWithEveryEpilogue) {
  std::mt19937_64 rng(std::random_device{}());
  const std::vector<int64_t> mixed = {0, 70, 33, 32, 1, 0, 100, 31, 64, 65};
  const GatherCase cases[] = {
      {1, 1, 1, 1.0},
      {7, 37, 5, 0.3},  // k odd: scalar staging
      {8, 64, 256, 0.1},
      {9, 128, 257, 0.05},
      {33, 300, 70, 0.02},
      {100, 1000, 513, 0.01},
      {5, 12, 300, 0.0},                        // S without an entry
      {200, 96, 1000, 0.05},                    // slices of the grid cross token tiles
      {70, 260, 300, 0, mixed},                 // rows of 0 to 100 entries
      {4000, 36, 1100, 0, {3, 0, 5}},           // several row batches a slice
      {16, 6144, 40, 0.002},                    // column chunks, float4 staging
      {37, 4096, 65, 0, {70, 0, 33, 3}},        // chunks, long rows
      {40, 3001, 77, 0, {0, 70, 150, 3}},       // chunks, scalar staging
      {45, 603, 129, 0, {70, 0, 5, 40}, true},  // columns unordered within rows
      {33, 2052, 31, 0, {200, 1}, true},        // unordered rows, chunks for every config
  };
  int i = 0;
  for (GatherCase c : cases) {
    c.beta = i % 2 == 1;
    c.bias = i % 3 != 0;
    c.relu = i % 2 == 0;
    c.clamp = i % 4 == 3;
    ++i;
    Check(c, rng);
    if (HasFatalFailure()) return;
  }
}

TEST_F(DenseGatherTest, TheSparseDnnLayer) {
  std::mt19937_64 rng(std::random_device{}());
  GatherCase c{1200, 1024, 1024, 0, {32}};
  c.bias = c.relu = c.clamp = true;
  Check(c, rng);
}

TEST_F(DenseGatherTest, RejectsAConfigurationOutOfRange) {
  CudaBackendOptions o;
  o.csr_dense_gather = true;
  o.csr_dense_gather_config = static_cast<int>(names_.size());
  auto b = MakeCudaBackend(o);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << b.status();
}

}  // namespace
}  // namespace sparsed
