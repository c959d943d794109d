// The Sparse DNN chain (bench/dnn_graph: Y ← clamp(relu(Y·W_i + b), 0, 32),
// 1024 neurons, 32 non-zeros per row, batch 1200, 30 layers) on the CUDA
// backend in-process, three ways per layer, each chain queued in one OpBatch
// (the way Graphs.Run queues it; device time from the batch's CUDA events):
//   scatter   Y·W, W CSR as given (the scatter kernel on transposed D and C)
//   variants  Y·Wtᵀ, Wt = Wᵀ stored CSR (the tuned CSR variants, S·Dᵀ form)
//   gather    Y·Wtᵀ with CudaBackendOptions::csr_dense_gather (row gather)
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
  CLI::App app{"The Sparse DNN chain on the CUDA backend, three ways"};
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
                   bool transpose_b, OpBatch* batch, std::vector<int>* marks) {
    Tensor h;
    for (int i = 0; i < layers; ++i) {
      SpmmArgs args;
      args.a = i == 0 ? &x : &h;
      args.b = &ws[i];
      args.transpose_b = transpose_b;
      args.epilogue.bias = &bv;
      args.epilogue.relu = true;
      args.epilogue.clamp_max = 32.0f;
      h = Must(b.Spmm(args));
      if (batch != nullptr) marks->push_back(batch->Mark());
    }
    return h;
  };
  const std::vector<float> want = [&] {
    Tensor out = chain(*cpu, y0, bias, w_host, false, nullptr, nullptr);
    auto v = out.data<float>("values");
    return std::vector<float>(v.begin(), v.end());
  }();

  CudaBackendOptions plain_options, gather_options;
  gather_options.csr_dense_gather = true;
  std::unique_ptr<Backend> plain = Must(MakeCudaBackend(plain_options));
  std::unique_ptr<Backend> gather = Must(MakeCudaBackend(gather_options));
  const Way ways[] = {{"scatter Y·W", plain.get(), &w_dev, false},
                      {"variants Y·Wtᵀ", plain.get(), &wt_dev, true},
                      {"gather Y·Wtᵀ", gather.get(), &wt_dev, true}};
  std::printf("DNN chain: %d layers, %lld x %lld activations, %lld neurons, 32 per row, f32\n",
              layers, static_cast<long long>(rows), static_cast<long long>(neurons),
              static_cast<long long>(neurons));
  std::printf("%-16s %14s %14s %14s %12s\n", "way", "chain GPU ms", "layer GPU ms", "batch wall ms",
              "max rel err");
  for (const Way& way : ways) {
    std::vector<double> chain_ms, layer_ms, wall_ms;
    double err = 0;
    for (int round = 0; round < rounds + 2; ++round) {  // two warm-up rounds (tuning)
      const auto t0 = std::chrono::steady_clock::now();
      auto batch = Must(way.backend->BeginBatch());
      std::vector<int> marks = {batch->Mark()};
      Tensor out =
          chain(*way.backend, y0_dev, bias_dev, *way.weights, way.transpose_b, batch.get(), &marks);
      if (absl::Status s = batch->Finish(); !s.ok()) {
        std::fprintf(stderr, "bench_dnn_layer: %s\n", std::string(s.message()).c_str());
        return 1;
      }
      const double wall =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (round < 2) continue;
      chain_ms.push_back(batch->MillisecondsBetween(marks.front(), marks.back()));
      for (size_t i = 1; i < marks.size(); ++i) {
        layer_ms.push_back(batch->MillisecondsBetween(marks[i - 1], marks[i]));
      }
      wall_ms.push_back(wall);
      if (round == rounds + 1) {
        Tensor host = Must(out.CopyTo(Device::Cpu()));
        auto got = host.data<float>("values");
        for (size_t i = 0; i < want.size(); ++i) {
          err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]) /
                                  std::max(1.0, std::abs(static_cast<double>(want[i]))));
        }
      }
    }
    std::printf("%-16s %14.4f %14.4f %14.4f %12.2e\n", way.name.c_str(), Median(chain_ms),
                Median(layer_ms), Median(wall_ms), err);
  }
  // The default way again, op by op outside a batch: every op synchronised.
  std::vector<double> unbatched;
  for (int round = 0; round < rounds + 2; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor out = chain(*plain, y0_dev, bias_dev, w_dev, false, nullptr, nullptr);
    const double wall =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (round >= 2) unbatched.push_back(wall);
  }
  std::printf("scatter Y·W op by op (each synchronised): wall %.4f ms median of %d\n",
              Median(unbatched), rounds);
  return 0;
}

}  // namespace
}  // namespace sparsed::bench

int main(int argc, char** argv) { return sparsed::bench::Main(argc, argv); }
