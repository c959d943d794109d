// The Sparse DNN chain (bench/dnn_graph: Y ← clamp(relu(Y·W_i + b), 0, 32),
// 1024 neurons, 32 non-zeros per row, batch 1200, 30 layers) on the CUDA
// backend in-process, several ways per layer, each chain queued in one
// OpBatch (the way Graphs.Run queues it; device time from the batch's CUDA
// events), the ways interleaved round by round:
//   scatter     Y·W, W CSR as given (the scatter kernel on transposed D and C)
//   variants    Y·Wtᵀ, Wt = Wᵀ stored CSR (the tuned CSR variants, S·Dᵀ form)
//   gather_cI   Y·Wtᵀ with CudaBackendOptions::csr_dense_gather (row gather),
//               one way per compiled configuration I (csr_dense_gather_config)
// and, for the default backend, the same chain called op by op outside a
// batch (each op synchronised) for the host wall time. Checks every way's
// result against the CPU backend's (float64 accumulation).
//
//   bench_dnn_layer [--layers 30] [--rows 1200] [--neurons 1024] [--rounds 20]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "sparsed/backend.h"
#include "sparsed/convert.h"
#include "sparsed/op_batch.h"

namespace sparsed::bench {
namespace {

template <class T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "bench_dnn_layer: %s\n", std::string(v.status().message()).c_str());
    std::exit(1);
  }
  return *std::move(v);
}

Tensor Csr(int64_t n, int per_row, std::mt19937_64& rng) {
  auto t = Must(Tensor::Allocate({Format::kCsr, DType::kF32, DType::kI32, {n, n}, n * per_row}));
  auto ptr = t.data<int32_t>("row_ptr");
  auto col = t.data<int32_t>("col_idx");
  auto val = t.data<float>("values");
  std::uniform_real_distribution<float> value(0.0f, 0.125f);
  std::vector<int32_t> cols(n);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t c = 0; c < n; ++c) cols[c] = static_cast<int32_t>(c);
    for (int j = 0; j < per_row; ++j) {
      std::swap(cols[j], cols[j + rng() % (n - j)]);
    }
    std::sort(cols.begin(), cols.begin() + per_row);
    ptr[r] = static_cast<int32_t>(r * per_row);
    for (int j = 0; j < per_row; ++j) {
      col[r * per_row + j] = cols[j];
      val[r * per_row + j] = value(rng);
    }
  }
  ptr[n] = static_cast<int32_t>(n * per_row);
  return t;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Way {
  std::string name;
  Backend* backend;
  const std::vector<Tensor>* weights;
  bool transpose_b;
};

int Main(int argc, char** argv) {
  CLI::App app{"The Sparse DNN chain on the CUDA backend, several ways"};
  int layers = 30, rounds = 20;
  int64_t rows = 1200, neurons = 1024;
  app.add_option("--layers", layers);
  app.add_option("--rows", rows);
  app.add_option("--neurons", neurons);
  app.add_option("--rounds", rounds);
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 rng(16);
  auto y0 = Must(Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {rows, neurons}, 0}));
  for (float& v : y0.data<float>("values")) v = rng() % 10 < 3 ? 1.0f : 0.0f;
  auto bias = Must(Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {neurons}, 0}));
  for (float& v : bias.data<float>("values")) v = -0.3f;
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  std::vector<Tensor> w_host, w_dev, wt_dev;
  for (int i = 0; i < layers; ++i) {
    w_host.push_back(Csr(neurons, 32, rng));
    w_dev.push_back(Must(w_host.back().CopyTo(Device::Cuda(0))));
    wt_dev.push_back(Must(Must(cpu->Transpose(w_host.back())).CopyTo(Device::Cuda(0))));
  }
  const Tensor y0_dev = Must(y0.CopyTo(Device::Cuda(0)));
  const Tensor bias_dev = Must(bias.CopyTo(Device::Cuda(0)));

  auto chain = [&](Backend& b, const Tensor& x, const Tensor& bv, const std::vector<Tensor>& ws,
                   bool transpose_b, OpBatch* batch,
                   std::vector<int>* marks) -> absl::StatusOr<Tensor> {
    Tensor h;
    for (int i = 0; i < layers; ++i) {
      SpmmArgs args;
      args.a = i == 0 ? &x : &h;
      args.b = &ws[i];
      args.transpose_b = transpose_b;
      args.epilogue.bias = &bv;
      args.epilogue.relu = true;
      args.epilogue.clamp_max = 32.0f;
      absl::StatusOr<Tensor> next = b.Spmm(args);
      if (!next.ok()) return next.status();
      h = *std::move(next);
      if (batch != nullptr) marks->push_back(batch->Mark());
    }
    return h;
  };
  const std::vector<float> want = [&] {
    Tensor out = Must(chain(*cpu, y0, bias, w_host, false, nullptr, nullptr));
    auto v = out.data<float>("values");
    return std::vector<float>(v.begin(), v.end());
  }();

  CudaBackendOptions plain_options;
  std::unique_ptr<Backend> plain = Must(MakeCudaBackend(plain_options));
  std::vector<std::unique_ptr<Backend>> gathers;
  std::vector<Way> ways = {{"scatter Y·W", plain.get(), &w_dev, false},
                           {"variants Y·Wtᵀ", plain.get(), &wt_dev, true}};
  const std::vector<std::string> configs = CudaDenseGatherConfigNames();
  for (size_t i = 0; i < configs.size(); ++i) {
    CudaBackendOptions o;
    o.csr_dense_gather = true;
    o.csr_dense_gather_config = static_cast<int>(i);
    gathers.push_back(Must(MakeCudaBackend(o)));
    ways.push_back(
        {"gather_c" + std::to_string(i) + " Y·Wtᵀ", gathers.back().get(), &wt_dev, true});
  }
  std::printf("DNN chain: %d layers, %lld x %lld activations, %lld neurons, 32 per row, f32\n",
              layers, static_cast<long long>(rows), static_cast<long long>(neurons),
              static_cast<long long>(neurons));
  for (size_t i = 0; i < configs.size(); ++i) {
    std::printf("gather_c%zu: %s\n", i, configs[i].c_str());
  }
  struct Times {
    std::vector<double> chain_ms, layer_ms, wall_ms;
    double err = 0;
    std::string failed;  // a way that failed is reported and not run again
  };
  std::vector<Times> times(ways.size());
  for (int round = 0; round < rounds + 2; ++round) {  // two warm-up rounds (tuning)
    for (size_t w = 0; w < ways.size(); ++w) {
      const Way& way = ways[w];
      Times& t = times[w];
      if (!t.failed.empty()) continue;
      const auto t0 = std::chrono::steady_clock::now();
      auto batch = Must(way.backend->BeginBatch());
      std::vector<int> marks = {batch->Mark()};
      absl::StatusOr<Tensor> result =
          chain(*way.backend, y0_dev, bias_dev, *way.weights, way.transpose_b, batch.get(), &marks);
      absl::Status s = batch->Finish();
      if (s.ok()) s = result.status();
      if (!s.ok()) {
        t.failed = std::string(s.message());
        std::fprintf(stderr, "bench_dnn_layer: %s: %s\n", way.name.c_str(), t.failed.c_str());
        continue;
      }
      const Tensor& out = *result;
      const double wall =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (round < 2) continue;
      t.chain_ms.push_back(batch->MillisecondsBetween(marks.front(), marks.back()));
      for (size_t i = 1; i < marks.size(); ++i) {
        t.layer_ms.push_back(batch->MillisecondsBetween(marks[i - 1], marks[i]));
      }
      t.wall_ms.push_back(wall);
      if (round == rounds + 1) {
        Tensor host = Must(out.CopyTo(Device::Cpu()));
        auto got = host.data<float>("values");
        for (size_t i = 0; i < want.size(); ++i) {
          t.err = std::max(t.err, std::abs(static_cast<double>(got[i]) - want[i]) /
                                      std::max(1.0, std::abs(static_cast<double>(want[i]))));
        }
      }
    }
  }
  std::printf("%-20s %14s %14s %14s %12s\n", "way", "chain GPU ms", "layer GPU ms", "batch wall ms",
              "max rel err");
  int failures = 0;
  for (size_t w = 0; w < ways.size(); ++w) {
    if (!times[w].failed.empty()) {
      std::printf("%-20s failed: %s\n", ways[w].name.c_str(), times[w].failed.c_str());
      ++failures;
      continue;
    }
    const bool wrong = times[w].err > 1e-4;  // the chain's float error is ~1e-7
    std::printf("%-20s %14.4f %14.4f %14.4f %12.2e%s\n", ways[w].name.c_str(),
                Median(times[w].chain_ms), Median(times[w].layer_ms), Median(times[w].wall_ms),
                times[w].err, wrong ? "  WRONG" : "");
    failures += wrong;
  }
  // The default way again, op by op outside a batch: every op synchronised.
  std::vector<double> unbatched;
  for (int round = 0; round < rounds + 2; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor out = Must(chain(*plain, y0_dev, bias_dev, w_dev, false, nullptr, nullptr));
    const double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (round >= 2) unbatched.push_back(wall);
  }
  std::printf("scatter Y·W op by op (each synchronised): wall %.4f ms median of %d\n",
              Median(unbatched), rounds);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sparsed::bench

int main(int argc, char** argv) { return sparsed::bench::Main(argc, argv); }
