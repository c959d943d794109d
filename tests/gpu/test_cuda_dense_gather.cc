// The row-gather kernel for D·Sᵀ in f32 (kernels/cuda/spmm/dense_csr_gather.h,
// CudaBackendOptions::csr_dense_gather) against a float64 host reference,
// outputs poisoned: shapes on and off its tile edges (m not a multiple of
// its 8 rows, n not of its 256 threads, k not of 4), empty rows of S, every
// epilogue step, and the Sparse DNN layer shape. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
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
  double density;
  bool beta = false, bias = false, relu = false, clamp = false;
};

class DenseGatherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
    CudaBackendOptions o;
    o.csr_dense_gather = true;
    o.poison_outputs = true;
    auto b = MakeCudaBackend(o);
    ASSERT_TRUE(b.ok()) << b.status();
    gpu_ = std::move(b).value();
  }

  void Check(const GatherCase& cs, std::mt19937_64& rng) {
    SCOPED_TRACE(StrCat(cs.m, "x", cs.k, " · (", cs.n, "x", cs.k, ")ᵀ density ", cs.density));
    std::vector<test::Triplet> e = test::RandomTriplets(cs.n, cs.k, cs.density, rng);
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
    auto got = gpu_->Spmm(args);
    ASSERT_TRUE(got.ok()) << got.status();
    auto host = got->CopyTo(Device::Cpu());
    ASSERT_TRUE(host.ok()) << host.status();
    const std::vector<float> g = test::GetValues(*host);
    const std::vector<double> sd = test::Densify(s);  // [n][k]
    for (int64_t i = 0; i < cs.m; ++i) {
      for (int64_t j = 0; j < cs.n; ++j) {
        double acc = 0, mag = 0;
        for (int64_t l = 0; l < cs.k; ++l) {
          const double x = static_cast<double>(dv[i * cs.k + l]) * sd[j * cs.k + l];
          acc += x;
          mag += std::abs(x);
        }
        const Expected want = ApplyEpilogue(
            acc, mag, args.alpha,
            cs.beta ? std::optional<double>(args.beta * cin[i * cs.n + j]) : std::nullopt,
            cs.bias ? std::optional<double>(bias[j]) : std::nullopt, cs.relu,
            cs.clamp ? std::optional<double>(0.4) : std::nullopt);
        const float v = g[i * cs.n + j];
        ASSERT_FALSE(std::isnan(v)) << "C[" << i << ", " << j << "] not written";
        ASSERT_NEAR(v, want.value, 1e-5 * (want.magnitude + 1.0)) << "C[" << i << ", " << j << "]";
      }
    }
  }

  std::unique_ptr<Backend> gpu_;
};

TEST_F(DenseGatherTest, ShapesOnAndOffTheTileEdgesWithEveryEpilogue) {
  std::mt19937_64 rng(std::random_device{}());
  const GatherCase cases[] = {
      {1, 1, 1, 1.0},        {7, 37, 5, 0.3},     {8, 64, 256, 0.1},
      {9, 128, 257, 0.05},   {33, 300, 70, 0.02}, {100, 1000, 513, 0.01},
      {16, 6144, 40, 0.002}, {5, 12, 300, 0.0}};  // the last: S without an entry
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
  GatherCase c{300, 1024, 1024, 32.0 / 1024};
  c.bias = c.relu = c.clamp = true;
  Check(c, rng);
}

}  // namespace
}  // namespace sparsed
