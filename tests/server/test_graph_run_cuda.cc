// Op graphs on the CUDA backend (skipped without a GPU): the whole run is
// one OpBatch, queued on one stream with stream-ordered temporaries and one
// wait at the end (sparsed/op_batch.h). Checked against a float64 host
// reference of the Sparse DNN shape, against the same backend's ops called
// one by one, with outputs and temporaries poisoned, with intermediates
// freed and their memory reused while earlier kernels are still queued.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "server/graph_run.h"
#include "server/graph_validate.h"
#include "server/tensor_store.h"
#include "sparsed/backend.h"
#include "sparsed/gpu_info.h"
#include "sparsed/op_batch.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

constexpr float kClamp = 32.0f;

// n x n CSR f32 with `per_row` distinct random columns a row, values in [0, 1/8).
Tensor RandomCsr(int64_t n, int per_row, std::mt19937& rng) {
  TensorDesc d{Format::kCsr, DType::kF32, DType::kI32, {n, n}, n * per_row};
  auto t = Tensor::Allocate(d);
  EXPECT_TRUE(t.ok()) << t.status();
  auto ptr = t->data<int32_t>("row_ptr");
  auto col = t->data<int32_t>("col_idx");
  auto val = t->data<float>("values");
  std::uniform_real_distribution<float> value(0.0f, 0.125f);
  std::vector<int32_t> cols(n);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < n; ++c) cols[c] = static_cast<int32_t>(c);
    std::shuffle(cols.begin(), cols.end(), rng);
    std::sort(cols.begin(), cols.begin() + per_row);
    ptr[r] = static_cast<int32_t>(r * per_row);
    for (int j = 0; j < per_row; ++j) {
      col[r * per_row + j] = cols[j];
      val[r * per_row + j] = value(rng);
    }
  }
  ptr[n] = static_cast<int32_t>(n * per_row);
  return std::move(t).value();
}

// rows x cols f32 of zeros and ones (30% ones), as the DNN's input.
Tensor Activations(int64_t rows, int64_t cols, std::mt19937& rng) {
  auto t = Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  std::bernoulli_distribution one(0.3);
  for (float& v : t->data<float>("values")) v = one(rng) ? 1.0f : 0.0f;
  return std::move(t).value();
}

Tensor Vector(int64_t n, float value) {
  auto t = Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {n}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  for (float& v : t->data<float>("values")) v = value;
  return std::move(t).value();
}

class GraphRunCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (ListGpus().empty()) GTEST_SKIP() << "no GPU is present";
    CudaBackendOptions o;
    o.poison_outputs = true;  // outputs and temporaries start as NaN
    auto b = MakeCudaBackend(o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::move(b).value();
  }

  // Holds `t` on the GPU under `name`; returns the host copy.
  const Tensor& Hold(const std::string& name, Tensor host) {
    auto dev = host.CopyTo(Device::Cuda(0));
    EXPECT_TRUE(dev.ok()) << dev.status();
    auto held = store_.Insert("", std::move(dev).value(), name, {});
    EXPECT_TRUE(held.ok()) << held.status();
    hosts_.push_back(std::move(host));
    return hosts_.back();
  }

  absl::StatusOr<GraphPlan> Validate(const std::string& json) {
    const auto s = google::protobuf::util::JsonStringToMessage(json, &request_);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return ValidateGraph(request_, store_, nullptr, caller_, Device::Cuda(0), limits_);
  }

  std::unique_ptr<Backend> backend_;
  TensorStore store_;
  Caller caller_;
  GraphLimits limits_;
  v1::RunRequest request_;
  std::deque<Tensor> hosts_;
};

// The DNN: `layers` layers of `n` neurons over a batch of `rows`, as one
// repeat over held weights w0..w{layers-1}, result inline.
std::string DnnGraph(int layers) {
  std::string bindings;
  for (int i = 0; i < layers; ++i) {
    bindings += StrCat(i ? "," : "", R"({"operands": [{"ref": {"name": "w)", i, R"("}}]})");
  }
  return StrCat(R"({"ops": [{"name": "y", "repeat": {"times": )", layers,
                R"(, "init": {"ref": {"name": "x"}}, "carry": "h", "params": ["w"], "bindings": [)",
                bindings, R"(], "body": [{"name": "o", "spmm": {"a": {"output": "h"},
                "b": {"output": "w"}, "bias": {"ref": {"name": "b"}}, "relu": true,
                "clampMax": 32}}]}}], "outputs": [{"output": "y", "inline": true}]})");
}

TEST_F(GraphRunCudaTest, DnnChainMatchesFloat64AndTheOpsCalledOneByOne) {
  constexpr int kLayers = 12, kRows = 300;
  constexpr int64_t kN = 512;
  std::mt19937 rng(20261207);
  const Tensor& x = Hold("x", Activations(kRows, kN, rng));
  Hold("b", Vector(kN, -0.3f));
  std::vector<const Tensor*> ws;
  for (int i = 0; i < kLayers; ++i) ws.push_back(&Hold(StrCat("w", i), RandomCsr(kN, 16, rng)));

  // float64 reference.
  std::vector<double> y(x.data<float>("values").begin(), x.data<float>("values").end());
  for (const Tensor* w : ws) {
    std::vector<double> next(kRows * kN, 0.0);
    auto ptr = w->data<int32_t>("row_ptr");
    auto col = w->data<int32_t>("col_idx");
    auto val = w->data<float>("values");
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t k = 0; k < kN; ++k) {
        const double a = y[r * kN + k];
        if (a == 0.0) continue;
        for (int32_t e = ptr[k]; e < ptr[k + 1]; ++e) next[r * kN + col[e]] += a * val[e];
      }
    for (double& v : next) v = std::min(std::max(v - 0.3, 0.0), static_cast<double>(kClamp));
    y = std::move(next);
  }

  auto plan = Validate(DnnGraph(kLayers));
  ASSERT_TRUE(plan.ok()) << plan.status();
  for (int round = 0; round < 3; ++round) {  // the first tunes; later ones reuse freed memory
    auto run = ExecuteGraphPlan(*plan, *backend_);
    ASSERT_TRUE(run.ok()) << run.status();
    ASSERT_EQ(run->outputs.size(), 1u);
    ASSERT_EQ(run->elapsed_ms.size(), static_cast<size_t>(kLayers));
    for (double ms : run->elapsed_ms) EXPECT_GE(ms, 0.0);
    EXPECT_GT(run->compute_ms, 0.0);
    auto out = run->outputs[0].CopyTo(Device::Cpu());
    ASSERT_TRUE(out.ok()) << out.status();
    auto got = out->data<float>("values");
    ASSERT_EQ(got.size(), y.size());
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_FALSE(std::isnan(got[i])) << "round " << round << " element " << i;
      worst = std::max(worst, std::abs(got[i] - y[i]) / std::max(1.0, std::abs(y[i])));
    }
    EXPECT_LT(worst, 1e-4) << "round " << round;
  }

  // The same ops one by one, each synchronised: the same result.
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  Tensor h;
  for (int i = 0; i < kLayers; ++i) {
    SpmmArgs args;
    args.a = i == 0 ? &(*store_.FindByName("", "x"))->tensor : &h;
    args.b = &(*store_.FindByName("", StrCat("w", i)))->tensor;
    args.epilogue.bias = &(*store_.FindByName("", "b"))->tensor;
    args.epilogue.relu = true;
    args.epilogue.clamp_max = kClamp;
    auto next = backend_->Spmm(args);
    ASSERT_TRUE(next.ok()) << next.status();
    h = std::move(next).value();
  }
  auto one_by_one = h.CopyTo(Device::Cpu());
  auto graph = run->outputs[0].CopyTo(Device::Cpu());
  ASSERT_TRUE(one_by_one.ok() && graph.ok());
  auto p = one_by_one->data<float>("values");
  auto q = graph->data<float>("values");
  for (size_t i = 0; i < p.size(); ++i) {
    ASSERT_NEAR(p[i], q[i], 1e-5f * std::max(1.0f, std::abs(p[i]))) << i;
  }
}

// A batch used directly: ops queued without waits, results consumed by later
// ops, intermediates freed mid-batch, one Finish; marks give device times.
TEST_F(GraphRunCudaTest, ABatchQueuesOpsAndFinishWaitsForThem) {
  std::mt19937 rng(7);
  auto x = Activations(256, 1024, rng).CopyTo(Device::Cuda(0));
  auto w = RandomCsr(1024, 32, rng).CopyTo(Device::Cuda(0));
  ASSERT_TRUE(x.ok() && w.ok());
  auto chain = [&](Backend& backend, int layers) -> absl::StatusOr<Tensor> {
    Tensor h;
    for (int i = 0; i < layers; ++i) {
      SpmmArgs args;
      args.a = i == 0 ? &*x : &h;
      args.b = &*w;
      args.alpha = 0.5f;
      args.epilogue.clamp_max = kClamp;
      ASSIGN_OR_RETURN(Tensor next, backend.Spmm(args));
      h = std::move(next);  // the previous result is freed here, in stream order
    }
    return h;
  };
  auto plain = chain(*backend_, 20);
  ASSERT_TRUE(plain.ok()) << plain.status();
  auto batch = backend_->BeginBatch();
  ASSERT_TRUE(batch.ok()) << batch.status();
  const int first = (*batch)->Mark();
  auto queued = chain(*backend_, 20);
  ASSERT_TRUE(queued.ok()) << queued.status();
  const int last = (*batch)->Mark();
  ASSERT_TRUE((*batch)->Finish().ok());
  EXPECT_GT((*batch)->MillisecondsBetween(first, last), 0.0);
  EXPECT_EQ((*batch)->MillisecondsBetween(first, 99), 0.0);
  auto a = plain->CopyTo(Device::Cpu());
  auto b = queued->CopyTo(Device::Cpu());
  batch->reset();
  ASSERT_TRUE(a.ok() && b.ok());
  auto p = a->data<float>("values");
  auto q = b->data<float>("values");
  ASSERT_EQ(p.size(), q.size());
  // The same kernels; D·S scatters with atomics, so only the last bits may differ.
  for (size_t i = 0; i < p.size(); ++i) {
    ASSERT_NEAR(p[i], q[i], 1e-5f * std::max(1.0f, std::abs(p[i]))) << i;
  }
}

}  // namespace
}  // namespace sparsed::server
