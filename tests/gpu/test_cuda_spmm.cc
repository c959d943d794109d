// The CUDA backend against the CPU backend (float64 accumulation, itself
// tested against a naive dense product): every SpMM variant, forced, on fresh
// random operands of awkward shapes, every operand form (transposes, sparse
// on either side, COO, int64 indices), every epilogue, f32/f16/bf16, and the
// real matrices; outputs are poisoned with NaN before each run. Skipped
// where no GPU is present.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
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

struct Shape {
  const char* name;
  int64_t m, k, n;
  double density;
  int64_t long_row = -1;
};

std::vector<Shape> Shapes() {
  return {
      {"random", 13, 17, 9, 0.2},
      {"nnz0", 5, 7, 3, 0.0},
      {"m0", 0, 5, 4, 0.5},
      {"k0", 4, 0, 5, 0.5},
      {"n0", 4, 5, 0, 0.5},
      {"row_vector", 1, 40, 3, 0.3},
      {"col_result", 40, 6, 1, 0.3},
      {"long_row", 64, 700, 5, 0.01, 33},
      {"empty_rows", 50, 30, 4, 0.01},
      {"n32", 300, 200, 32, 0.05},
      {"n33_unaligned", 97, 150, 33, 0.1},
      {"n64_long_rows", 70, 3000, 64, 0.02, 7},
      {"n128", 129, 257, 128, 0.03},
      {"n520_wide", 45, 90, 520, 0.1},
  };
}

// Host operands of one problem; `dtype` is the value type of A and B.
struct Operands {
  Tensor a, b, c, bias;
  bool ta = false, tb = false;
  float alpha = 1, beta = 0;
  bool relu = false;
  std::optional<float> clamp;
};

using gpu_test::Cast;

Operands Make(const Shape& s, bool a_sparse, Format f, DType idx, bool ta, bool tb, bool epilogue,
              DType dtype, std::mt19937_64& rng) {
  Operands o;
  o.ta = ta;
  o.tb = tb;
  const bool sparse_t = a_sparse ? ta : tb;
  // Stored shape of the sparse operand: op(A) is [m, k]; op(B) is [k, n].
  int64_t sr = a_sparse ? s.m : s.k, sc = a_sparse ? s.k : s.n;
  if (sparse_t) std::swap(sr, sc);
  Tensor sparse = test::MakeSparse(
      f, sr, sc, test::RandomTriplets(sr, sc, s.density, rng, s.long_row < sr ? s.long_row : -1),
      idx);
  int64_t dr = a_sparse ? s.k : s.m, dc = a_sparse ? s.n : s.k;
  if (a_sparse ? tb : ta) std::swap(dr, dc);
  Tensor dense = test::MakeDense({dr, dc}, test::RandomFloats(dr * dc, rng));
  if (dtype != DType::kF32) {
    sparse = Cast(sparse, dtype);
    dense = Cast(dense, dtype);
  }
  o.a = a_sparse ? std::move(sparse) : std::move(dense);
  o.b = a_sparse ? std::move(dense) : std::move(sparse);
  if (epilogue) {
    o.bias = test::MakeDense({s.n}, test::RandomFloats(s.n, rng));
    o.relu = true;
    o.clamp = 0.3f;
    o.alpha = -1.25f;
    o.beta = 0.5f;
    o.c = test::MakeDense({s.m, s.n}, test::RandomFloats(s.m * s.n, rng));
  }
  return o;
}

SpmmArgs ArgsOf(const Operands& o, const Tensor& a, const Tensor& b, const Tensor* c,
                const Tensor* bias) {
  SpmmArgs args;
  args.a = &a;
  args.b = &b;
  args.transpose_a = o.ta;
  args.transpose_b = o.tb;
  args.alpha = o.alpha;
  args.beta = o.beta;
  args.c = o.beta != 0 ? c : nullptr;
  args.epilogue.bias = bias;
  args.epilogue.relu = o.relu;
  args.epilogue.clamp_max = o.clamp;
  return args;
}

using gpu_test::ToDevice;

Tensor Abs(const Tensor& t) {
  absl::StatusOr<Tensor> c = t.Clone();
  EXPECT_TRUE(c.ok()) << c.status();
  for (float& x : c->data<float>("values")) x = std::abs(x);
  return std::move(c).value();
}

// Runs o on `gpu` and on the CPU backend and compares: no NaN left from the
// poison, and every element within 3e-5 of the sum of the magnitudes of its
// terms (|alpha|·(|A||B|)_ij + |beta c_ij| + |bias_j|), the scale of f32
// accumulation error when terms cancel.
void Compare(Backend& gpu, const Operands& o) {
  std::unique_ptr<Backend> cpu = MakeCpuBackend(1);
  const bool has_c = o.beta != 0, has_bias = o.bias.desc().shape.size() > 0;
  absl::StatusOr<Tensor> want =
      cpu->Spmm(ArgsOf(o, o.a, o.b, has_c ? &o.c : nullptr, has_bias ? &o.bias : nullptr));
  ASSERT_TRUE(want.ok()) << want.status();
  Operands mag_ops;
  mag_ops.ta = o.ta;
  mag_ops.tb = o.tb;
  mag_ops.alpha = std::abs(o.alpha);
  const Tensor abs_a = Abs(Cast(o.a, DType::kF32)), abs_b = Abs(Cast(o.b, DType::kF32));
  absl::StatusOr<Tensor> mag = cpu->Spmm(ArgsOf(mag_ops, abs_a, abs_b, nullptr, nullptr));
  ASSERT_TRUE(mag.ok()) << mag.status();

  Tensor da = ToDevice(o.a), db = ToDevice(o.b);
  Tensor dc = has_c ? ToDevice(o.c) : Tensor(), dbias = has_bias ? ToDevice(o.bias) : Tensor();
  absl::StatusOr<Tensor> got =
      gpu.Spmm(ArgsOf(o, da, db, has_c ? &dc : nullptr, has_bias ? &dbias : nullptr));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->device(), Device::Cuda(0));
  absl::StatusOr<Tensor> host = got->CopyTo(Device::Cpu());
  ASSERT_TRUE(host.ok()) << host.status();
  ASSERT_EQ(host->desc().shape, want->desc().shape);
  const std::vector<float> g = test::GetValues(*host), w = test::GetValues(*want),
                           m = test::GetValues(*mag);
  const std::vector<float> c = has_c ? test::GetValues(o.c) : std::vector<float>();
  const std::vector<float> bias = has_bias ? test::GetValues(o.bias) : std::vector<float>();
  const int64_t n = host->desc().shape.size() == 2 ? host->desc().shape[1] : 1;
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_FALSE(std::isnan(g[i])) << "element " << i << " not written (poison left)";
    double scale = m[i] + 1e-6;
    if (has_c) scale += std::abs(o.beta * c[i]);
    if (has_bias) scale += std::abs(bias[i % n]);
    ASSERT_NEAR(g[i], w[i], 3e-5 * scale) << "element " << i;
  }
}

using Param = std::tuple<std::string, DType>;

class CudaSpmmVariantTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU";
    CudaBackendOptions options;
    options.force_variant = std::get<0>(GetParam());
    options.poison_outputs = true;
    absl::StatusOr<std::unique_ptr<Backend>> b = MakeCudaBackend(options);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(*b);
  }
  std::unique_ptr<Backend> backend_;
};

TEST_P(CudaSpmmVariantTest, MatchesCpuOnEveryOperandForm) {
  const DType dtype = std::get<1>(GetParam());
  std::mt19937_64 rng(std::random_device{}());
  struct Form {
    bool a_sparse;
    Format f;
    DType idx;
    bool ta, tb, epilogue;
  };
  const Form forms[] = {
      {true, Format::kCsr, DType::kI32, false, false, false},
      {true, Format::kCsr, DType::kI32, false, false, true},
      {true, Format::kCsr, DType::kI64, true, false, false},
      {true, Format::kCoo, DType::kI32, false, true, true},
      {true, Format::kCsr, DType::kI32, true, true, true},
      {false, Format::kCsr, DType::kI32, false, false, false},
      {false, Format::kCoo, DType::kI64, true, true, true},
      {false, Format::kCsr, DType::kI32, false, true, true},
  };
  for (const Shape& s : Shapes()) {
    for (const Form& f : forms) {
      SCOPED_TRACE(StrCat(s.name, f.a_sparse ? " sparse_a " : " sparse_b ", FormatName(f.f), " ",
                          DTypeName(f.idx), f.ta ? " ta" : "", f.tb ? " tb" : "",
                          f.epilogue ? " epilogue" : ""));
      Compare(*backend_, Make(s, f.a_sparse, f.f, f.idx, f.ta, f.tb, f.epilogue, dtype, rng));
      if (HasFatalFailure()) return;
    }
  }
}

// The real matrices of ../shared/data/matrices (SPARSED_MATRIX_DIR overrides).
std::string MatrixDir() {
  const char* env = std::getenv("SPARSED_MATRIX_DIR");
  return env != nullptr ? env : SPARSED_MATRIX_DIR;
}

TEST_P(CudaSpmmVariantTest, MatchesCpuOnRealMatrices) {
  const DType dtype = std::get<1>(GetParam());
  if (dtype != DType::kF32) GTEST_SKIP() << "real matrices run in f32";
  std::mt19937_64 rng(std::random_device{}());
  int found = 0;
  for (const auto& entry : std::filesystem::directory_iterator(MatrixDir())) {
    if (entry.path().extension() != ".mtx") continue;
    ++found;
    int64_t rows = 0, cols = 0;
    std::vector<test::Triplet> e = test::ReadMtx(entry.path().string(), &rows, &cols);
    // Canonical: sort row-major and sum duplicates.
    std::sort(e.begin(), e.end(),
              [](const auto& x, const auto& y) { return x.r != y.r ? x.r < y.r : x.c < y.c; });
    std::vector<test::Triplet> canon;
    for (const test::Triplet& t : e) {
      if (!canon.empty() && canon.back().r == t.r && canon.back().c == t.c) {
        canon.back().v += t.v;
      } else {
        canon.push_back(t);
      }
    }
    for (int64_t n : {32, 128}) {
      SCOPED_TRACE(StrCat(entry.path().filename().string(), " n=", n));
      Operands o;
      o.a = test::MakeCsrFromTriplets(rows, cols, canon, DType::kI32);
      o.b = test::MakeDense({cols, n}, test::RandomFloats(cols * n, rng));
      Compare(*backend_, o);
      if (HasFatalFailure()) return;
      // Aᵀ·B: the transposed operand read as stored (the scatter kernel), on
      // rows as uneven as the matrix's.
      Operands t;
      t.a = test::MakeCsrFromTriplets(rows, cols, canon, DType::kI32);
      t.b = test::MakeDense({rows, n}, test::RandomFloats(rows * n, rng));
      t.ta = true;
      SCOPED_TRACE("transposed");
      Compare(*backend_, t);
      if (HasFatalFailure()) return;
    }
  }
  EXPECT_GT(found, 0) << "no .mtx files in " << MatrixDir();
}

std::vector<Param> Params() {
  std::vector<Param> out;
  for (const std::string& v : CudaSpmmVariantNames()) {
    for (DType t : {DType::kF32, DType::kF16, DType::kBF16}) out.emplace_back(v, t);
  }
  if (out.empty()) out.emplace_back("none", DType::kF32);  // keeps the suite (skipped) listed
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, CudaSpmmVariantTest, ::testing::ValuesIn(Params()),
                         [](const ::testing::TestParamInfo<Param>& info) {
                           return StrCat(std::get<0>(info.param), "_",
                                         DTypeName(std::get<1>(info.param)));
                         });

// ------------------------------------------------------------------ tuner

class CudaTunerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU";
    dir_ = std::filesystem::temp_directory_path() / StrCat("sparsed_tune_test_", ::getpid());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(CudaTunerTest, TunesOnceThenRemembersAcrossRestart) {
  const std::string path = (dir_ / "tune.json").string();
  std::mt19937_64 rng(7);
  Operands o;
  o.a = test::MakeCsrFromTriplets(500, 400, test::RandomTriplets(500, 400, 0.02, rng), DType::kI32);
  o.b = test::MakeDense({400, 64}, test::RandomFloats(400 * 64, rng));
  {
    absl::StatusOr<std::unique_ptr<TuneDb>> db = TuneDb::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    CudaBackendOptions options;
    options.tune_db = db->get();
    options.poison_outputs = true;
    absl::StatusOr<std::unique_ptr<Backend>> gpu = MakeCudaBackend(options);
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    Compare(**gpu, o);
    EXPECT_EQ((*db)->misses(), 1);
    EXPECT_GE((*db)->trials(), 3) << "several variants timed";
    EXPECT_EQ((*db)->size(), 1);
    const int64_t trials = (*db)->trials();
    Compare(**gpu, o);  // same key: the stored winner, no new trials
    EXPECT_EQ((*db)->hits(), 1);
    EXPECT_EQ((*db)->trials(), trials);
    const std::vector<TuneEntry> entries = (*db)->List();
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_THAT(CudaSpmmVariantNames(), ::testing::Contains(entries[0].variant));
    EXPECT_EQ(entries[0].timings_ms.count(entries[0].variant), 1u);
  }
  // A new process (here: a new database and backend) reads the winner back.
  absl::StatusOr<std::unique_ptr<TuneDb>> db = TuneDb::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  ASSERT_EQ((*db)->size(), 1);
  CudaBackendOptions options;
  options.tune_db = db->get();
  absl::StatusOr<std::unique_ptr<Backend>> gpu = MakeCudaBackend(options);
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  Compare(**gpu, o);
  EXPECT_EQ((*db)->hits(), 1);
  EXPECT_EQ((*db)->trials(), 0);
}

// ------------------------------------------------------------- robustness

TEST(CudaBackendTest, OutOfMemoryIsResourceExhaustedAndTheDeviceStillWorks) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  absl::StatusOr<Buffer> huge = Buffer::Allocate(int64_t{1} << 45, Device::Cuda(0));  // 32 TiB
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kResourceExhausted) << huge.status();
  absl::StatusOr<std::unique_ptr<Backend>> gpu = MakeCudaBackend({});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  std::mt19937_64 rng(3);
  Operands o;
  o.a = test::MakeCsrFromTriplets(20, 30, test::RandomTriplets(20, 30, 0.2, rng), DType::kI32);
  o.b = test::MakeDense({30, 8}, test::RandomFloats(240, rng));
  Compare(**gpu, o);
}

TEST(CudaBackendTest, OperandOnTheHostIsRejected) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  absl::StatusOr<std::unique_ptr<Backend>> gpu = MakeCudaBackend({});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  Tensor a = test::MakeCsr(2, 2, {0, 1, 1}, {0}, {1.0f}, DType::kI32);
  Tensor b = test::MakeDense({2, 2}, {1, 2, 3, 4});
  Tensor db = ToDevice(b);
  SpmmArgs args;
  args.a = &a;
  args.b = &db;
  absl::StatusOr<Tensor> r = (*gpu)->Spmm(args);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("a is on cpu"));
}

TEST(CudaBackendTest, UnknownForcedVariantIsRejected) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  CudaBackendOptions options;
  options.force_variant = "no_such_variant";
  EXPECT_EQ(MakeCudaBackend(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudaBackendTest, WithoutGpuMakeCudaBackendFailsCleanly) {
  if (HaveGpu()) GTEST_SKIP() << "a GPU is present";
  absl::StatusOr<std::unique_ptr<Backend>> gpu = MakeCudaBackend({});
  EXPECT_EQ(gpu.status().code(), absl::StatusCode::kFailedPrecondition) << gpu.status();
}

}  // namespace
}  // namespace sparsed
