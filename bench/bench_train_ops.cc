// The sparse products of a SparseLinear training step on the GPU, through the
// CUDA backend (what the daemon runs), against cuSPARSE on the same operands
// in the same run:
//   forward  Y  = X · Wᵀ          (cusparseSpMM, W not transposed, Yᵀ = W · Xᵀ)
//   input    dX = dY · W          (cusparseSpMM with opA = TRANSPOSE)
//   weight   dW = (dYᵀ · X) ⊙ W   (cusparseSDDMM)
// W is CSR [out, in] f32 with a uniformly random pattern; X, dY are dense f32.
// Each timing is one call including its synchronisation (the backend's calls
// return finished results), median of --runs after warm-up. The backend's
// results are checked against cuSPARSE's (relative Frobenius error).
//
//   bench_train_ops [--runs 50] [--out results.md]
#include <cuda_runtime.h>
#include <cusparse.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_check.h"
#include "bench_cuda_check.h"
#include "sparsed/backend.h"
#include "sparsed/gpu_info.h"
#include "sparsed/train_ops.h"

namespace sparsed::bench {
namespace {

// Median milliseconds of `reps` synchronised calls after `warmup`.
template <class F>
double MedianMs(int warmup, int reps, F&& call) {
  std::vector<double> ms;
  for (int i = 0; i < warmup + reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    call();
    CHECK_CUDA(cudaDeviceSynchronize());
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

Tensor HostDense(std::vector<int64_t> shape, std::mt19937_64& rng) {
  Tensor t = Must(Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, shape, 0}));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float& v : t.data<float>("values")) v = u(rng);
  return t;
}

// A uniformly random CSR pattern with `nnz_per_row` entries per row.
Tensor HostCsr(int64_t rows, int64_t cols, int64_t nnz_per_row, std::mt19937_64& rng) {
  Tensor t = Must(
      Tensor::Allocate({Format::kCsr, DType::kF32, DType::kI32, {rows, cols}, rows * nnz_per_row}));
  auto rp = t.data<int32_t>("row_ptr");
  auto ci = t.data<int32_t>("col_idx");
  auto v = t.data<float>("values");
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<int32_t> all(cols);
  for (int64_t r = 0; r < rows; ++r) {
    rp[r] = static_cast<int32_t>(r * nnz_per_row);
    for (int64_t c = 0; c < cols; ++c) all[c] = static_cast<int32_t>(c);
    // Partial Fisher-Yates: the first nnz_per_row of a random permutation.
    for (int64_t i = 0; i < nnz_per_row; ++i) {
      std::uniform_int_distribution<int64_t> pick(i, cols - 1);
      std::swap(all[i], all[pick(rng)]);
    }
    std::sort(all.begin(), all.begin() + nnz_per_row);
    for (int64_t i = 0; i < nnz_per_row; ++i) {
      ci[r * nnz_per_row + i] = all[i];
      v[r * nnz_per_row + i] = u(rng);
    }
  }
  rp[rows] = static_cast<int32_t>(rows * nnz_per_row);
  return t;
}

double RelError(const Tensor& got, const float* want_device, int64_t count) {
  Tensor g = Must(got.CopyTo(Device::Cpu()));
  std::vector<float> w(count);
  CHECK_CUDA(cudaMemcpy(w.data(), want_device, count * 4, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  auto gv = g.data<float>("values");
  for (int64_t i = 0; i < count; ++i) {
    num += (double{gv[i]} - w[i]) * (double{gv[i]} - w[i]);
    den += double{w[i]} * w[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

struct Case {
  int64_t batch, in, out;
  double sparsity;
};

struct Row {
  std::string op, shape;
  double ours_ms, cusparse_ms, err;
};

void RunCase(Backend& backend, cusparseHandle_t handle, const Case& c, int runs,
             std::vector<Row>& rows) {
  std::mt19937_64 rng(c.batch * 131 + c.in * 7 + c.out);
  const int64_t per_row = std::max<int64_t>(1, std::llround(c.in * (1.0 - c.sparsity)));
  const Device gpu = Device::Cuda(0);
  const Tensor w = Must(HostCsr(c.out, c.in, per_row, rng).CopyTo(gpu));
  const Tensor x = Must(HostDense({c.batch, c.in}, rng).CopyTo(gpu));
  const Tensor dy = Must(HostDense({c.batch, c.out}, rng).CopyTo(gpu));
  const int64_t nnz = w.desc().nnz;
  std::ostringstream shape;
  shape << c.out << "x" << c.in << " s=" << c.sparsity << " nnz=" << nnz << " batch=" << c.batch;

  // cuSPARSE descriptors over the same device arrays. Row-major [r, c] is
  // column-major [c, r], so each product is posed on transposes.
  cusparseSpMatDescr_t w_desc;
  CHECK_CUSPARSE(cusparseCreateCsr(
      &w_desc, c.out, c.in, nnz, const_cast<int32_t*>(w.data<int32_t>("row_ptr").data()),
      const_cast<int32_t*>(w.data<int32_t>("col_idx").data()),
      const_cast<float*>(w.data<float>("values").data()), CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
      CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));
  float *y_ref = nullptr, *dx_ref = nullptr, *dw_ref = nullptr;
  CHECK_CUDA(cudaMalloc(&y_ref, c.batch * c.out * 4));
  CHECK_CUDA(cudaMalloc(&dx_ref, c.batch * c.in * 4));
  CHECK_CUDA(cudaMalloc(&dw_ref, nnz * 4));
  const float alpha = 1.0f, beta = 0.0f;
  cusparseDnMatDescr_t xt, dyt, yt, dxt;  // column-major views of Xᵀ, dYᵀ, Yᵀ, dXᵀ
  CHECK_CUSPARSE(cusparseCreateDnMat(&xt, c.in, c.batch, c.in,
                                     const_cast<float*>(x.data<float>("values").data()), CUDA_R_32F,
                                     CUSPARSE_ORDER_COL));
  CHECK_CUSPARSE(cusparseCreateDnMat(&dyt, c.out, c.batch, c.out,
                                     const_cast<float*>(dy.data<float>("values").data()),
                                     CUDA_R_32F, CUSPARSE_ORDER_COL));
  CHECK_CUSPARSE(
      cusparseCreateDnMat(&yt, c.out, c.batch, c.out, y_ref, CUDA_R_32F, CUSPARSE_ORDER_COL));
  CHECK_CUSPARSE(
      cusparseCreateDnMat(&dxt, c.in, c.batch, c.in, dx_ref, CUDA_R_32F, CUSPARSE_ORDER_COL));
  // SDDMM: dW = (dYᵀ · X) at W's pattern; dYᵀ is dY row-major read
  // column-major, X row-major.
  cusparseDnMatDescr_t dyt_a, x_b;
  CHECK_CUSPARSE(cusparseCreateDnMat(&dyt_a, c.out, c.batch, c.out,
                                     const_cast<float*>(dy.data<float>("values").data()),
                                     CUDA_R_32F, CUSPARSE_ORDER_COL));
  CHECK_CUSPARSE(cusparseCreateDnMat(&x_b, c.batch, c.in, c.in,
                                     const_cast<float*>(x.data<float>("values").data()), CUDA_R_32F,
                                     CUSPARSE_ORDER_ROW));
  cusparseSpMatDescr_t dw_desc;
  CHECK_CUSPARSE(cusparseCreateCsr(
      &dw_desc, c.out, c.in, nnz, const_cast<int32_t*>(w.data<int32_t>("row_ptr").data()),
      const_cast<int32_t*>(w.data<int32_t>("col_idx").data()), dw_ref, CUSPARSE_INDEX_32I,
      CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, CUDA_R_32F));

  size_t b1 = 0, b2 = 0, b3 = 0;
  CHECK_CUSPARSE(cusparseSpMM_bufferSize(handle, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                         CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, w_desc, xt,
                                         &beta, yt, CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, &b1));
  CHECK_CUSPARSE(cusparseSpMM_bufferSize(handle, CUSPARSE_OPERATION_TRANSPOSE,
                                         CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, w_desc, dyt,
                                         &beta, dxt, CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, &b2));
  CHECK_CUSPARSE(cusparseSDDMM_bufferSize(
      handle, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, dyt_a,
      x_b, &beta, dw_desc, CUDA_R_32F, CUSPARSE_SDDMM_ALG_DEFAULT, &b3));
  void* buffer = nullptr;
  CHECK_CUDA(cudaMalloc(&buffer, std::max<size_t>({b1, b2, b3, 16})));
  CHECK_CUSPARSE(cusparseSDDMM_preprocess(
      handle, CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, dyt_a,
      x_b, &beta, dw_desc, CUDA_R_32F, CUSPARSE_SDDMM_ALG_DEFAULT, buffer));
  auto cusparse_forward = [&] {
    CHECK_CUSPARSE(cusparseSpMM(handle, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, w_desc, xt, &beta, yt,
                                CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, buffer));
  };
  auto cusparse_input = [&] {
    CHECK_CUSPARSE(cusparseSpMM(handle, CUSPARSE_OPERATION_TRANSPOSE,
                                CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, w_desc, dyt, &beta, dxt,
                                CUDA_R_32F, CUSPARSE_SPMM_ALG_DEFAULT, buffer));
  };
  auto cusparse_sddmm = [&] {
    CHECK_CUSPARSE(cusparseSDDMM(handle, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                 CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, dyt_a, x_b, &beta,
                                 dw_desc, CUDA_R_32F, CUSPARSE_SDDMM_ALG_DEFAULT, buffer));
  };

  SpmmArgs fwd;
  fwd.a = &x;
  fwd.b = &w;
  fwd.transpose_b = true;
  SpmmArgs inp;
  inp.a = &dy;
  inp.b = &w;
  SddmmArgs sd;
  sd.a = &dy;
  sd.transpose_a = true;
  sd.b = &x;
  sd.pattern = &w;

  const int warmup = 5;
  struct Op {
    const char* name;
    std::function<Tensor()> ours;
    std::function<void()> theirs;
    const float* ref;
    int64_t count;
  };
  const Op ops[] = {
      {"forward Y = X·Wᵀ", [&] { return Must(backend.Spmm(fwd)); }, cusparse_forward, y_ref,
       c.batch * c.out},
      {"input grad dX = dY·W", [&] { return Must(backend.Spmm(inp)); }, cusparse_input, dx_ref,
       c.batch * c.in},
      {"weight grad SDDMM", [&] { return Must(backend.Sddmm(sd)); }, cusparse_sddmm, dw_ref, nnz},
  };
  for (const Op& op : ops) {
    op.theirs();
    CHECK_CUDA(cudaDeviceSynchronize());
    const double err = RelError(op.ours(), op.ref, op.count);
    // Interleave: ours, theirs, ours, theirs (medians of each).
    double ours = 0, theirs = 0;
    std::vector<double> a, b;
    for (int round = 0; round < 3; ++round) {
      a.push_back(MedianMs(warmup, runs, [&] { (void)op.ours(); }));
      b.push_back(MedianMs(warmup, runs, op.theirs));
    }
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    ours = a[1];
    theirs = b[1];
    rows.push_back({op.name, shape.str(), ours, theirs, err});
    std::printf("%-22s %-44s ours %8.4f ms  cuSPARSE %8.4f ms  ratio %.2f  rel.err %.1e\n", op.name,
                shape.str().c_str(), ours, theirs, theirs / ours, err);
    std::fflush(stdout);
  }
  cusparseDestroySpMat(w_desc);
  cusparseDestroySpMat(dw_desc);
  for (cusparseDnMatDescr_t d : {xt, dyt, yt, dxt, dyt_a, x_b}) cusparseDestroyDnMat(d);
  cudaFree(buffer);
  cudaFree(y_ref);
  cudaFree(dx_ref);
  cudaFree(dw_ref);
}

}  // namespace
}  // namespace sparsed::bench

int main(int argc, char** argv) {
  using namespace sparsed;
  using namespace sparsed::bench;
  CLI::App app{"SparseLinear's sparse products: CUDA backend vs cuSPARSE"};
  int runs = 50;
  std::string out_path;
  app.add_option("--runs", runs, "timed calls per median");
  app.add_option("--out", out_path, "also write the markdown table here");
  CLI11_PARSE(app, argc, argv);
  if (ListGpus().empty()) {
    std::fprintf(stderr, "no GPU\n");
    return 1;
  }
  CudaBackendOptions options;
  std::unique_ptr<Backend> backend = Must(MakeCudaBackend(options));
  cusparseHandle_t handle;
  CHECK_CUSPARSE(cusparseCreate(&handle));
  std::vector<Row> rows;
  const Case cases[] = {
      {32, 64, 256, 0.9},      // train_digits' first layer
      {256, 1024, 1024, 0.9},  // a hidden layer
      {256, 4096, 4096, 0.9},  // a large layer
      {256, 4096, 4096, 0.99}, {1024, 4096, 4096, 0.95},
  };
  for (const Case& c : cases) RunCase(*backend, handle, c, runs, rows);
  cusparseDestroy(handle);
  std::ostringstream md;
  md << "| op | layer | ours ms | cuSPARSE ms | cuSPARSE / ours | rel. error |\n"
     << "| --- | --- | --- | --- | --- | --- |\n";
  char buf[256];
  for (const Row& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %s | %.4f | %.4f | %.2f | %.1e |\n", r.op.c_str(),
                  r.shape.c_str(), r.ours_ms, r.cusparse_ms, r.cusparse_ms / r.ours_ms, r.err);
    md << buf;
  }
  std::printf("\n%s", md.str().c_str());
  if (!out_path.empty()) std::ofstream(out_path) << md.str();
  return 0;
}
