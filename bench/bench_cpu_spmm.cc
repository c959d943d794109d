// CPU SpMM throughput: random uniform rows, and a power-law row length
// distribution (a few very long rows), for both operand sides.
//   bench_cpu_spmm --benchmark_filter=Uniform
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "sparsed/backend.h"
#include "sparsed/tensor.h"

namespace sparsed {
namespace {

// A canonical CSR [rows, cols] whose row r holds about row_len(r) entries.
template <class RowLen>
Tensor RandomCsr(int64_t rows, int64_t cols, RowLen row_len, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> col(0, cols - 1);
  std::vector<int64_t> row_ptr{0};
  std::vector<int32_t> col_idx;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> cs;
    const int64_t len = std::min<int64_t>(cols, row_len(r, rng));
    for (int64_t i = 0; i < len; ++i) cs.push_back(static_cast<int32_t>(col(rng)));
    std::sort(cs.begin(), cs.end());
    cs.erase(std::unique(cs.begin(), cs.end()), cs.end());
    col_idx.insert(col_idx.end(), cs.begin(), cs.end());
    row_ptr.push_back(static_cast<int64_t>(col_idx.size()));
  }
  const int64_t nnz = static_cast<int64_t>(col_idx.size());
  Tensor t = Tensor::Allocate({Format::kCsr, DType::kF32, DType::kI32, {rows, cols}, nnz}).value();
  std::span<int32_t> rp = t.data<int32_t>("row_ptr");
  for (int64_t r = 0; r <= rows; ++r) rp[r] = static_cast<int32_t>(row_ptr[r]);
  std::copy(col_idx.begin(), col_idx.end(), t.data<int32_t>("col_idx").begin());
  std::uniform_real_distribution<float> val(-1, 1);
  for (float& v : t.data<float>("values")) v = val(rng);
  return t;
}

Tensor RandomDense(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> val(-1, 1);
  Tensor t = Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0}).value();
  for (float& v : t.data<float>("values")) v = val(rng);
  return t;
}

void Run(benchmark::State& state, const Tensor& s, bool sparse_left, int64_t n) {
  const int threads = static_cast<int>(state.range(0));
  std::unique_ptr<Backend> cpu = MakeCpuBackend(threads);
  const int64_t rows = s.desc().rows(), cols = s.desc().cols();
  Tensor d = sparse_left ? RandomDense(cols, n, 2) : RandomDense(n, rows, 2);
  SpmmArgs args;
  args.a = sparse_left ? &s : &d;
  args.b = sparse_left ? &d : &s;
  for (auto _ : state) {
    absl::StatusOr<Tensor> out = cpu->Spmm(args);
    if (!out.ok()) state.SkipWithError(std::string(out.status().message()).c_str());
    benchmark::DoNotOptimize(out);
  }
  // 2 flops per stored entry per dense column.
  state.counters["FLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(s.desc().nnz) * static_cast<double>(n) *
                             static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

const Tensor& Uniform() {
  static const Tensor t = RandomCsr(
      100000, 100000, [](int64_t, std::mt19937_64&) { return int64_t{16}; }, 1);
  return t;
}

const Tensor& PowerLaw() {
  // Row lengths ~ Pareto: most rows short, a few with tens of thousands.
  static const Tensor t = RandomCsr(
      100000, 100000,
      [](int64_t, std::mt19937_64& rng) {
        const double u = std::uniform_real_distribution<double>(1e-6, 1.0)(rng);
        return static_cast<int64_t>(4.0 / std::pow(u, 0.8));
      },
      3);
  return t;
}

void BM_UniformSparseLeft(benchmark::State& s) { Run(s, Uniform(), true, 64); }
void BM_UniformSparseRight(benchmark::State& s) { Run(s, Uniform(), false, 64); }
void BM_PowerLawSparseLeft(benchmark::State& s) { Run(s, PowerLaw(), true, 64); }

BENCHMARK(BM_UniformSparseLeft)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_UniformSparseRight)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PowerLawSparseLeft)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace sparsed

BENCHMARK_MAIN();
