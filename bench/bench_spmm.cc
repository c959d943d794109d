// CSR SpMM on the GPU: every variant, cuSPARSE's best algorithm and the
// tuner's choice, per matrix x N x dtype. Median of CUDA-event timings after a
// warm-up; GFLOP/s; effective bandwidth (A, B and C each moved once) against
// the measured device-to-device copy rate; fraction of the roofline (the
// larger of the FLOP time at the measured f32 FMA rate and that byte time).
//
//   bench_spmm [--matrices DIR] [--n 32,128,512] [--dtypes f32,f16,bf16]
//              [--runs 20] [--quick] [--out results.md]
// Variants are timed in interleaved rounds (each runs once per round).
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "bench_check.h"
#include "cuda_check.h"
#include "event_timer.h"
#include "sparsed/cast.h"
#include "sparsed/tune_db.h"
#include "spmm/csr_spmm.h"
#include "spmm/csr_spmm_tuner.h"
#include "spmm_matrices.h"

namespace sparsed::bench {
namespace {

using cuda::CsrSpmmProblem;
using cuda::CsrSpmmVariant;
using cuda::ExecContext;
using cuda::Workspace;

struct Matrix {
  std::string name;
  Tensor csr;  // host, f32, int32
};

// Device-to-device copy rate in bytes/s, counting bytes read plus written.
double MeasureCopyRate(const ExecContext& ctx, Workspace& ws) {
  const int64_t bytes = int64_t{1} << 30;
  void* src = Must(ws.Alloc(bytes));
  void* dst = Must(ws.Alloc(bytes));
  CHECK_OK(cuda::CudaStatus(cudaMemsetAsync(src, 1, bytes, ctx.stream), "memset"));
  const float ms = MedianEventMs(ctx.stream, 1, 10, [&] {
    cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ctx.stream);
  });
  return 2.0 * bytes / (ms * 1e-3);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Row {
  std::string matrix, dtype;
  int64_t m = 0, nnz = 0, n = 0;
  std::map<std::string, double> ms;  // per variant
  std::string cusparse_best, tuned;
  double cusparse_ms = 0, tuned_ms = 0, bytes = 0, flops = 0;
};

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

extern double MeasureFmaRate(cudaStream_t stream);  // fma_rate.cu

int Main(int argc, char** argv) {
  CLI::App app{"CSR SpMM benchmark: our variants vs cuSPARSE, and the tuner's choice"};
  std::string matrices_dir = "../shared/data/matrices", out_path, n_list = "32,128,512",
              dtype_list = "f32,f16,bf16";
  int runs = 20;
  bool quick = false;
  app.add_option("--matrices", matrices_dir, "folder of .mtx files");
  app.add_option("--n", n_list, "dense column counts");
  app.add_option("--dtypes", dtype_list, "value types");
  app.add_option("--runs", runs, "interleaved timed rounds (median)");
  app.add_flag("--quick", quick, "small synthetic matrices only (smoke run)");
  app.add_option("--out", out_path, "also write the markdown table here");
  CLI11_PARSE(app, argc, argv);

  std::vector<int64_t> ns;
  std::vector<std::string> dtypes;
  {
    std::stringstream s(n_list);
    for (std::string t; std::getline(s, t, ',');) ns.push_back(std::stoll(t));
    std::stringstream d(dtype_list);
    for (std::string t; std::getline(d, t, ',');) dtypes.push_back(t);
  }

  CHECK_OK(cuda::CudaStatus(cudaSetDevice(0), "cudaSetDevice"));
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  ExecContext ctx;
  ctx.device = 0;
  ctx.num_sms = prop.multiProcessorCount;
  CHECK_OK(
      cuda::CudaStatus(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking), "stream"));
  CHECK_OK(cuda::CusparseStatus(cusparseCreate(&ctx.cusparse), "cusparseCreate"));
  cusparseSetStream(ctx.cusparse, ctx.stream);

  double copy_rate = 0;
  {
    Workspace ws(ctx);
    copy_rate = MeasureCopyRate(ctx, ws);
    CHECK_OK(ws.Sync());
  }
  const double fma_rate = MeasureFmaRate(ctx.stream);  // FLOP/s (2 per FMA)
  std::printf("GPU %s (%d SMs): copy %.0f GB/s (read+write), f32 FMA %.1f TFLOP/s\n", prop.name,
              prop.multiProcessorCount, copy_rate / 1e9, fma_rate / 1e12);

  std::vector<Matrix> mats;
  if (quick) {
    mats.push_back({"uniform_8k_1%", UniformRandomCsr(8192, 8192, 0.01, 1)});
    mats.push_back({"rmat_s12", RmatCsr(12, 16, 2)});
    mats.push_back({"laplace_128", Laplacian5Csr(128)});
  } else {
    mats.push_back({"uniform_64k_0.1%", UniformRandomCsr(65536, 65536, 0.001, 1)});
    mats.push_back({"uniform_64k_1%", UniformRandomCsr(65536, 65536, 0.01, 2)});
    mats.push_back({"rmat_s18_ef16", RmatCsr(18, 16, 3)});
    mats.push_back({"laplace5_1024", Laplacian5Csr(1024)});
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(matrices_dir)) {
      for (const auto& e : std::filesystem::directory_iterator(matrices_dir)) {
        if (e.path().extension() == ".mtx") files.push_back(e.path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      mats.push_back({f.stem().string(), Must(MatrixMarketCsr(f.string()))});
  }

  std::vector<Row> rows;
  std::mt19937_64 rng(42);
  for (const Matrix& mat : mats) {
    const TensorDesc& d = mat.csr.desc();
    for (const std::string& dt_name : dtypes) {
      const DType dt = ParseDType(dt_name).value_or(DType::kF32);
      Tensor a_host = dt == DType::kF32 ? Must(mat.csr.Clone()) : Must(CastValues(mat.csr, dt));
      Tensor a = Must(a_host.CopyTo(Device::Cuda(0)));
      for (int64_t n : ns) {
        Workspace ws(ctx);
        Tensor b_host =
            Must(Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {d.cols(), n}, 0}));
        std::uniform_real_distribution<float> u(-1, 1);
        for (float& x : b_host.data<float>("values")) x = u(rng);
        if (dt != DType::kF32) b_host = Must(CastValues(b_host, dt));
        Tensor b = Must(b_host.CopyTo(Device::Cuda(0)));
        float* c = Must(ws.AllocArray<float>(d.rows() * n));
        CsrSpmmProblem p;
        p.m = d.rows();
        p.k = d.cols();
        p.n = n;
        p.nnz = d.nnz;
        p.row_ptr = a.data<int32_t>("row_ptr").data();
        p.col_idx = a.data<int32_t>("col_idx").data();
        p.a_values = a.component("values")->data();
        p.b = b.component("values")->data();
        p.type = dt == DType::kF16    ? cuda::ValueType::kF16
                 : dt == DType::kBF16 ? cuda::ValueType::kBF16
                                      : cuda::ValueType::kF32;
        p.c = c;
        p.stats = Must(cuda::RowStatsOf(p.row_ptr, p.m, p.nnz, ctx, ws));

        Row row;
        row.matrix = mat.name;
        row.dtype = dt_name;
        row.m = p.m;
        row.nnz = p.nnz;
        row.n = n;
        const int64_t vb = cuda::SizeOf(p.type);
        row.bytes =
            static_cast<double>(p.nnz * (4 + vb) + (p.m + 1) * 4 + p.k * n * vb + p.m * n * 4);
        row.flops = 2.0 * p.nnz * n;
        std::vector<cuda::CsrSpmmTuner::Candidate> candidates;
        for (const CsrSpmmVariant* v : cuda::CsrSpmmVariants()) {
          if (!v->Supports(p)) continue;
          absl::StatusOr<cuda::Plan*> plan = v->Prepare(p, ctx, ws);
          if (!plan.ok()) {
            std::printf("  %s %s n=%ld: %s unavailable: %s\n", mat.name.c_str(), dt_name.c_str(),
                        static_cast<long>(n), std::string(v->name()).c_str(),
                        plan.status().ToString().c_str());
            continue;
          }
          candidates.emplace_back(v, *plan);
        }
        // Interleaved rounds: every variant sees the same clocks and caches.
        const std::vector<double> ms =
            cuda::CsrSpmmTuner::TimeInterleaved(candidates, p, ctx, runs);
        for (size_t i = 0; i < candidates.size(); ++i) {
          const std::string name(candidates[i].first->name());
          if (!std::isfinite(ms[i])) {
            std::printf("  %s failed to run\n", name.c_str());
            continue;
          }
          row.ms[name] = ms[i];
          if (name.rfind("cusparse", 0) == 0 &&
              (row.cusparse_best.empty() || ms[i] < row.cusparse_ms)) {
            row.cusparse_best = name;
            row.cusparse_ms = ms[i];
          }
        }
        // The tuner's choice, as the daemon would make it (fresh database).
        std::unique_ptr<TuneDb> db = Must(TuneDb::Open(""));
        cuda::CsrSpmmTuner tuner(db.get(), prop.name, "");
        row.tuned = Must(tuner.Run(p, ctx, ws)).variant;
        row.tuned_ms = row.ms.count(row.tuned) ? row.ms[row.tuned] : 0;
        CHECK_OK(ws.Sync());
        std::printf(
            "%-18s %-4s n=%-4ld nnz=%-9ld cusparse %-18s %8.4f ms | tuned %-18s %8.4f ms | x%.2f\n",
            mat.name.c_str(), dt_name.c_str(), static_cast<long>(n), static_cast<long>(p.nnz),
            row.cusparse_best.c_str(), row.cusparse_ms, row.tuned.c_str(), row.tuned_ms,
            row.tuned_ms > 0 ? row.cusparse_ms / row.tuned_ms : 0.0);
        std::fflush(stdout);
        rows.push_back(std::move(row));
      }
    }
  }

  // The table.
  std::vector<std::string> variants;
  for (const CsrSpmmVariant* v : cuda::CsrSpmmVariants()) variants.emplace_back(v->name());
  std::ostringstream md;
  md << "GPU: " << prop.name << "; copy rate " << Fmt("%.0f", copy_rate / 1e9)
     << " GB/s (read+write); f32 FMA " << Fmt("%.1f", fma_rate / 1e12) << " TFLOP/s; " << runs
     << " interleaved timed rounds (every variant once per round), median.\n\n";
  md << "| matrix | dtype | N | rows | nnz |";
  for (const std::string& v : variants) md << " " << v << " ms |";
  md << " cuSPARSE best | tuned | tuned ms | vs cuSPARSE | GFLOP/s | eff. GB/s | % copy | % "
        "roofline |\n|";
  for (size_t i = 0; i < 13 + variants.size(); ++i) md << "---|";
  md << "\n";
  std::map<std::string, std::vector<double>> ratios;
  std::vector<double> all_ratios;
  for (const Row& r : rows) {
    md << "| " << r.matrix << " | " << r.dtype << " | " << r.n << " | " << r.m << " | " << r.nnz
       << " |";
    for (const std::string& v : variants) {
      auto it = r.ms.find(v);
      md << " " << (it == r.ms.end() ? std::string("-") : Fmt("%.4f", it->second)) << " |";
    }
    const double ratio = r.tuned_ms > 0 && r.cusparse_ms > 0 ? r.cusparse_ms / r.tuned_ms : 0;
    if (ratio > 0) {
      ratios[r.dtype].push_back(ratio);
      all_ratios.push_back(ratio);
    }
    const double t = r.tuned_ms * 1e-3;
    const double floor_s = std::max(r.flops / fma_rate, r.bytes / copy_rate);
    md << " " << r.cusparse_best << " " << Fmt("%.4f", r.cusparse_ms) << " | " << r.tuned << " | "
       << Fmt("%.4f", r.tuned_ms) << " | " << Fmt("%.2fx", ratio) << " | "
       << Fmt("%.0f", t > 0 ? r.flops / t / 1e9 : 0) << " | "
       << Fmt("%.0f", t > 0 ? r.bytes / t / 1e9 : 0) << " | "
       << Fmt("%.0f%%", t > 0 ? 100.0 * r.bytes / t / copy_rate : 0) << " | "
       << Fmt("%.0f%%", t > 0 ? 100.0 * floor_s / t : 0) << " |\n";
  }
  auto geomean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += std::log(x);
    return v.empty() ? 0.0 : std::exp(s / v.size());
  };
  md << "\n";
  for (const auto& [dt, v] : ratios) {
    md << "- " << dt << ": tuned vs best cuSPARSE, geometric mean " << Fmt("%.2fx", geomean(v))
       << ", worst " << Fmt("%.2fx", *std::min_element(v.begin(), v.end())) << " over " << v.size()
       << " cases\n";
  }
  if (!all_ratios.empty()) {
    md << "- all: geometric mean " << Fmt("%.2fx", geomean(all_ratios)) << ", worst "
       << Fmt("%.2fx", *std::min_element(all_ratios.begin(), all_ratios.end())) << " over "
       << all_ratios.size() << " cases\n";
  }
  std::printf("\n%s", md.str().c_str());
  if (!out_path.empty()) std::ofstream(out_path) << md.str();
  cusparseDestroy(ctx.cusparse);
  cudaStreamDestroy(ctx.stream);
  return 0;
}

}  // namespace sparsed::bench

int main(int argc, char** argv) { return sparsed::bench::Main(argc, argv); }
