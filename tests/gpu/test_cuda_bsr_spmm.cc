// BSR SpMM on the CUDA backend against a naive float64 dense product
// computed here from the same (exactly representable) values: every BSR
// variant forced, block shapes 16…128 square and rectangular, ragged edges,
// empty block rows, one block, all blocks, both operand orders, transposed
// sparse and dense operands, every epilogue step, each value and output
// dtype; outputs poisoned before each run. Then the tuner and the JIT cache
// across a restart: a second backend on the same tune database and kernel
// directory runs with 0 compiles and 0 tuning trials. Skipped without a GPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
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

// One kernel directory for the whole binary: each specialisation compiles once.
std::string KernelDir() {
  static const std::string dir = [] {
    std::string d =
        (std::filesystem::temp_directory_path() / StrCat("sparsed-test-bsr-kernels-", ::getpid()))
            .string();
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

using gpu_test::Cast;

using gpu_test::ApplyEpilogue;
using gpu_test::Expected;
using gpu_test::ToDevice;

// A random BSR [rows, cols] with r × c blocks: each block present with
// probability `density` (block row `empty_row` left empty when >= 0);
// values uniform in [-1, 1), edge padding zero. Also returns the dense
// float64 copy.
struct Bsr {
  Tensor t;
  std::vector<double> dense;
};
Bsr RandomBsr(int64_t rows, int64_t cols, int64_t r, int64_t c, double density, DType idx,
              std::mt19937_64& rng, int64_t empty_row = -1) {
  const int64_t br = (rows + r - 1) / r, bc = (cols + c - 1) / c;
  std::bernoulli_distribution keep(density);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<int64_t> ptr{0}, col;
  for (int64_t i = 0; i < br; ++i) {
    for (int64_t j = 0; j < bc; ++j) {
      if (i != empty_row && keep(rng)) col.push_back(j);
    }
    ptr.push_back(static_cast<int64_t>(col.size()));
  }
  TensorDesc d{Format::kBsr, DType::kF32, idx, {rows, cols}, static_cast<int64_t>(col.size())};
  d.block_rows = r;
  d.block_cols = c;
  Bsr out;
  out.t = test::MustAllocate(d);
  out.dense.assign(rows * cols, 0.0);
  auto put_idx = [&](const char* name, const std::vector<int64_t>& v) {
    if (idx == DType::kI64) {
      std::copy(v.begin(), v.end(), out.t.data<int64_t>(name).begin());
    } else {
      std::span<int32_t> s = out.t.data<int32_t>(name);
      for (size_t i = 0; i < v.size(); ++i) s[i] = static_cast<int32_t>(v[i]);
    }
  };
  put_idx("block_row_ptr", ptr);
  put_idx("block_col_idx", col);
  std::span<float> vals = out.t.data<float>("values");
  for (int64_t i = 0; i < br; ++i) {
    for (int64_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      for (int64_t rr = 0; rr < r; ++rr) {
        for (int64_t cc = 0; cc < c; ++cc) {
          const int64_t gi = i * r + rr, gj = col[e] * c + cc;
          const bool inside = gi < rows && gj < cols;
          const float v = inside ? u(rng) : 0.0f;
          vals[(e * r + rr) * c + cc] = v;
          if (inside) out.dense[gi * cols + gj] = v;
        }
      }
    }
  }
  return out;
}

// 16-bit copies of the values, and the float64 dense copy of what they hold.
void Round(Bsr& s, DType dtype) {
  if (dtype == DType::kF32) return;
  s.t = Cast(s.t, dtype);
  const Tensor back = Cast(s.t, DType::kF32);
  // Recompute the dense copy from the rounded values.
  const TensorDesc& d = back.desc();
  std::fill(s.dense.begin(), s.dense.end(), 0.0);
  const int64_t br = d.block_row_count(), r = d.block_rows, c = d.block_cols, cols = d.cols();
  auto idx = [&](const char* name, int64_t i) -> int64_t {
    return d.index_dtype == DType::kI64 ? back.data<int64_t>(name)[i] : back.data<int32_t>(name)[i];
  };
  std::span<const float> vals = back.data<float>("values");
  for (int64_t i = 0; i < br; ++i) {
    for (int64_t e = idx("block_row_ptr", i); e < idx("block_row_ptr", i + 1); ++e) {
      for (int64_t rr = 0; rr < r; ++rr) {
        for (int64_t cc = 0; cc < c; ++cc) {
          const int64_t gi = i * r + rr, gj = idx("block_col_idx", e) * c + cc;
          if (gi < d.rows() && gj < cols) s.dense[gi * cols + gj] = vals[(e * r + rr) * c + cc];
        }
      }
    }
  }
}

struct DenseOp {
  Tensor t;
  std::vector<double> v;
};
DenseOp RandomDense(int64_t rows, int64_t cols, DType dtype, std::mt19937_64& rng) {
  DenseOp d;
  d.t = test::MakeDense({rows, cols}, test::RandomFloats(rows * cols, rng));
  if (dtype != DType::kF32) d.t = Cast(d.t, dtype);
  const std::vector<float> back = test::GetValues(Cast(d.t, DType::kF32));
  d.v.assign(back.begin(), back.end());
  return d;
}

struct Case {
  std::string name;
  int64_t m, k, n;  // of C = op(A)·op(B)
  int64_t r, c;
  double density;
  bool a_sparse = true, ta = false, tb = false;
  bool beta = false, bias = false, relu = false, clamp = false;
  DType dtype = DType::kBF16, out = DType::kBF16, idx = DType::kI32;
  int64_t empty_row = -1;
};

// Runs one case on `gpu` and checks every element against float64.
void Check(Backend& gpu, const Case& cs, std::mt19937_64& rng) {
  SCOPED_TRACE(cs.name);
  // Stored shapes: op(S) is [m, k] (sparse A) or [k, n] (sparse B).
  int64_t sr = cs.a_sparse ? cs.m : cs.k, sc = cs.a_sparse ? cs.k : cs.n;
  const bool st = cs.a_sparse ? cs.ta : cs.tb;
  if (st) std::swap(sr, sc);
  Bsr s = RandomBsr(sr, sc, cs.r, cs.c, cs.density, cs.idx, rng, cs.empty_row);
  Round(s, cs.dtype);
  int64_t dr = cs.a_sparse ? cs.k : cs.m, dc = cs.a_sparse ? cs.n : cs.k;
  const bool dt = cs.a_sparse ? cs.tb : cs.ta;
  if (dt) std::swap(dr, dc);
  DenseOp d = RandomDense(dr, dc, cs.dtype, rng);
  // op(X)[i][j] of a row-major [rows, cols] x.
  auto op = [](const std::vector<double>& x, int64_t cols, bool t, int64_t i, int64_t j) {
    return t ? x[j * cols + i] : x[i * cols + j];
  };
  const std::vector<double>& av = cs.a_sparse ? s.dense : d.v;
  const std::vector<double>& bv = cs.a_sparse ? d.v : s.dense;
  const int64_t a_cols = cs.a_sparse ? sc : dc, b_cols = cs.a_sparse ? dc : sc;
  const float alpha = cs.beta ? -1.25f : 1.0f, beta = cs.beta ? 0.5f : 0.0f;
  std::vector<float> cin = test::RandomFloats(cs.m * cs.n, rng),
                     bias = test::RandomFloats(cs.n, rng);
  const float clamp = 0.3f;

  Tensor da = ToDevice(cs.a_sparse ? s.t : d.t), db = ToDevice(cs.a_sparse ? d.t : s.t);
  Tensor dc_in = ToDevice(test::MakeDense({cs.m, cs.n}, cin));
  Tensor dbias = ToDevice(test::MakeDense({cs.n}, bias));
  SpmmArgs args;
  args.a = &da;
  args.b = &db;
  args.transpose_a = cs.ta;
  args.transpose_b = cs.tb;
  args.alpha = alpha;
  args.beta = beta;
  args.c = cs.beta ? &dc_in : nullptr;
  args.epilogue.bias = cs.bias ? &dbias : nullptr;
  args.epilogue.relu = cs.relu;
  if (cs.clamp) args.epilogue.clamp_max = clamp;
  args.out_dtype = cs.out;
  absl::StatusOr<Tensor> got = gpu.Spmm(args);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->desc().dtype, cs.out);
  ASSERT_EQ(got->desc().shape, (std::vector<int64_t>{cs.m, cs.n}));
  absl::StatusOr<Tensor> host = got->CopyTo(Device::Cpu());
  ASSERT_TRUE(host.ok()) << host.status();
  const std::vector<float> g = test::GetValues(Cast(*host, DType::kF32));
  // Half an ulp of the output type, relative, plus f32 accumulation error.
  const double out_tol = cs.out == DType::kBF16  ? 1.0 / 256
                         : cs.out == DType::kF16 ? 1.0 / 1024
                                                 : 0;
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
        const double x = op(av, a_cols, cs.ta, i, l) * op(bv, b_cols, cs.tb, l, j);
        acc += x;
        mag += std::abs(x);
      }
      const Expected e = ExpectedAt(acc, mag, i, j);
      const float v = g[i * cs.n + j];
      ASSERT_FALSE(std::isnan(v)) << "C[" << i << ", " << j << "] not written (poison left)";
      ASSERT_NEAR(v, e.value, out_tol * std::abs(e.value) + 2e-5 * (e.magnitude + 1e-6))
          << "C[" << i << ", " << j << "]";
    }
  }
}

std::unique_ptr<Backend> MakeGpu(const std::string& variant, TuneDb* db = nullptr,
                                 std::string kernel_dir = KernelDir()) {
  CudaBackendOptions options;
  options.force_variant = variant;
  options.poison_outputs = true;
  options.tune_db = db;
  options.kernel_cache_dir = std::move(kernel_dir);
  options.bsr_tensor_cores = true;
  absl::StatusOr<std::unique_ptr<Backend>> b = MakeCudaBackend(options);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

std::string Name(const char* what, const Case& c) {
  return StrCat(what, " ", c.m, "x", c.k, "x", c.n, " b", c.r, "x", c.c, " d", c.density,
                c.a_sparse ? " sparseA" : " sparseB", c.ta ? " ta" : "", c.tb ? " tb" : "", " ",
                DTypeName(c.dtype), ">", DTypeName(c.out), " ", DTypeName(c.idx),
                c.beta ? " beta" : "", c.bias ? " bias" : "", c.relu ? " relu" : "",
                c.clamp ? " clamp" : "");
}

class BsrVariantTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU";
    gpu_ = MakeGpu(GetParam());
    ASSERT_NE(gpu_, nullptr);
  }
  std::unique_ptr<Backend> gpu_;
};

// Every variant on the plain form (A·B) over block shapes, ragged edges and
// the full epilogue; f32 for the variants that take it.
TEST_P(BsrVariantTest, PlainFormBlockShapesAndEdges) {
  std::mt19937_64 rng(std::random_device{}());
  struct Shape {
    int64_t m, k, n, r, c;
    double density;
  };
  const Shape shapes[] = {{64, 64, 64, 16, 16, 0.5},      {100, 90, 40, 16, 16, 0.4},
                          {96, 160, 72, 32, 32, 0.5},     {130, 200, 136, 64, 64, 0.5},
                          {256, 256, 128, 128, 128, 0.6}, {70, 100, 48, 32, 16, 0.5},
                          {80, 130, 64, 16, 48, 0.5},     {192, 64, 32, 64, 32, 0.7}};
  int i = 0;
  for (const Shape& s : shapes) {
    for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
      Case c;
      c.m = s.m;
      c.k = s.k;
      c.n = s.n;
      c.r = s.r;
      c.c = s.c;
      c.density = s.density;
      c.dtype = dtype;
      const DType outs[] = {DType::kBF16, DType::kF32, DType::kF16};
      c.out = dtype == DType::kF32 ? DType::kF32 : outs[i % 3];
      c.beta = c.bias = c.relu = c.clamp = (i % 2 == 0);
      c.idx = i % 4 == 3 ? DType::kI64 : DType::kI32;
      ++i;
      c.name = Name("plain", c);
      Check(*gpu_, c, rng);
      if (HasFatalFailure()) return;
    }
  }
}

// Pattern extremes: an empty block row, a single block, every block, no block.
TEST_P(BsrVariantTest, PatternExtremes) {
  std::mt19937_64 rng(std::random_device{}());
  for (double density : {0.0, 1.0, 0.02}) {
    Case c;
    c.m = 128;
    c.k = 128;
    c.n = 64;
    c.r = c.c = 32;
    c.density = density;
    c.empty_row = 1;
    c.bias = true;
    c.name = Name("extreme", c);
    Check(*gpu_, c, rng);
    if (HasFatalFailure()) return;
  }
}

std::vector<std::string> Variants() {
  std::vector<std::string> v = CudaSpmmVariantNames(Format::kBsr);
  if (v.empty()) v.push_back("none");  // keeps the suite (skipped) listed
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, BsrVariantTest, ::testing::ValuesIn(Variants()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// Both operand orders and every transpose, on tensor cores (and on the
// fallbacks where the tensor-core kernel does not apply: f32, odd n).
TEST(BsrOperandForms, EveryOrderAndTranspose) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  std::unique_ptr<Backend> gpu = MakeGpu("bsr_tc_64x128");
  ASSERT_NE(gpu, nullptr);
  std::mt19937_64 rng(std::random_device{}());
  int i = 0;
  for (bool a_sparse : {true, false}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (auto [r, cb] : {std::pair<int64_t, int64_t>{16, 16}, {64, 64}, {32, 16}}) {
          for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
            Case c;
            c.m = 72 + 8 * (i % 3);
            c.k = 120;
            c.n = 88;
            c.r = r;
            c.c = cb;
            c.density = 0.5;
            c.a_sparse = a_sparse;
            c.ta = ta;
            c.tb = tb;
            c.dtype = dtype;
            c.out = dtype == DType::kF32 ? DType::kF32 : (i % 2 ? DType::kF32 : dtype);
            c.beta = c.bias = c.relu = c.clamp = (i % 2 == 1);
            ++i;
            c.name = Name("forms", c);
            Check(*gpu, c, rng);
            if (HasFatalFailure()) return;
          }
        }
      }
    }
  }
  // n not a multiple of 8: the CUDA-core or CSR path.
  Case odd;
  odd.m = 64;
  odd.k = 64;
  odd.n = 13;
  odd.r = odd.c = 16;
  odd.density = 0.5;
  odd.bias = true;
  odd.name = Name("odd n", odd);
  Check(*gpu, odd, rng);
}

// Each epilogue step alone.
TEST(BsrEpilogue, EachStepAlone) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  std::unique_ptr<Backend> gpu = MakeGpu("");
  ASSERT_NE(gpu, nullptr);
  std::mt19937_64 rng(std::random_device{}());
  for (int step = 0; step < 4; ++step) {
    Case c;
    c.m = 96;
    c.k = 64;
    c.n = 64;
    c.r = c.c = 32;
    c.density = 0.6;
    c.beta = step == 0;
    c.bias = step == 1;
    c.relu = step == 2;
    c.clamp = step == 3;
    c.name = Name("epilogue", c);
    Check(*gpu, c, rng);
    if (HasFatalFailure()) return;
  }
}

// Tuning once, then a restarted backend (new database object on the same
// file, new kernel cache on the same directory): no compiles, no trials.
TEST(BsrTuner, SecondBackendCompilesAndTunesNothing) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / StrCat("sparsed-test-bsr-restart-", ::getpid());
  std::filesystem::remove_all(dir);
  const std::string db_path = (dir / "tune.json").string(), kdir = (dir / "kernels").string();
  std::mt19937_64 rng(std::random_device{}());
  Case c;
  c.m = 256;
  c.k = 256;
  c.n = 128;
  c.r = c.c = 64;
  // Every block present: both runs draw their own pattern, and the tuning key
  // buckets the blocks per row, so a random density could change the key.
  c.density = 1.0;
  c.bias = c.relu = true;
  c.name = Name("restart", c);
  {
    absl::StatusOr<std::unique_ptr<TuneDb>> db = TuneDb::Open(db_path);
    ASSERT_TRUE(db.ok()) << db.status();
    std::unique_ptr<Backend> gpu = MakeGpu("", db->get(), kdir);
    ASSERT_NE(gpu, nullptr);
    Check(*gpu, c, rng);
    EXPECT_GE((*db)->trials(), 3) << "several variants timed";
    EXPECT_GE(gpu->KernelCacheStatistics().compiles, 1);
    EXPECT_FALSE(gpu->ListKernels().empty());
  }
  absl::StatusOr<std::unique_ptr<TuneDb>> db = TuneDb::Open(db_path);
  ASSERT_TRUE(db.ok()) << db.status();
  std::unique_ptr<Backend> gpu = MakeGpu("", db->get(), kdir);
  ASSERT_NE(gpu, nullptr);
  Check(*gpu, c, rng);
  EXPECT_EQ((*db)->trials(), 0);
  EXPECT_EQ(gpu->KernelCacheStatistics().compiles, 0);
  EXPECT_GE(gpu->KernelCacheStatistics().hits, 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sparsed
