// SparseLinear (training.h) against references written here in float64: a
// naive dense forward and backward, central finite differences of a float64
// loss, optimizer loops, and brute-force pruning and RigL selections.
//
// The layer tests run on the CPU backend, or on the CUDA backend (cuda:0) with
// SPARSED_TEST_BACKEND=cuda (ctest test_training_cuda), where they are skipped
// when no GPU is present. The references stay on the host in both cases.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numbers>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "sparsed/backend.h"
#include "sparsed/gpu_info.h"
#include "sparsed/training.h"
#include "sparsed/validate.h"

namespace sparsed::train {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------- helpers

bool OnCuda() {
  const char* env = std::getenv("SPARSED_TEST_BACKEND");
  return env != nullptr && std::string_view(env) == "cuda";
}

// Where the layer under test keeps its tensors.
Device TestDevice() { return OnCuda() ? Device::Cuda(0) : Device::Cpu(); }

// The test's own uniform in [lo, hi) (independent of the layer's generator).
std::vector<float> RandomFloats(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::vector<float> v(n);
  for (float& x : v) x = lo + (hi - lo) * static_cast<float>(gen() >> 8) * 0x1.0p-24f;
  return v;
}

// A dense f32 tensor on the test device.
Tensor Dense(std::vector<int64_t> shape, const std::vector<float>& values) {
  TensorDesc d;
  d.format = Format::kDense;
  d.dtype = DType::kF32;
  d.shape = std::move(shape);
  Tensor t = Tensor::Allocate(d).value();
  std::copy(values.begin(), values.end(), t.data<float>("values").begin());
  if (!OnCuda()) return t;
  return t.CopyTo(TestDevice()).value();
}

std::vector<float> Floats(const Tensor& t) {
  Tensor host = t.CopyTo(Device::Cpu()).value();
  auto s = host.data<float>("values");
  return {s.begin(), s.end()};
}

// A CSR matrix decoded on the host: row-major positions and their values.
struct Csr {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> positions;  // row * cols + col, in storage order
  std::vector<float> values;
  std::map<int64_t, float> ByPosition() const {
    std::map<int64_t, float> m;
    for (size_t i = 0; i < positions.size(); ++i) m[positions[i]] = values[i];
    return m;
  }
  std::vector<double> ToDense() const {
    std::vector<double> d(rows * cols, 0.0);
    for (size_t i = 0; i < positions.size(); ++i) d[positions[i]] = values[i];
    return d;
  }
};

Csr Decode(const Tensor& t) {
  Tensor h = t.CopyTo(Device::Cpu()).value();
  Csr c;
  c.rows = h.desc().rows();
  c.cols = h.desc().cols();
  VisitIndexType(h.desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    auto rp = h.data<I>("row_ptr");
    auto ci = h.data<I>("col_idx");
    for (int64_t r = 0; r < c.rows; ++r) {
      for (I p = rp[r]; p < rp[r + 1]; ++p) c.positions.push_back(r * c.cols + ci[p]);
    }
  });
  auto v = h.data<float>("values");
  c.values.assign(v.begin(), v.end());
  return c;
}

// Y = act(X · Wᵀ + b) in float64 (W dense [out, in]).
std::vector<double> RefForward(const std::vector<double>& x, const std::vector<double>& w,
                               const std::vector<double>& b, int64_t batch, int64_t in, int64_t out,
                               bool relu) {
  std::vector<double> y(batch * out);
  for (int64_t n = 0; n < batch; ++n) {
    for (int64_t i = 0; i < out; ++i) {
      double s = b.empty() ? 0.0 : b[i];
      for (int64_t j = 0; j < in; ++j) s += x[n * in + j] * w[i * in + j];
      y[n * out + i] = relu ? std::max(s, 0.0) : s;
    }
  }
  return y;
}

std::vector<double> ToDouble(const std::vector<float>& v) { return {v.begin(), v.end()}; }

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, double tol,
                const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << "[" << i << "]";
  }
}

int64_t Kept(int64_t total, double s) {
  return total - std::llround(s * static_cast<double>(total));
}

LayerConfig SmallConfig(int64_t in, int64_t out, double sparsity, uint64_t seed) {
  LayerConfig c;
  c.in_features = in;
  c.out_features = out;
  c.sparsity = sparsity;
  c.seed = seed;
  return c;
}

class TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!OnCuda()) {
      backend_ = MakeCpuBackend(2);
      return;
    }
    if (ListGpus().empty()) GTEST_SKIP() << "SPARSED_TEST_BACKEND=cuda but no GPU is present";
    absl::StatusOr<std::unique_ptr<Backend>> b = MakeCudaBackend(CudaBackendOptions{});
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(b).value();
  }
  std::unique_ptr<Backend> backend_;
};

// One forward + backward with dY = G; returns dX when asked.
std::optional<Tensor> ForwardBackward(Backend& be, SparseLinear& layer, const Tensor& x,
                                      const Tensor& dy, bool want_dx = false) {
  auto y = layer.Forward(be, x, "c");
  EXPECT_TRUE(y.ok()) << y.status();
  auto dx = layer.Backward(be, dy, "c", want_dx);
  EXPECT_TRUE(dx.ok()) << dx.status();
  return dx.ok() ? std::move(*dx) : std::nullopt;
}

// ---------------------------------------------------------------- schedules

TEST(Schedules, GradualSparsityAtBoundaries) {
  GradualPruning p;
  p.initial_sparsity = 0.2;
  p.final_sparsity = 0.8;
  p.start_step = 10;
  p.interval = 5;
  p.count = 4;  // ends at step 30
  EXPECT_DOUBLE_EQ(GradualSparsity(p, 0), 0.2);
  EXPECT_DOUBLE_EQ(GradualSparsity(p, 9), 0.2);
  EXPECT_DOUBLE_EQ(GradualSparsity(p, 10), 0.2);
  // 0.8 - 0.6 * (3/4)^3 = 0.8 - 0.6 * 0.421875
  EXPECT_NEAR(GradualSparsity(p, 15), 0.546875, 1e-15);
  // 0.8 - 0.6 * (1/2)^3
  EXPECT_NEAR(GradualSparsity(p, 20), 0.725, 1e-15);
  // 0.8 - 0.6 * (1/4)^3
  EXPECT_NEAR(GradualSparsity(p, 25), 0.790625, 1e-15);
  EXPECT_DOUBLE_EQ(GradualSparsity(p, 30), 0.8);
  EXPECT_DOUBLE_EQ(GradualSparsity(p, 1000), 0.8);
}

TEST(Schedules, RiglDropFraction) {
  RiglConfig r;
  r.alpha = 0.3;
  r.end_step = 1000;
  EXPECT_NEAR(RiglDropFraction(r, 0), 0.3, 1e-15);
  EXPECT_NEAR(RiglDropFraction(r, 500), 0.15, 1e-15);
  EXPECT_NEAR(RiglDropFraction(r, 250), 0.15 * (1.0 + std::sqrt(0.5)), 1e-15);
  EXPECT_NEAR(RiglDropFraction(r, 999), 0.15 * (1.0 + std::cos(std::numbers::pi * 0.999)), 1e-15);
  EXPECT_EQ(RiglDropFraction(r, 1000), 0.0);
  EXPECT_EQ(RiglDropFraction(r, 5000), 0.0);
}

// ---------------------------------------------------------------- config

TEST(LayerConfigTest, ErrorsNameTheField) {
  struct Case {
    const char* field;
    void (*mutate)(LayerConfig&);
  };
  const Case cases[] = {
      {"in_features", [](LayerConfig& c) { c.in_features = 0; }},
      {"out_features", [](LayerConfig& c) { c.out_features = -3; }},
      {"format", [](LayerConfig& c) { c.format = Format::kCoo; }},
      {"sparsity", [](LayerConfig& c) { c.sparsity = 1.0; }},
      {"sparsity", [](LayerConfig& c) { c.sparsity = std::nan(""); }},
      {"init", [](LayerConfig& c) { c.init = static_cast<InitKind>(7); }},
      {"optimizer.lr", [](LayerConfig& c) { c.optimizer.lr = -1.0f; }},
      {"optimizer.beta2", [](LayerConfig& c) { c.optimizer.beta2 = 1.0f; }},
      {"pruning.final_sparsity",
       [](LayerConfig& c) {
         c.pruning.enabled = true;
         c.pruning.final_sparsity = 1.5;
       }},
      {"pruning.interval",
       [](LayerConfig& c) {
         c.pruning.enabled = true;
         c.pruning.interval = 0;
       }},
      {"pruning.count",
       [](LayerConfig& c) {
         c.pruning.enabled = true;
         c.pruning.count = 0;
       }},
      {"rigl.alpha",
       [](LayerConfig& c) {
         c.rigl.enabled = true;
         c.rigl.alpha = 2.0;
       }},
      {"rigl.interval",
       [](LayerConfig& c) {
         c.rigl.enabled = true;
         c.rigl.interval = -1;
       }},
      {"rigl.tile_rows",
       [](LayerConfig& c) {
         c.rigl.enabled = true;
         c.rigl.tile_rows = -2;
       }},
      {"max_pending", [](LayerConfig& c) { c.max_pending = -1; }},
  };
  for (const Case& k : cases) {
    LayerConfig c = SmallConfig(4, 3, 0.5, 1);
    ASSERT_TRUE(CheckLayerConfig(c).ok());
    k.mutate(c);
    absl::Status s = CheckLayerConfig(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << k.field;
    EXPECT_THAT(s.message(), HasSubstr(k.field));
  }
  // Disabled schedules are not checked.
  LayerConfig c = SmallConfig(4, 3, 0.5, 1);
  c.rigl.alpha = 5.0;
  c.pruning.interval = 0;
  EXPECT_TRUE(CheckLayerConfig(c).ok());
}

TEST(LayerConfigTest, JsonRoundTrip) {
  LayerConfig c = SmallConfig(123, 45, 0.8125, 0xfedcba9876543210ull);
  c.init = InitKind::kRandomPattern;
  c.bias = false;
  c.relu = true;
  c.optimizer.kind = OptimizerKind::kAdamW;
  c.optimizer.lr = 3e-4f;
  c.optimizer.weight_decay = 0.01f;
  c.optimizer.beta1 = 0.85f;
  c.optimizer.beta2 = 0.995f;
  c.optimizer.eps = 1e-7f;
  c.pruning = {true, 0.1, 0.95, 7, 3, 11};
  c.rigl = {true, 0.25, 9, 777, 13};
  c.max_pending = 5;
  auto back = LayerConfigFromJson(LayerConfigToJson(c));
  ASSERT_TRUE(back.ok()) << back.status();
  const LayerConfig& d = *back;
  EXPECT_EQ(d.in_features, 123);
  EXPECT_EQ(d.out_features, 45);
  EXPECT_EQ(d.format, Format::kCsr);
  EXPECT_EQ(d.sparsity, 0.8125);
  EXPECT_EQ(d.init, InitKind::kRandomPattern);
  EXPECT_FALSE(d.bias);
  EXPECT_TRUE(d.relu);
  EXPECT_EQ(d.seed, 0xfedcba9876543210ull);
  EXPECT_EQ(d.optimizer.kind, OptimizerKind::kAdamW);
  EXPECT_EQ(d.optimizer.lr, 3e-4f);
  EXPECT_EQ(d.optimizer.momentum, 0.0f);
  EXPECT_FALSE(d.optimizer.nesterov);
  EXPECT_EQ(d.optimizer.weight_decay, 0.01f);
  EXPECT_EQ(d.optimizer.beta1, 0.85f);
  EXPECT_EQ(d.optimizer.beta2, 0.995f);
  EXPECT_EQ(d.optimizer.eps, 1e-7f);
  EXPECT_TRUE(d.pruning.enabled);
  EXPECT_EQ(d.pruning.initial_sparsity, 0.1);
  EXPECT_EQ(d.pruning.final_sparsity, 0.95);
  EXPECT_EQ(d.pruning.start_step, 7);
  EXPECT_EQ(d.pruning.interval, 3);
  EXPECT_EQ(d.pruning.count, 11);
  EXPECT_TRUE(d.rigl.enabled);
  EXPECT_EQ(d.rigl.alpha, 0.25);
  EXPECT_EQ(d.rigl.interval, 9);
  EXPECT_EQ(d.rigl.end_step, 777);
  EXPECT_EQ(d.rigl.tile_rows, 13);
  EXPECT_EQ(d.max_pending, 5);
  // The text is stable through a second round trip.
  EXPECT_EQ(LayerConfigToJson(d), LayerConfigToJson(c));
}

TEST(LayerConfigTest, JsonErrors) {
  auto bad = [](const std::string& json, const char* needle) {
    auto r = LayerConfigFromJson(json);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(needle)) << json;
  };
  bad("{", "JSON");
  bad("[1]", "object");
  bad(R"({"in_features": 4, "out_features": 3, "sparsty": 0.5})", "sparsty");
  bad(R"({"in_features": "4", "out_features": 3})", "in_features");
  bad(R"({"in_features": 4, "out_features": 3, "optimizer": {"lr": "x"}})", "optimizer.lr");
  bad(R"({"in_features": 4, "out_features": 3, "optimizer": {"kind": "lamb"}})", "optimizer.kind");
  bad(R"({"in_features": 4, "out_features": 3, "rigl": {"enabled": true, "alpha": 3}})",
      "rigl.alpha");
  bad(R"({"in_features": 4, "out_features": 3, "init": "xavier"})", "init");
  bad(R"({"in_features": 0, "out_features": 3})", "in_features");
  // Missing members take their defaults.
  auto ok = LayerConfigFromJson(R"({"in_features": 4, "out_features": 3})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->sparsity, LayerConfig{}.sparsity);
  EXPECT_EQ(ok->max_pending, 64);
}

// ---------------------------------------------------------------- init

TEST_F(TrainingTest, InitDensePrune) {
  for (double s : {0.0, 0.5, 0.9, 0.99}) {
    LayerConfig c = SmallConfig(37, 23, s, 42);
    auto layer = SparseLinear::Create(*backend_, c);
    ASSERT_TRUE(layer.ok()) << layer.status();
    const Tensor& w = layer->weight();
    ASSERT_TRUE(ValidateTensor(w).ok());
    EXPECT_EQ(w.desc().nnz, Kept(37 * 23, s)) << s;
    const double bound = 1.0 / std::sqrt(37.0);
    for (float v : Decode(w).values) EXPECT_LE(std::fabs(v), bound);
    ASSERT_NE(layer->bias(), nullptr);
    for (float v : Floats(*layer->bias())) EXPECT_LE(std::fabs(v), bound);
    EXPECT_EQ(layer->step(), 0);
    // The gradients start at zero.
    for (float g : Floats(layer->weight_grad())) EXPECT_EQ(g, 0.0f);
  }
  // Magnitude pruning of the s = 0 weights gives the s = 0.75 pattern: the
  // same generator stream, then the largest |w| kept (ties: earlier position).
  Csr full = Decode(SparseLinear::Create(*backend_, SmallConfig(37, 23, 0.0, 42))->weight());
  Csr pruned = Decode(SparseLinear::Create(*backend_, SmallConfig(37, 23, 0.75, 42))->weight());
  std::vector<std::pair<float, int64_t>> order;
  for (size_t i = 0; i < full.positions.size(); ++i) {
    order.push_back({std::fabs(full.values[i]), full.positions[i]});
  }
  std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::map<int64_t, float> want;
  const auto full_map = full.ByPosition();
  for (int64_t i = 0; i < Kept(37 * 23, 0.75); ++i)
    want[order[i].second] = full_map.at(order[i].second);
  EXPECT_EQ(pruned.ByPosition(), want);
}

TEST_F(TrainingTest, InitRandomPatternAndSeeds) {
  LayerConfig c = SmallConfig(50, 20, 0.9, 7);
  c.init = InitKind::kRandomPattern;
  Csr a = Decode(SparseLinear::Create(*backend_, c)->weight());
  EXPECT_EQ(static_cast<int64_t>(a.positions.size()), Kept(1000, 0.9));
  const double bound = 1.0 / std::sqrt(50.0 * 0.1);
  for (float v : a.values) EXPECT_LE(std::fabs(v), bound);
  // Same seed: the same layer; another seed: another pattern.
  Csr b = Decode(SparseLinear::Create(*backend_, c)->weight());
  EXPECT_EQ(a.positions, b.positions);
  EXPECT_EQ(a.values, b.values);
  c.seed = 8;
  Csr d = Decode(SparseLinear::Create(*backend_, c)->weight());
  EXPECT_NE(a.positions, d.positions);
  // The pattern spreads over the rows: all 20 rows of a 10%-dense 20x50 hold
  // entries with overwhelming probability; a pattern that filled the first
  // rows would not.
  std::set<int64_t> rows;
  for (int64_t p : a.positions) rows.insert(p / 50);
  EXPECT_GT(rows.size(), 15u);
  // Nearly dense and 1x1.
  LayerConfig one = SmallConfig(1, 1, 0.0, 3);
  one.init = InitKind::kRandomPattern;
  auto l1 = SparseLinear::Create(*backend_, one);
  ASSERT_TRUE(l1.ok()) << l1.status();
  EXPECT_EQ(l1->weight().desc().nnz, 1);
}

// Issue 17: a random pattern of a huge, very sparse layer walked every
// position (10^6 x 10^6 at 0.999999: hours). Now the work follows what is
// kept: it finishes at once with exactly the kept count, valid rows.
TEST_F(TrainingTest, HugeVerySparseRandomPatternIsQuickAndExact) {
  LayerConfig c = SmallConfig(1000000, 1000000, 0.999999, 5);
  c.init = InitKind::kRandomPattern;
  c.bias = false;
  const auto t0 = std::chrono::steady_clock::now();
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok()) << layer.status();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
  EXPECT_EQ(layer->weight().desc().nnz, Kept(int64_t{1000000} * 1000000, 0.999999));
  EXPECT_TRUE(ValidateTensor(layer->weight()).ok());  // sorted, unique, in range
}

// The sparse sampler is uniform: over many seeds each position of a 40x25
// layer at 0.98 (20 of 1000 kept) is taken about 2% of the time, and no row
// or column is favoured (a chi-square bound far beyond chance).
TEST_F(TrainingTest, SparseRandomPatternIsUniform) {
  const int seeds = 2000;
  std::vector<int> hits(1000, 0);
  for (int seed = 0; seed < seeds; ++seed) {
    LayerConfig c = SmallConfig(40, 25, 0.98, static_cast<uint64_t>(seed));
    c.init = InitKind::kRandomPattern;
    Csr a = Decode(SparseLinear::Create(*backend_, c)->weight());
    ASSERT_EQ(a.positions.size(), 20u);
    for (int64_t p : a.positions) ++hits[p];
  }
  const double expect = seeds * 20.0 / 1000.0;  // 40 per position
  double chi2 = 0;
  for (int h : hits) chi2 += (h - expect) * (h - expect) / expect;
  // 999 degrees of freedom: mean 999, sd ~45; 1300 is beyond 6 sd.
  EXPECT_LT(chi2, 1300.0);
  EXPECT_GT(chi2, 700.0);  // and not suspiciously even
}

// Issue 17: a layer's host initialisation was not counted against the
// memory limit. It is reserved in the host account while it is built.
TEST_F(TrainingTest, LayerInitialisationCountsAgainstTheMemoryLimit) {
  MemoryAccount& host = MemoryAccount::For(Device::Cpu());
  const int64_t old_limit = host.limit();
  host.set_limit(host.in_use() + (int64_t{32} << 20));  // 32 MiB of headroom
  // 4096 x 4096 at 50%: 8.4e6 weights, ~100 MB of host scratch.
  LayerConfig c = SmallConfig(4096, 4096, 0.5, 3);
  c.init = InitKind::kRandomPattern;
  auto layer = SparseLinear::Create(*backend_, c);
  host.set_limit(old_limit);
  ASSERT_EQ(layer.status().code(), absl::StatusCode::kResourceExhausted) << layer.status();
  EXPECT_NE(layer.status().message().find("initialising a layer of 4096 x 4096"), std::string::npos)
      << layer.status();
}

TEST_F(TrainingTest, LayerTooLargeForTheHostIsResourceExhaustedNotACrash) {
  // 2^20 x 2^20 at 50%: 5.5e11 weights, terabytes to initialise on the host.
  LayerConfig c = SmallConfig(int64_t{1} << 20, int64_t{1} << 20, 0.5, 1);
  c.init = InitKind::kRandomPattern;
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_EQ(layer.status().code(), absl::StatusCode::kResourceExhausted) << layer.status();
  EXPECT_NE(layer.status().message().find("1048576 x 1048576"), std::string::npos)
      << layer.status();
}

// ---------------------------------------------------------------- forward/backward

struct Problem {
  int64_t batch, in, out;
  double sparsity;
  bool bias, relu;
};

class ForwardBackwardTest : public TrainingTest, public ::testing::WithParamInterface<Problem> {};

TEST_P(ForwardBackwardTest, MatchesDenseReferenceAndFiniteDifferences) {
  const Problem p = GetParam();
  LayerConfig c = SmallConfig(p.in, p.out, p.sparsity, 11);
  c.bias = p.bias;
  c.relu = p.relu;
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok()) << layer.status();
  const Csr w = Decode(layer->weight());
  const std::vector<double> wd = w.ToDense();
  const std::vector<double> bd = p.bias ? ToDouble(Floats(*layer->bias())) : std::vector<double>{};
  const std::vector<float> xf = RandomFloats(p.batch * p.in, 5);
  const std::vector<float> gf = RandomFloats(p.batch * p.out, 6);
  const std::vector<double> x = ToDouble(xf), g = ToDouble(gf);
  Tensor xt = Dense({p.batch, p.in}, xf), gt = Dense({p.batch, p.out}, gf);

  auto y = layer->Forward(*backend_, xt, "call");
  ASSERT_TRUE(y.ok()) << y.status();
  const std::vector<double> yref = RefForward(x, wd, bd, p.batch, p.in, p.out, p.relu);
  ExpectNear(Floats(*y), yref, 1e-5, "y");
  EXPECT_EQ(layer->pending(), 1);

  auto dx = layer->Backward(*backend_, gt, "call", true);
  ASSERT_TRUE(dx.ok()) << dx.status();
  ASSERT_TRUE(dx->has_value());
  EXPECT_EQ(layer->pending(), 0);

  // Dense reference with the mask: dZ = G ⊙ [Y > 0]; dX = dZ · W; dW = dZᵀ X at
  // the pattern; db = column sums of dZ.
  std::vector<double> dz(g);
  if (p.relu) {
    for (size_t i = 0; i < dz.size(); ++i) dz[i] = yref[i] > 0 ? g[i] : 0.0;
  }
  std::vector<double> dx_ref(p.batch * p.in, 0.0), dw_ref, db_ref(p.out, 0.0);
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t i = 0; i < p.out; ++i) {
      db_ref[i] += dz[n * p.out + i];
      for (int64_t j = 0; j < p.in; ++j)
        dx_ref[n * p.in + j] += dz[n * p.out + i] * wd[i * p.in + j];
    }
  }
  for (int64_t pos : w.positions) {
    const int64_t i = pos / p.in, j = pos % p.in;
    double s = 0;
    for (int64_t n = 0; n < p.batch; ++n) s += dz[n * p.out + i] * x[n * p.in + j];
    dw_ref.push_back(s);
  }
  ExpectNear(Floats(**dx), dx_ref, 1e-5, "dx");
  ExpectNear(Floats(layer->weight_grad()), dw_ref, 1e-5, "dw");
  if (p.bias) {
    ExpectNear(Floats(*layer->bias_grad()), db_ref, 1e-5, "db");
  } else {
    EXPECT_EQ(layer->bias_grad(), nullptr);
  }

  // Central finite differences of the float64 loss L = Σ G ⊙ Y(X, W, b).
  auto loss = [&](const std::vector<double>& xx, const std::vector<double>& ww,
                  const std::vector<double>& bb) {
    const std::vector<double> yy = RefForward(xx, ww, bb, p.batch, p.in, p.out, p.relu);
    double l = 0;
    for (size_t i = 0; i < yy.size(); ++i) l += g[i] * yy[i];
    return l;
  };
  const double h = 1e-6;
  const std::vector<float> dwf = Floats(layer->weight_grad());
  for (size_t k = 0; k < w.positions.size(); k += 1 + w.positions.size() / 40) {
    std::vector<double> wp = wd, wm = wd;
    wp[w.positions[k]] += h;
    wm[w.positions[k]] -= h;
    EXPECT_NEAR(dwf[k], (loss(x, wp, bd) - loss(x, wm, bd)) / (2 * h), 1e-4) << "dw fd " << k;
  }
  const std::vector<float> dxf = Floats(**dx);
  for (size_t k = 0; k < x.size(); k += 1 + x.size() / 40) {
    std::vector<double> xp = x, xm = x;
    xp[k] += h;
    xm[k] -= h;
    EXPECT_NEAR(dxf[k], (loss(xp, wd, bd) - loss(xm, wd, bd)) / (2 * h), 1e-4) << "dx fd " << k;
  }
  if (p.bias) {
    const std::vector<float> dbf = Floats(*layer->bias_grad());
    for (int64_t k = 0; k < p.out; ++k) {
      std::vector<double> bp = bd, bm = bd;
      bp[k] += h;
      bm[k] -= h;
      EXPECT_NEAR(dbf[k], (loss(x, wd, bp) - loss(x, wd, bm)) / (2 * h), 1e-4) << "db fd " << k;
    }
  }

  // A second backward accumulates: gradients double for the same batch.
  ASSERT_TRUE(layer->Forward(*backend_, xt, "again").ok());
  ASSERT_TRUE(layer->Backward(*backend_, gt, "again", false).ok());
  std::vector<double> twice(dw_ref);
  for (double& v : twice) v *= 2;
  ExpectNear(Floats(layer->weight_grad()), twice, 1e-5, "dw accumulated");

  // The dense gradient of the last batch: dZᵀ X everywhere, and row tiles.
  auto dg = layer->DenseGradient(*backend_, 0, -1);
  ASSERT_TRUE(dg.ok()) << dg.status();
  std::vector<double> dg_ref(p.out * p.in, 0.0);
  for (int64_t n = 0; n < p.batch; ++n) {
    for (int64_t i = 0; i < p.out; ++i) {
      for (int64_t j = 0; j < p.in; ++j)
        dg_ref[i * p.in + j] += dz[n * p.out + i] * x[n * p.in + j];
    }
  }
  ExpectNear(Floats(*dg), dg_ref, 1e-5, "dense gradient");
  if (p.out >= 2) {
    auto rows = layer->DenseGradient(*backend_, 1, p.out);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ExpectNear(Floats(*rows), std::vector<double>(dg_ref.begin() + p.in, dg_ref.end()), 1e-5,
               "dense gradient rows");
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ForwardBackwardTest,
    ::testing::Values(Problem{5, 7, 6, 0.5, true, false}, Problem{4, 9, 8, 0.7, true, true},
                      Problem{3, 16, 5, 0.0, false, true}, Problem{1, 1, 1, 0.0, true, false},
                      Problem{6, 12, 3, 0.9, false, false}, Problem{2, 33, 17, 0.95, true, true}));

TEST_F(TrainingTest, EmptyBatch) {
  auto layer = SparseLinear::Create(*backend_, SmallConfig(6, 4, 0.5, 1));
  ASSERT_TRUE(layer.ok());
  Tensor x = Dense({0, 6}, {});
  auto y = layer->Forward(*backend_, x, "e");
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->desc().shape, (std::vector<int64_t>{0, 4}));
  auto dx = layer->Backward(*backend_, Dense({0, 4}, {}), "e", true);
  ASSERT_TRUE(dx.ok()) << dx.status();
  for (float g : Floats(layer->weight_grad())) EXPECT_EQ(g, 0.0f);
}

TEST_F(TrainingTest, ForwardInputErrors) {
  auto layer = SparseLinear::Create(*backend_, SmallConfig(6, 4, 0.5, 1));
  ASSERT_TRUE(layer.ok());
  auto y = layer->Forward(*backend_, Dense({3, 5}, RandomFloats(15, 1)), "");
  EXPECT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(y.status().message(), HasSubstr("x.shape"));
  y = layer->Forward(*backend_, Dense({18}, RandomFloats(18, 1)), "");
  EXPECT_EQ(y.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(layer->pending(), 0);
}

// ---------------------------------------------------------------- pending calls

TEST_F(TrainingTest, PendingCallsAreBounded) {
  LayerConfig c = SmallConfig(4, 3, 0.5, 2);
  c.max_pending = 2;
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok());
  Tensor x = Dense({2, 4}, RandomFloats(8, 3));
  ASSERT_TRUE(layer->Forward(*backend_, x, "a").ok());
  EXPECT_EQ(layer->Forward(*backend_, x, "a").status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(layer->Forward(*backend_, x, "b").ok());
  auto full = layer->Forward(*backend_, x, "c");
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(full.status().message(), HasSubstr("max_pending"));
  // Inference keeps nothing and is always allowed.
  EXPECT_TRUE(layer->Forward(*backend_, x, "").ok());
  EXPECT_EQ(layer->pending(), 2);

  Tensor dy = Dense({2, 3}, RandomFloats(6, 4));
  EXPECT_EQ(layer->Backward(*backend_, dy, "zzz", false).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(layer->Forget("zzz").code(), absl::StatusCode::kNotFound);
  // A dY of the wrong shape is refused and the call stays kept.
  auto wrong = layer->Backward(*backend_, Dense({3, 3}, RandomFloats(9, 4)), "a", false);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(), HasSubstr("dy.shape"));
  EXPECT_EQ(layer->pending(), 2);
  for (float g : Floats(layer->weight_grad())) EXPECT_EQ(g, 0.0f);

  ASSERT_TRUE(layer->Forget("a").ok());
  EXPECT_EQ(layer->pending(), 1);
  EXPECT_EQ(layer->Backward(*backend_, dy, "a", false).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(layer->Forward(*backend_, x, "c").ok());
  ASSERT_TRUE(layer->Backward(*backend_, dy, "b", false).ok());
  ASSERT_TRUE(layer->Backward(*backend_, dy, "c", false).ok());
  EXPECT_EQ(layer->pending(), 0);
  EXPECT_EQ(layer->Backward(*backend_, dy, "c", false).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TrainingTest, KeptCallBatchTellsTheKeptCalls) {
  auto layer = SparseLinear::Create(*backend_, SmallConfig(4, 3, 0.5, 2));
  ASSERT_TRUE(layer.ok());
  const SparseLinear& view = *layer;  // the accessor is const
  EXPECT_EQ(view.KeptCallBatch("a"), std::nullopt);
  ASSERT_TRUE(layer->Forward(*backend_, Dense({2, 4}, RandomFloats(8, 3)), "a").ok());
  ASSERT_TRUE(layer->Forward(*backend_, Dense({5, 4}, RandomFloats(20, 4)), "b").ok());
  ASSERT_TRUE(layer->Forward(*backend_, Dense({0, 4}, {}), "empty").ok());
  ASSERT_TRUE(layer->Forward(*backend_, Dense({3, 4}, RandomFloats(12, 5)), "").ok());
  // A kept call -> its batch (0 rows is still a kept call).
  EXPECT_EQ(view.KeptCallBatch("a"), std::optional<int64_t>(2));
  EXPECT_EQ(view.KeptCallBatch("b"), std::optional<int64_t>(5));
  EXPECT_EQ(view.KeptCallBatch("empty"), std::optional<int64_t>(0));
  // Unknown ids, and inference (an empty id keeps nothing) -> none.
  EXPECT_EQ(view.KeptCallBatch("zzz"), std::nullopt);
  EXPECT_EQ(view.KeptCallBatch(""), std::nullopt);
  EXPECT_EQ(layer->pending(), 3);

  // A refused Backward (dY of another batch) keeps the call; its batch is
  // what Backward takes.
  EXPECT_EQ(
      layer->Backward(*backend_, Dense({3, 3}, RandomFloats(9, 6)), "a", false).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(view.KeptCallBatch("a"), std::optional<int64_t>(2));
  // Consumed by Backward -> none; the others stay.
  ASSERT_TRUE(layer->Backward(*backend_, Dense({2, 3}, RandomFloats(6, 7)), "a", false).ok());
  EXPECT_EQ(view.KeptCallBatch("a"), std::nullopt);
  EXPECT_EQ(view.KeptCallBatch("b"), std::optional<int64_t>(5));
  // Dropped by Forget -> none.
  ASSERT_TRUE(layer->Forget("b").ok());
  EXPECT_EQ(view.KeptCallBatch("b"), std::nullopt);
  EXPECT_EQ(view.KeptCallBatch("empty"), std::optional<int64_t>(0));
  EXPECT_EQ(layer->pending(), 1);
  // The id can be kept again, with another batch.
  ASSERT_TRUE(layer->Forward(*backend_, Dense({7, 4}, RandomFloats(28, 8)), "a").ok());
  EXPECT_EQ(view.KeptCallBatch("a"), std::optional<int64_t>(7));
}

TEST_F(TrainingTest, DenseGradientBeforeBackward) {
  auto layer = SparseLinear::Create(*backend_, SmallConfig(4, 3, 0.5, 2));
  ASSERT_TRUE(layer.ok());
  EXPECT_EQ(layer->DenseGradient(*backend_, 0, -1).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------- optimizers

// The reference optimizer (PyTorch semantics, float64) on one parameter array.
struct RefOptimizer {
  OptimizerHyper h;
  std::vector<double> s1, s2;
  void Update(std::vector<double>& p, const std::vector<double>& grad, int64_t step, double scale) {
    if (s1.empty()) s1.assign(p.size(), 0.0), s2.assign(p.size(), 0.0);
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i] * scale;
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
        p[i] -= h.lr * h.weight_decay * p[i];
      } else {
        g += h.weight_decay * p[i];
      }
      s1[i] = h.beta1 * s1[i] + (1 - h.beta1) * g;
      s2[i] = h.beta2 * s2[i] + (1 - h.beta2) * g * g;
      const double mhat = s1[i] / (1 - std::pow(double{h.beta1}, step));
      const double vhat = s2[i] / (1 - std::pow(double{h.beta2}, step));
      p[i] -= h.lr * mhat / (std::sqrt(vhat) + h.eps);
    }
  }
};

class OptimizerTest : public TrainingTest, public ::testing::WithParamInterface<OptimizerHyper> {};

TEST_P(OptimizerTest, StepsMatchReferenceLoop) {
  const int64_t batch = 4, in = 10, out = 6;
  LayerConfig c = SmallConfig(in, out, 0.6, 21);
  c.relu = true;
  c.optimizer = GetParam();
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok()) << layer.status();
  const Csr w0 = Decode(layer->weight());
  std::vector<double> wv = ToDouble(w0.values), bv = ToDouble(Floats(*layer->bias()));
  RefOptimizer ow{c.optimizer}, ob{c.optimizer};
  const double scale = 1.0 / batch;
  for (int step = 1; step <= 5; ++step) {
    // The reference forward/backward at the reference weights.
    std::vector<double> wd(in * out, 0.0);
    for (size_t k = 0; k < w0.positions.size(); ++k) wd[w0.positions[k]] = wv[k];
    const std::vector<float> xf = RandomFloats(batch * in, 100 + step);
    const std::vector<float> gf = RandomFloats(batch * out, 200 + step);
    const std::vector<double> x = ToDouble(xf);
    const std::vector<double> y = RefForward(x, wd, bv, batch, in, out, true);
    std::vector<double> gw(wv.size(), 0.0), gb(out, 0.0);
    for (int64_t n = 0; n < batch; ++n) {
      for (int64_t i = 0; i < out; ++i) {
        const double dz = y[n * out + i] > 0 ? gf[n * out + i] : 0.0;
        gb[i] += dz;
        for (size_t k = 0; k < w0.positions.size(); ++k) {
          if (w0.positions[k] / in == i) gw[k] += dz * x[n * in + w0.positions[k] % in];
        }
      }
    }
    ow.Update(wv, gw, step, scale);
    ob.Update(bv, gb, step, scale);

    ForwardBackward(*backend_, *layer, Dense({batch, in}, xf), Dense({batch, out}, gf));
    auto report = layer->Step(*backend_, static_cast<float>(scale));
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->step, step);
    EXPECT_EQ(report->nnz, static_cast<int64_t>(w0.positions.size()));
    EXPECT_FALSE(report->pruned);
    const Csr w = Decode(layer->weight());
    // The mask is preserved: the same positions, nothing outside them.
    ASSERT_EQ(w.positions, w0.positions);
    ExpectNear(w.values, wv, 2e-5, "weight");
    ExpectNear(Floats(*layer->bias()), bv, 2e-5, "bias");
    for (float g : Floats(layer->weight_grad())) ASSERT_EQ(g, 0.0f);
    for (float g : Floats(*layer->bias_grad())) ASSERT_EQ(g, 0.0f);
  }
}

OptimizerHyper Hyper(OptimizerKind kind, float lr, float momentum, bool nesterov, float wd) {
  OptimizerHyper h;
  h.kind = kind;
  h.lr = lr;
  h.momentum = momentum;
  h.nesterov = nesterov;
  h.weight_decay = wd;
  return h;
}

INSTANTIATE_TEST_SUITE_P(Kinds, OptimizerTest,
                         ::testing::Values(Hyper(OptimizerKind::kSgd, 0.1f, 0.0f, false, 0.0f),
                                           Hyper(OptimizerKind::kSgd, 0.1f, 0.9f, false, 0.01f),
                                           Hyper(OptimizerKind::kSgd, 0.05f, 0.8f, true, 0.001f),
                                           Hyper(OptimizerKind::kAdam, 0.01f, 0.0f, false, 0.0f),
                                           Hyper(OptimizerKind::kAdam, 0.01f, 0.0f, false, 0.05f),
                                           Hyper(OptimizerKind::kAdamW, 0.01f, 0.0f, false, 0.1f)));

TEST_F(TrainingTest, SetOptimizerKeepsStateAndChecks) {
  auto layer = SparseLinear::Create(*backend_, SmallConfig(5, 4, 0.5, 3));
  ASSERT_TRUE(layer.ok());
  OptimizerHyper bad;
  bad.lr = -1;
  absl::Status s = layer->SetOptimizer(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("optimizer.lr"));
  OptimizerHyper adam = Hyper(OptimizerKind::kAdam, 0.01f, 0, false, 0);
  ASSERT_TRUE(layer->SetOptimizer(adam).ok());
  EXPECT_EQ(layer->config().optimizer.kind, OptimizerKind::kAdam);
  ForwardBackward(*backend_, *layer, Dense({2, 5}, RandomFloats(10, 1)),
                  Dense({2, 4}, RandomFloats(8, 2)));
  ASSERT_TRUE(layer->Step(*backend_).ok());
  auto st = layer->ExportState(Device::Cpu());
  ASSERT_TRUE(st.ok());
  for (const char* name : {"weight.state1", "weight.state2", "bias.state1", "bias.state2"}) {
    EXPECT_TRUE(st->optimizer_state.contains(name)) << name;
  }
}

// ---------------------------------------------------------------- gradual pruning

TEST_F(TrainingTest, GradualPruningSchedule) {
  const int64_t in = 20, out = 15, total = in * out, batch = 3;
  LayerConfig c = SmallConfig(in, out, 0.3, 5);
  // lr = 0: the update leaves the weights as they were, so the pruning's
  // choice can be checked against the weights before the step; momentum makes
  // optimizer state that must follow the kept entries.
  c.optimizer = Hyper(OptimizerKind::kSgd, 0.0f, 0.9f, false, 0.0f);
  c.pruning = {true, 0.3, 0.9, 2, 3, 4};  // steps 2, 5, 8, 11, 14
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok());
  const std::set<int64_t> due = {2, 5, 8, 11, 14};
  for (int64_t t = 1; t <= 17; ++t) {
    ForwardBackward(*backend_, *layer, Dense({batch, in}, RandomFloats(batch * in, t)),
                    Dense({batch, out}, RandomFloats(batch * out, 50 + t)));
    const Csr before = Decode(layer->weight());
    auto report = layer->Step(*backend_);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->pruned, due.contains(t)) << t;
    const Tensor& w = layer->weight();
    ASSERT_TRUE(ValidateTensor(w).ok()) << t;
    const Csr after = Decode(w);
    if (!due.contains(t)) {
      EXPECT_EQ(after.positions, before.positions) << t;
      continue;
    }
    // s_t by hand: s_f + (s_i - s_f)(1 - (t - t0)/(nΔt))³.
    const double frac = 1.0 - static_cast<double>(t - 2) / 12.0;
    const double s_t = 0.9 + (0.3 - 0.9) * frac * frac * frac;
    const int64_t keep = std::min<int64_t>(Kept(total, s_t), before.positions.size());
    EXPECT_EQ(report->nnz, keep) << t;
    EXPECT_EQ(w.desc().nnz, keep) << t;
    EXPECT_NEAR(report->sparsity, 1.0 - static_cast<double>(keep) / total, 1e-12);
    // The kept entries are the largest |w| before the step (ties: earlier).
    std::vector<std::pair<float, int64_t>> order;
    for (size_t i = 0; i < before.positions.size(); ++i) {
      order.push_back({std::fabs(before.values[i]), before.positions[i]});
    }
    std::sort(order.begin(), order.end(), [](auto& a, auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    std::map<int64_t, float> want;
    const auto before_map = before.ByPosition();
    for (int64_t i = 0; i < keep; ++i) want[order[i].second] = before_map.at(order[i].second);
    EXPECT_EQ(after.ByPosition(), want) << t;
    EXPECT_EQ(static_cast<int64_t>(Floats(layer->weight_grad()).size()), keep);
    auto st = layer->ExportState(Device::Cpu());
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->optimizer_state.at("weight.state1").desc().shape[0], keep);
  }
  // The final sparsity is reached and then held.
  EXPECT_EQ(layer->weight().desc().nnz, Kept(total, 0.9));
}

TEST_F(TrainingTest, GradualPruningGathersOptimizerState) {
  // Pruning at step 1 on a layer with momentum: the momentum buffer of a kept
  // entry equals the buffer of an identical layer without pruning.
  const int64_t in = 12, out = 9, batch = 4;
  LayerConfig c = SmallConfig(in, out, 0.2, 9);
  c.optimizer = Hyper(OptimizerKind::kSgd, 0.05f, 0.9f, false, 0.0f);
  LayerConfig plain = c;
  c.pruning = {true, 0.5, 0.5, 1, 1, 1};
  auto pruned = SparseLinear::Create(*backend_, c);
  auto reference = SparseLinear::Create(*backend_, plain);
  ASSERT_TRUE(pruned.ok() && reference.ok());
  Tensor x = Dense({batch, in}, RandomFloats(batch * in, 1));
  Tensor g = Dense({batch, out}, RandomFloats(batch * out, 2));
  ForwardBackward(*backend_, *pruned, x, g);
  ForwardBackward(*backend_, *reference, x, g);
  ASSERT_TRUE(pruned->Step(*backend_).ok());
  ASSERT_TRUE(reference->Step(*backend_).ok());
  const Csr wr = Decode(reference->weight()), wp = Decode(pruned->weight());
  EXPECT_EQ(static_cast<int64_t>(wp.positions.size()), Kept(in * out, 0.5));
  auto sr = reference->ExportState(Device::Cpu()), sp = pruned->ExportState(Device::Cpu());
  ASSERT_TRUE(sr.ok() && sp.ok());
  std::map<int64_t, float> buf_ref;
  const std::vector<float> br = Floats(sr->optimizer_state.at("weight.state1"));
  for (size_t i = 0; i < wr.positions.size(); ++i) buf_ref[wr.positions[i]] = br[i];
  const std::vector<float> bp = Floats(sp->optimizer_state.at("weight.state1"));
  const auto ref_values = wr.ByPosition();
  for (size_t i = 0; i < wp.positions.size(); ++i) {
    EXPECT_EQ(bp[i], buf_ref.at(wp.positions[i]));
    EXPECT_EQ(wp.values[i], ref_values.at(wp.positions[i]));
  }
}

// ---------------------------------------------------------------- RigL

class RiglTest : public TrainingTest, public ::testing::WithParamInterface<int64_t> {};

TEST_P(RiglTest, DropsSmallestAndGrowsLargestGradient) {
  const int64_t in = 10, out = 12, total = in * out, batch = 5;
  LayerConfig c = SmallConfig(in, out, 0.7, 31);
  c.relu = true;
  c.optimizer = Hyper(OptimizerKind::kSgd, 0.1f, 0.9f, false, 0.0f);
  c.rigl = {true, 0.3, 2, 10, GetParam()};  // due at 2, 4, 6, 8
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok());
  const int64_t nnz = layer->weight().desc().nnz;
  int64_t changes = 0;
  for (int64_t t = 1; t <= 12; ++t) {
    // The reference: the same layer without RigL; after the same update its
    // weights and state are what RigL starts from.
    auto st = layer->ExportState(Device::Cpu());
    ASSERT_TRUE(st.ok());
    st->config.rigl.enabled = false;
    auto twin = SparseLinear::FromState(*backend_, std::move(*st));
    ASSERT_TRUE(twin.ok()) << twin.status();
    Tensor x = Dense({batch, in}, RandomFloats(batch * in, 300 + t));
    Tensor g = Dense({batch, out}, RandomFloats(batch * out, 400 + t));
    ForwardBackward(*backend_, *layer, x, g);
    ForwardBackward(*backend_, *twin, x, g);
    auto dense_grad = layer->DenseGradient(*backend_, 0, -1);
    ASSERT_TRUE(dense_grad.ok());
    const std::vector<float> grad = Floats(*dense_grad);
    const Csr old = Decode(layer->weight());

    auto report = layer->Step(*backend_);
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_TRUE(twin->Step(*backend_).ok());
    const Tensor& w = layer->weight();
    ASSERT_TRUE(ValidateTensor(w).ok()) << t;  // sorted, no duplicates, in range
    EXPECT_EQ(w.desc().nnz, nnz);
    EXPECT_EQ(report->nnz, nnz);
    EXPECT_FALSE(report->pruned);

    const Csr ref = Decode(twin->weight());
    auto ref_state = twin->ExportState(Device::Cpu());
    auto state = layer->ExportState(Device::Cpu());
    ASSERT_TRUE(ref_state.ok() && state.ok());
    const std::vector<float> ref_buf = Floats(ref_state->optimizer_state.at("weight.state1"));
    const std::vector<float> buf = Floats(state->optimizer_state.at("weight.state1"));
    const Csr now = Decode(w);

    const bool due = t % 2 == 0 && t < 10;
    const int64_t k =
        due ? std::llround(0.15 * (1 + std::cos(std::numbers::pi * t / 10.0)) * nnz) : 0;
    EXPECT_EQ(report->dropped, k) << t;
    EXPECT_EQ(report->grown, k) << t;
    if (k == 0) {
      EXPECT_EQ(now.positions, ref.positions);
      EXPECT_EQ(now.values, ref.values);
      EXPECT_EQ(buf, ref_buf);
      continue;
    }
    ++changes;
    // Brute force: drop the k smallest |w| after the update (ties: earlier
    // storage index), grow the k largest |gradient| among the positions that
    // were not active before the step (ties: earlier position).
    std::vector<std::pair<float, int64_t>> by_mag;
    for (size_t i = 0; i < ref.positions.size(); ++i) {
      by_mag.push_back({std::fabs(ref.values[i]), static_cast<int64_t>(i)});
    }
    std::sort(by_mag.begin(), by_mag.end());
    std::set<int64_t> dropped;
    for (int64_t i = 0; i < k; ++i) dropped.insert(ref.positions[by_mag[i].second]);
    const std::set<int64_t> active(old.positions.begin(), old.positions.end());
    std::vector<std::pair<float, int64_t>> by_grad;
    for (int64_t pos = 0; pos < total; ++pos) {
      if (!active.contains(pos)) by_grad.push_back({-std::fabs(grad[pos]), pos});
    }
    std::sort(by_grad.begin(), by_grad.end());
    std::set<int64_t> grown;
    for (int64_t i = 0; i < k; ++i) grown.insert(by_grad[i].second);

    std::map<int64_t, std::pair<float, float>> want;  // position -> (value, momentum)
    for (size_t i = 0; i < ref.positions.size(); ++i) {
      if (!dropped.contains(ref.positions[i])) {
        want[ref.positions[i]] = {ref.values[i], ref_buf[i]};
      }
    }
    for (int64_t pos : grown) want[pos] = {0.0f, 0.0f};
    std::map<int64_t, std::pair<float, float>> got;
    for (size_t i = 0; i < now.positions.size(); ++i) {
      got[now.positions[i]] = {now.values[i], buf[i]};
    }
    EXPECT_EQ(got, want) << "step " << t;
    for (int64_t pos : grown) EXPECT_FALSE(dropped.contains(pos));
  }
  EXPECT_EQ(changes, 4);
}

// Tiles of 5, 5 and 2 rows; single rows (fewer inactive positions in a tile
// than k); the default (one tile).
INSTANTIATE_TEST_SUITE_P(TileRows, RiglTest, ::testing::Values(5, 1, 0));

TEST_F(TrainingTest, RiglWithoutBackwardAndAtFullDensity) {
  LayerConfig c = SmallConfig(6, 5, 0.5, 1);
  c.rigl = {true, 0.5, 1, 100, 0};
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok());
  // No backward yet: nothing to grow by, the pattern stays.
  auto r = layer->Step(*backend_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dropped, 0);
  // Dense layer: nothing inactive to grow into.
  c.sparsity = 0.0;
  auto dense = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(dense.ok());
  ForwardBackward(*backend_, *dense, Dense({2, 6}, RandomFloats(12, 1)),
                  Dense({2, 5}, RandomFloats(10, 2)));
  r = dense->Step(*backend_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dropped, 0);
  EXPECT_EQ(r->nnz, 30);
}

// ---------------------------------------------------------------- state

TEST_F(TrainingTest, ExportFromStateContinuesIdentically) {
  const int64_t in = 14, out = 9, batch = 3;
  LayerConfig c = SmallConfig(in, out, 0.6, 77);
  c.relu = true;
  c.optimizer = Hyper(OptimizerKind::kAdamW, 0.01f, 0, false, 0.01f);
  c.rigl = {true, 0.3, 2, 20, 4};
  c.pruning = {true, 0.6, 0.8, 3, 2, 3};
  auto a = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(a.ok());
  auto batch_of = [&](int64_t t) {
    return std::pair{Dense({batch, in}, RandomFloats(batch * in, 500 + t)),
                     Dense({batch, out}, RandomFloats(batch * out, 600 + t))};
  };
  for (int64_t t = 1; t <= 3; ++t) {
    auto [x, g] = batch_of(t);
    ForwardBackward(*backend_, *a, x, g);
    ASSERT_TRUE(a->Step(*backend_).ok());
  }
  auto state = a->ExportState(Device::Cpu());
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->step, 3);
  auto b = SparseLinear::FromState(*backend_, std::move(*state));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->step(), 3);
  EXPECT_EQ(LayerConfigToJson(b->config()), LayerConfigToJson(a->config()));
  for (int64_t t = 4; t <= 9; ++t) {
    auto [x, g] = batch_of(t);
    auto dxa = ForwardBackward(*backend_, *a, x, g, true);
    auto dxb = ForwardBackward(*backend_, *b, x, g, true);
    if (OnCuda()) {
      // The CUDA input gradient adds with atomics: equal up to summation order.
      ExpectNear(Floats(*dxb), ToDouble(Floats(*dxa)), 1e-6, "dx");
    } else {
      EXPECT_EQ(Floats(*dxa), Floats(*dxb));
    }
    auto ra = a->Step(*backend_);
    auto rb = b->Step(*backend_);
    ASSERT_TRUE(ra.ok() && rb.ok());
    EXPECT_EQ(ra->nnz, rb->nnz);
    EXPECT_EQ(ra->dropped, rb->dropped);
    EXPECT_EQ(ra->pruned, rb->pruned);
    const Csr wa = Decode(a->weight()), wb = Decode(b->weight());
    EXPECT_EQ(wa.positions, wb.positions) << t;
    EXPECT_EQ(wa.values, wb.values) << t;
    EXPECT_EQ(Floats(*a->bias()), Floats(*b->bias())) << t;
  }
}

TEST_F(TrainingTest, FromStateChecks) {
  LayerConfig c = SmallConfig(6, 4, 0.5, 1);
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok());
  auto fresh = [&] { return layer->ExportState(Device::Cpu()).value(); };
  {
    LayerState s = fresh();
    s.config.in_features = 7;
    auto r = SparseLinear::FromState(*backend_, std::move(s));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("weight.shape"));
  }
  {
    LayerState s = fresh();
    s.bias.reset();
    auto r = SparseLinear::FromState(*backend_, std::move(s));
    EXPECT_THAT(r.status().message(), HasSubstr("bias"));
  }
  {
    LayerState s = fresh();
    s.optimizer_state.emplace("weight.state9", Dense({s.weight.desc().nnz}, {}));
    auto r = SparseLinear::FromState(*backend_, std::move(s));
    EXPECT_THAT(r.status().message(), HasSubstr("weight.state9"));
  }
  {
    LayerState s = fresh();
    s.optimizer_state.emplace("weight.state1", Dense({3}, {0, 0, 0}));
    auto r = SparseLinear::FromState(*backend_, std::move(s));
    EXPECT_THAT(r.status().message(), HasSubstr("optimizer_state.weight.state1"));
  }
  {
    LayerState s = fresh();
    s.config.rigl.enabled = true;
    s.config.rigl.interval = 0;
    auto r = SparseLinear::FromState(*backend_, std::move(s));
    EXPECT_THAT(r.status().message(), HasSubstr("rigl.interval"));
  }
  {
    // A corrupt pattern (unsorted columns) is refused.
    LayerState s = fresh();
    auto ci = s.weight.data<int32_t>("col_idx");
    ASSERT_GE(ci.size(), 2u);
    const int64_t row_of_two = [&] {
      auto rp = s.weight.data<int32_t>("row_ptr");
      for (int64_t r = 0; r < 4; ++r) {
        if (rp[r + 1] - rp[r] >= 2) return static_cast<int64_t>(rp[r]);
      }
      return int64_t{-1};
    }();
    ASSERT_GE(row_of_two, 0);
    std::swap(ci[row_of_two], ci[row_of_two + 1]);
    auto r = SparseLinear::FromState(*backend_, std::move(s));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("weight"));
  }
}

// N:M layers: every group of m columns of every row keeps exactly n weights,
// forward/backward match the dense float64 reference, steps keep the
// pattern, the state round-trips, and what would break the pattern is refused.
TEST_F(TrainingTest, NmLayersKeepTheirPattern) {
  for (auto [n, m, init] :
       {std::tuple{2, 4, InitKind::kDensePrune}, std::tuple{1, 4, InitKind::kRandomPattern},
        std::tuple{4, 8, InitKind::kRandomPattern}, std::tuple{8, 32, InitKind::kDensePrune}}) {
    SCOPED_TRACE(StrCat(n, ":", m));
    LayerConfig c = SmallConfig(64, 12, 1.0 - static_cast<double>(n) / m, 7);
    c.format = Format::kNm;
    c.nm_n = n;
    c.nm_m = m;
    c.init = init;
    c.optimizer.kind = OptimizerKind::kAdam;
    auto layer = SparseLinear::Create(*backend_, c);
    ASSERT_TRUE(layer.ok()) << layer.status();
    auto check_pattern = [&](const Csr& w) {
      std::vector<int> per_group(c.out_features * (c.in_features / m), 0);
      for (int64_t pos : w.positions)
        ++per_group[pos / c.in_features * (c.in_features / m) + pos % c.in_features / m];
      for (int k : per_group) ASSERT_EQ(k, n);
    };
    const Csr w0 = Decode(layer->weight());
    check_pattern(w0);
    const std::vector<float> xf = RandomFloats(5 * c.in_features, 3);
    const std::vector<float> gf = RandomFloats(5 * c.out_features, 4);
    Tensor xt = Dense({5, c.in_features}, xf), gt = Dense({5, c.out_features}, gf);
    for (int step = 0; step < 3; ++step) {
      const Csr w = Decode(layer->weight());
      auto y = layer->Forward(*backend_, xt, "s");
      ASSERT_TRUE(y.ok()) << y.status();
      ExpectNear(Floats(*y),
                 RefForward(ToDouble(xf), w.ToDense(), ToDouble(Floats(*layer->bias())), 5,
                            c.in_features, c.out_features, false),
                 1e-5, "y");
      ASSERT_TRUE(layer->Backward(*backend_, gt, "s", false).ok());
      auto report = layer->Step(*backend_, 0.5f);
      ASSERT_TRUE(report.ok()) << report.status();
      EXPECT_EQ(report->nnz, c.out_features * (c.in_features / m) * n);
      const Csr after = Decode(layer->weight());
      EXPECT_EQ(after.positions, w0.positions);  // the pattern stays
      EXPECT_NE(after.ToDense(), w.ToDense());   // the values move
    }
    // The state (config JSON with nm) comes back as the same layer.
    auto state = layer->ExportState(Device::Cpu());
    ASSERT_TRUE(state.ok()) << state.status();
    auto json = LayerConfigToJson(state->config);
    auto config = LayerConfigFromJson(json);
    ASSERT_TRUE(config.ok()) << config.status() << json;
    EXPECT_EQ(config->nm_n, n);
    EXPECT_EQ(config->nm_m, m);
    auto back = SparseLinear::FromState(*backend_, *std::move(state));
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(Decode(back->weight()).positions, w0.positions);
  }
  // Refused: what would break the pattern or cannot hold it.
  LayerConfig c = SmallConfig(64, 8, 0.5, 1);
  c.format = Format::kNm;
  c.nm_n = 2;
  c.nm_m = 4;
  auto refused = [&](LayerConfig bad, const char* text) {
    absl::Status s = CheckLayerConfig(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(s.message(), HasSubstr(text));
  };
  EXPECT_TRUE(CheckLayerConfig(c).ok());
  LayerConfig bad = c;
  bad.sparsity = 0.9;
  refused(bad, "sparsity = 0.9 but an 2:4 layer");
  bad = c;
  bad.in_features = 66;
  refused(bad, "in_features = 66 is not a multiple of m = 4");
  bad = c;
  bad.nm_n = 4;
  refused(bad, "nm = 4:4 must have 1 <= n < m <= 32");
  bad = c;
  bad.rigl.enabled = true;
  refused(bad, "rigl changes the pattern");
  bad = c;
  bad.pruning.enabled = true;
  refused(bad, "pruning changes the pattern");
  bad = SmallConfig(64, 8, 0.5, 1);
  bad.nm_n = 2;
  refused(bad, "is given for a csr layer");
  // A state whose weight breaks the pattern (an unstructured CSR) is refused.
  LayerConfig csr = SmallConfig(64, 8, 0.5, 1);
  auto unstructured = SparseLinear::Create(*backend_, csr);
  ASSERT_TRUE(unstructured.ok());
  auto state = unstructured->ExportState(Device::Cpu());
  ASSERT_TRUE(state.ok());
  state->config = c;
  auto adopted = SparseLinear::FromState(*backend_, *std::move(state));
  EXPECT_EQ(adopted.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(adopted.status().message(), HasSubstr("2:4"));
}

TEST_F(TrainingTest, Int64IndicesThroughPruningAndRigl) {
  const int64_t in = 9, out = 7, batch = 3;
  LayerConfig c = SmallConfig(in, out, 0.4, 4);
  auto layer = SparseLinear::Create(*backend_, c);
  ASSERT_TRUE(layer.ok());
  LayerState s = layer->ExportState(Device::Cpu()).value();
  // The same weight with int64 indices.
  const Csr w = Decode(s.weight);
  TensorDesc d = s.weight.desc();
  d.index_dtype = DType::kI64;
  Tensor w64 = Tensor::Allocate(d).value();
  auto rp = w64.data<int64_t>("row_ptr");
  auto ci = w64.data<int64_t>("col_idx");
  std::fill(rp.begin(), rp.end(), 0);
  for (size_t i = 0; i < w.positions.size(); ++i) {
    ci[i] = w.positions[i] % in;
    ++rp[w.positions[i] / in + 1];
  }
  for (int64_t r = 0; r < out; ++r) rp[r + 1] += rp[r];
  std::copy(w.values.begin(), w.values.end(), w64.data<float>("values").begin());
  s.weight = std::move(w64);
  s.config.pruning = {true, 0.4, 0.7, 1, 1, 2};
  s.config.rigl = {true, 0.5, 1, 10, 2};
  auto l64 = SparseLinear::FromState(*backend_, std::move(s));
  ASSERT_TRUE(l64.ok()) << l64.status();
  for (int64_t t = 1; t <= 4; ++t) {
    Tensor x = Dense({batch, in}, RandomFloats(batch * in, t));
    ForwardBackward(*backend_, *l64, x, Dense({batch, out}, RandomFloats(batch * out, 9 + t)));
    auto r = l64->Step(*backend_);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(l64->weight().desc().index_dtype, DType::kI64);
    ASSERT_TRUE(ValidateTensor(l64->weight()).ok());
    // The forward still matches the dense reference.
    const std::vector<double> wd = Decode(l64->weight()).ToDense();
    auto y = l64->Forward(*backend_, x, "");
    ASSERT_TRUE(y.ok());
    ExpectNear(
        Floats(*y),
        RefForward(ToDouble(Floats(x)), wd, ToDouble(Floats(*l64->bias())), batch, in, out, false),
        1e-5, "y");
  }
  EXPECT_EQ(l64->weight().desc().nnz, Kept(in * out, 0.7));
}

}  // namespace
}  // namespace sparsed::train
