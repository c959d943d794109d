// Block-sparse (BSR) × dense SpMM on the GPU: C[M, N] = A[M, K] · B[K, N],
// A BSR with square R×R blocks, bf16 values, f32 accumulation, bf16 output.
// Contenders, on the same operands in the same run:
//   sparsed        our CUDA backend through the public API (Backend::Spmm);
//                  it synchronises and allocates its output, so it is timed
//                  with the host clock: the wall time of one backend call
//   cusparse_bsr   cusparseSpMM, CUSPARSE_SPMM_BSR_ALG1
//   cusparse_bell  cusparseSpMM on the Blocked-ELL equivalent,
//                  CUSPARSE_SPMM_BLOCKED_ELL_ALG1
//   cublas_dense   cublasGemmEx on the dense equivalent of A (zeros filled)
// The library calls are timed with CUDA events (a short spin kernel queued
// ahead of the start event hides the host's launch latency). Every contender
// runs once per round, round-robin, after warm-up rounds; the table gives the
// median. B is rotated among several device copies (enough to exceed the L2
// when the operands would fit in it). Before timing, each contender runs
// once into a poisoned output (0xff bytes, NaN in bf16/f32; the backend's
// own output: CudaBackendOptions.poison_outputs) and sampled rows are
// compared against a float64 CPU reference.
//
//   bench_bsr_spmm [--cases square,llm] [--quick] [--rounds 30] [--warmup 3]
//                  [--pattern balanced|random] [--llm-block 64] [--seed 1]
//                  [--variant NAME] [--flush-l2] [--csv out.csv]
#include "spmm/bsr_spmm.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_check.h"
#include "bench_cuda_check.h"
#include "bsr_problem.h"
#include "jit/jit_cache.h"
#include "sparsed/backend.h"
#include "sparsed/gpu_info.h"
#include "sparsed/half.h"
#include "sparsed/tune_db.h"
#include "spmm/bsr_tc_generator.h"

namespace sparsed::bench {

cudaError_t LaunchSpin(cudaStream_t stream, int64_t ns);  // gpu_spin.cu

namespace {

constexpr double kTolerance = 2e-2;  // relative Frobenius error allowed for bf16 output
const double kNaN = std::nan("");

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double Median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

std::vector<int64_t> ParseInts(const std::string& list) {
  std::vector<int64_t> out;
  std::stringstream s(list);
  for (std::string t; std::getline(s, t, ',');)
    if (!t.empty()) out.push_back(std::stoll(t));
  return out;
}

// Owned device memory.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    CHECK_CUDA(cudaMalloc(&ptr_, std::max<size_t>(bytes, 256)));
  }
  template <class T>
  static DeviceBuffer FromHost(const std::vector<T>& v) {
    DeviceBuffer b(v.size() * sizeof(T));
    CHECK_CUDA(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return b;
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Stream, library handles and the timing machinery shared by every case.
struct Gpu {
  cudaDeviceProp prop{};
  cudaStream_t stream = nullptr;
  cusparseHandle_t sparse = nullptr;
  cublasHandle_t blas = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  int64_t lead_ns = 50000;
  bool flush = false;
  DeviceBuffer flush_buf;

  // Queued ahead of a timed region: the optional L2 flush, then the spin.
  void Prelude() {
    if (flush) CHECK_CUDA(cudaMemsetAsync(flush_buf.get(), 0, flush_buf.bytes(), stream));
    CHECK_CUDA(LaunchSpin(stream, lead_ns));
  }
  // Milliseconds between events around `work` (which queues on `stream`).
  template <class F>
  double TimeEvents(F&& work) {
    Prelude();
    CHECK_CUDA(cudaEventRecord(start, stream));
    work();
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  }
};

Gpu* g_gpu = nullptr;

// Rows `rows` (every one of the n columns) of a device [m, n] matrix, as f32.
std::vector<float> ReadRows(const void* dev, bool f32, bool col_major, int64_t m, int64_t n,
                            const std::vector<int64_t>& rows) {
  const size_t elem = f32 ? 4 : 2;
  std::vector<uint8_t> host(rows.size() * n * elem);
  for (size_t i = 0; i < rows.size(); ++i) {
    uint8_t* dst = host.data() + i * n * elem;
    const uint8_t* base = static_cast<const uint8_t*>(dev);
    if (col_major) {
      CHECK_CUDA(cudaMemcpy2D(dst, elem, base + rows[i] * elem, m * elem, elem, n,
                              cudaMemcpyDeviceToHost));
    } else {
      CHECK_CUDA(cudaMemcpy(dst, base + rows[i] * n * elem, n * elem, cudaMemcpyDeviceToHost));
    }
  }
  std::vector<float> out(rows.size() * n);
  for (size_t i = 0; i < out.size(); ++i) {
    if (f32) {
      std::memcpy(&out[i], host.data() + i * 4, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, host.data() + i * 2, 2);
      out[i] = Bf16ToFloat(h);
    }
  }
  return out;
}

struct CaseSpec {
  std::string group;  // "square" or "llm"
  int64_t m = 0, k = 0, n = 0, r = 0;
  double density = 0;  // target fraction of blocks present
};

// Operands of one case: A on the host, B on the host and on the device.
struct CaseData {
  CaseSpec spec;
  BsrHost a;
  std::vector<uint16_t> b_host;  // row-major [k, n] bf16
  std::vector<Tensor> b;         // device copies, dense bf16 [k, n]
  std::vector<int64_t> rows;     // sampled for the check
  std::vector<double> ref;       // float64 reference of those rows

  int copies() const { return static_cast<int>(b.size()); }
  // Copy `copy` of B as a cuSPARSE fallback may need it: bf16 or f32,
  // row-major [k, n] or column-major (k rows, leading dimension k).
  void* BPtr(int copy, bool f32, bool col_major) {
    if (!f32 && !col_major) return b[copy].component("values")->data();
    std::vector<DeviceBuffer>& v = alt_[(f32 ? 2 : 0) + (col_major ? 1 : 0)];
    if (v.empty()) {
      std::vector<uint16_t> h16 = col_major ? Transposed(b_host, spec.k, spec.n) : b_host;
      std::vector<float> h32;
      if (f32) h32 = Bf16ToF32(h16);
      for (int c = 0; c < copies(); ++c)
        v.push_back(f32 ? DeviceBuffer::FromHost(h32) : DeviceBuffer::FromHost(h16));
    }
    return v[copy].get();
  }

 private:
  std::map<int, std::vector<DeviceBuffer>> alt_;
};

// One implementation being measured.
class Contender {
 public:
  explicit Contender(std::string name) : name_(std::move(name)) {}
  virtual ~Contender() = default;
  // One timed run on copy `copy` of B: milliseconds, or NaN with error() set.
  virtual double TimedRunMs(int copy) = 0;
  // Poisons the output, runs once on copy 0, returns the sampled rows as f32
  // (empty with error() set when the run failed).
  virtual std::vector<float> CheckRows(const std::vector<int64_t>& rows) = 0;

  const std::string& name() const { return name_; }
  const std::string& timing() const { return timing_; }
  const std::string& note() const { return note_; }
  const std::string& error() const { return error_; }

 protected:
  std::string name_, timing_ = "events", note_, error_;
};

// --- sparsed ----------------------------------------------------------------

// The tune database's winner for the case's key (whatever device prefix).
std::string PickedVariant(const TuneDb& db, const CaseData& cd) {
  cuda::BsrSpmmProblem p;
  p.m = cd.spec.m;
  p.n = cd.spec.n;
  p.k = cd.spec.k;
  p.r = p.c = cd.a.r;
  p.type = cuda::ValueType::kBF16;
  p.out_type = cuda::OutType::kBF16;
  p.mean_blocks_per_row = static_cast<double>(cd.a.nnzb()) / std::max<int64_t>(cd.a.mb(), 1);
  const std::string tail = cuda::BsrSpmmTuneKey("", p);
  for (const TuneEntry& e : db.List()) {
    if (e.key.size() >= tail.size() &&
        e.key.compare(e.key.size() - tail.size(), tail.size(), tail) == 0)
      return e.variant;
  }
  return "";
}

class SparsedContender : public Contender {
 public:
  SparsedContender(Backend& timed, Backend& check, TuneDb& db, CaseData& cd)
      : Contender("sparsed"), timed_(timed), check_(check), db_(db), cd_(cd) {
    timing_ = "wall of one backend call";
  }

  absl::Status Init(const std::string& forced) {
    const BsrHost& a = cd_.a;
    TensorDesc d;
    d.format = Format::kBsr;
    d.dtype = DType::kBF16;
    d.index_dtype = DType::kI32;
    d.shape = {a.m, a.k};
    d.nnz = a.nnzb();
    d.block_rows = a.r;
    d.block_cols = a.r;
    absl::StatusOr<Tensor> host = Tensor::Allocate(d);
    if (!host.ok()) return host.status();
    std::span<int32_t> rp = host->data<int32_t>("block_row_ptr");
    std::span<int32_t> ci = host->data<int32_t>("block_col_idx");
    std::span<uint16_t> v = host->data<uint16_t>("values");
    if (rp.size() != a.row_ptr.size() || ci.size() != a.col_idx.size() ||
        v.size() != a.values.size())
      return absl::InternalError("BSR component sizes differ from the generated matrix");
    std::copy(a.row_ptr.begin(), a.row_ptr.end(), rp.begin());
    std::copy(a.col_idx.begin(), a.col_idx.end(), ci.begin());
    std::copy(a.values.begin(), a.values.end(), v.begin());
    absl::StatusOr<Tensor> dev = host->CopyTo(Device::Cuda(0));
    if (!dev.ok()) return dev.status();
    a_ = std::move(dev).value();

    // The first call tunes (outside the timed runs); what it chose is the
    // new tune database entry.
    std::set<std::string> before;
    for (const TuneEntry& e : db_.List()) before.insert(e.key);
    absl::StatusOr<Tensor> c = timed_.Spmm(Args(0));
    if (!c.ok()) return c.status();
    if (c->desc().dtype != DType::kBF16)
      note_ = "output dtype " + std::string(DTypeName(c->desc().dtype)) + " (asked bf16); ";
    std::string chosen;
    for (const TuneEntry& e : db_.List()) {
      if (before.count(e.key)) continue;
      chosen += (chosen.empty() ? "" : ",") + e.variant;
    }
    picked_ = forced.empty() ? PickedVariant(db_, cd_) : forced;
    if (!forced.empty())
      note_ += "forced variant " + forced;
    else
      note_ += chosen.empty() ? "variant: tune db hit" : "tuned: " + chosen;
    return absl::OkStatus();
  }

  // The variant the tuner chose (or was forced) for this case.
  const std::string& picked() const { return picked_; }

  double TimedRunMs(int copy) override {
    Gpu& g = *g_gpu;
    if (g.flush) {
      CHECK_CUDA(cudaMemsetAsync(g.flush_buf.get(), 0, g.flush_buf.bytes(), g.stream));
      CHECK_CUDA(cudaStreamSynchronize(g.stream));
    }
    const SpmmArgs args = Args(copy);
    const auto t0 = std::chrono::steady_clock::now();
    absl::StatusOr<Tensor> c = timed_.Spmm(args);
    const auto t1 = std::chrono::steady_clock::now();
    if (!c.ok()) {
      error_ = c.status().ToString();
      return kNaN;
    }
    return std::chrono::duration<double, std::milli>(t1 - t0).count();
  }

  std::vector<float> CheckRows(const std::vector<int64_t>& rows) override {
    absl::StatusOr<Tensor> c = check_.Spmm(Args(0));  // poisoning backend
    if (!c.ok()) {
      error_ = c.status().ToString();
      return {};
    }
    const TensorDesc& d = c->desc();
    const int64_t m = cd_.spec.m, n = cd_.spec.n;
    if (d.format != Format::kDense || d.rows() != m || d.cols() != n ||
        (d.dtype != DType::kBF16 && d.dtype != DType::kF32)) {
      error_ = "unexpected output " + std::string(FormatName(d.format)) + " " +
               std::string(DTypeName(d.dtype)) + " " + ShapeString(d.shape);
      return {};
    }
    absl::StatusOr<Tensor> host = c->CopyTo(Device::Cpu());
    if (!host.ok()) {
      error_ = host.status().ToString();
      return {};
    }
    std::vector<float> out(rows.size() * n);
    const bool f32 = d.dtype == DType::kF32;
    for (size_t i = 0; i < rows.size(); ++i) {
      for (int64_t j = 0; j < n; ++j) {
        const int64_t at = rows[i] * n + j;
        out[i * n + j] =
            f32 ? host->data<float>("values")[at] : Bf16ToFloat(host->data<uint16_t>("values")[at]);
      }
    }
    return out;
  }

 private:
  SpmmArgs Args(int copy) const {
    SpmmArgs args;
    args.a = &a_;
    args.b = &cd_.b[copy];
    args.out_dtype = DType::kBF16;
    return args;
  }

  Backend& timed_;
  Backend& check_;
  TuneDb& db_;
  CaseData& cd_;
  Tensor a_;
  std::string picked_;
};

// --- one sparsed variant, without the backend around it ------------------

// The kernels our backend would run, timed like the libraries (CUDA events,
// no allocation or synchronisation in the timed region): one contender per
// BSR variant that supports the case, so the table shows how far the tuner's
// pick is from the fastest variant measured in these same rounds.
struct VariantEnv {
  cuda::ExecContext ctx;
  std::unique_ptr<cuda::JitCache> jit;  // memory only
};
VariantEnv* g_variants = nullptr;

class VariantContender : public Contender {
 public:
  VariantContender(const cuda::BsrSpmmVariant& v, CaseData& cd)
      : Contender("v:" + std::string(v.name())), v_(v), cd_(cd), ws_(g_variants->ctx) {
    timing_ = "events (kernel only)";
  }

  // Uploads A, prepares the plan (JIT compile) and runs once. UNIMPLEMENTED
  // when the variant does not take the case.
  absl::Status Init() {
    const BsrHost& a = cd_.a;
    row_ptr_ = DeviceBuffer::FromHost(a.row_ptr);
    col_idx_ = DeviceBuffer::FromHost(a.col_idx);
    values_ = DeviceBuffer::FromHost(a.values);
    out_ = DeviceBuffer(static_cast<size_t>(cd_.spec.m * cd_.spec.n * 2));
    p_.m = cd_.spec.m;
    p_.n = cd_.spec.n;
    p_.k = cd_.spec.k;
    p_.r = p_.c = a.r;
    p_.block_rows = a.mb();
    p_.block_cols = a.kb();
    p_.nnzb = a.nnzb();
    p_.block_row_ptr = row_ptr_.get();
    p_.block_col_idx = col_idx_.get();
    p_.a_values = values_.get();
    p_.type = cuda::ValueType::kBF16;
    p_.b = cd_.BPtr(0, false, false);
    p_.ldb = p_.n;
    p_.out = out_.get();
    p_.out_type = cuda::OutType::kBF16;
    p_.ldc = p_.n;
    p_.mean_blocks_per_row = static_cast<double>(a.nnzb()) / std::max<int64_t>(a.mb(), 1);
    if (!v_.Supports(p_)) return absl::UnimplementedError("does not support the case");
    absl::StatusOr<cuda::Plan*> plan = v_.Prepare(p_, g_variants->ctx, ws_);
    if (!plan.ok()) return plan.status();
    plan_ = *plan;
    absl::Status st = v_.Run(p_, plan_, g_variants->ctx);
    CHECK_CUDA(cudaStreamSynchronize(g_gpu->stream));
    return st;
  }

  double TimedRunMs(int copy) override {
    p_.b = cd_.BPtr(copy, false, false);
    absl::Status st;
    const double ms = g_gpu->TimeEvents([&] { st = v_.Run(p_, plan_, g_variants->ctx); });
    if (!st.ok()) {
      error_ = st.ToString();
      return kNaN;
    }
    return ms;
  }

  std::vector<float> CheckRows(const std::vector<int64_t>& rows) override {
    p_.b = cd_.BPtr(0, false, false);
    CHECK_CUDA(cudaMemsetAsync(out_.get(), 0xff, out_.bytes(), g_gpu->stream));
    absl::Status st = v_.Run(p_, plan_, g_variants->ctx);
    CHECK_CUDA(cudaStreamSynchronize(g_gpu->stream));
    if (!st.ok()) {
      error_ = st.ToString();
      return {};
    }
    return ReadRows(out_.get(), false, false, cd_.spec.m, cd_.spec.n, rows);
  }

 private:
  const cuda::BsrSpmmVariant& v_;
  CaseData& cd_;
  cuda::Workspace ws_;
  cuda::BsrSpmmProblem p_;
  cuda::Plan* plan_ = nullptr;
  DeviceBuffer row_ptr_, col_idx_, values_, out_;
};

// --- cuSPARSE ---------------------------------------------------------------

// A value/layout combination to offer cuSPARSE, best first; the first one
// it accepts (buffer size, preprocess and one run) is timed.
struct SpConfig {
  cudaDataType ab, c;  // A and B; C. Compute type is always f32.
  bool col_major;      // B and C column-major (B transposed on the host)
  const char* label;
};
constexpr SpConfig kSpConfigs[] = {
    {CUDA_R_16BF, CUDA_R_16BF, false, "bf16 in/out, row-major B/C"},
    {CUDA_R_16BF, CUDA_R_32F, false, "bf16 in, f32 out, row-major B/C"},
    {CUDA_R_16BF, CUDA_R_16BF, true, "bf16 in/out, column-major B/C"},
    {CUDA_R_16BF, CUDA_R_32F, true, "bf16 in, f32 out, column-major B/C"},
    {CUDA_R_32F, CUDA_R_32F, false, "f32 in/out (bf16 refused), row-major B/C"},
    {CUDA_R_32F, CUDA_R_32F, true, "f32 in/out (bf16 refused), column-major B/C"},
};

class CusparseContender : public Contender {
 public:
  CusparseContender(std::string name, cusparseSpMMAlg_t alg, CaseData& cd)
      : Contender(std::move(name)), cd_(cd), alg_(alg) {}
  ~CusparseContender() override { Release(); }

  // Tries the configurations in order; an error when none is accepted.
  absl::Status Init() {
    std::string refused;
    for (const SpConfig& cfg : kSpConfigs) {
      std::string why;
      if (Try(cfg, &why)) {
        note_ = cfg.label;
        if (!refused.empty()) note_ += "; refused: " + refused;
        return absl::OkStatus();
      }
      refused += (refused.empty() ? "" : "; ") + std::string(cfg.label) + ": " + why;
    }
    return absl::UnimplementedError("no configuration accepted: " + refused);
  }

  double TimedRunMs(int copy) override {
    CHECK_CUSPARSE(cusparseDnMatSetValues(b_desc_, cd_.BPtr(copy, f32_in_, cfg_.col_major)));
    cusparseStatus_t st = CUSPARSE_STATUS_SUCCESS;
    const double ms = g_gpu->TimeEvents([&] { st = Run(); });
    if (st != CUSPARSE_STATUS_SUCCESS) {
      error_ = cusparseGetErrorString(st);
      return kNaN;
    }
    return ms;
  }

  std::vector<float> CheckRows(const std::vector<int64_t>& rows) override {
    Gpu& g = *g_gpu;
    CHECK_CUSPARSE(cusparseDnMatSetValues(b_desc_, cd_.BPtr(0, f32_in_, cfg_.col_major)));
    CHECK_CUDA(cudaMemsetAsync(c_.get(), 0xff, c_.bytes(), g.stream));
    const cusparseStatus_t st = Run();
    CHECK_CUDA(cudaStreamSynchronize(g.stream));
    if (st != CUSPARSE_STATUS_SUCCESS) {
      error_ = cusparseGetErrorString(st);
      return {};
    }
    return ReadRows(c_.get(), cfg_.c == CUDA_R_32F, cfg_.col_major, cd_.spec.m, cd_.spec.n, rows);
  }

 protected:
  // A's descriptor with values of type `t` (the subclass keeps the arrays).
  virtual cusparseStatus_t CreateA(cudaDataType t, cusparseSpMatDescr_t* d) = 0;

  CaseData& cd_;

 private:
  cusparseStatus_t Run() {
    const float alpha = 1.0f, beta = 0.0f;
    return cusparseSpMM(g_gpu->sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                        CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a_desc_, b_desc_, &beta, c_desc_,
                        CUDA_R_32F, alg_, work_.get());
  }

  void Release() {
    if (a_desc_) cusparseDestroySpMat(a_desc_);
    if (b_desc_) cusparseDestroyDnMat(b_desc_);
    if (c_desc_) cusparseDestroyDnMat(c_desc_);
    a_desc_ = nullptr;
    b_desc_ = nullptr;
    c_desc_ = nullptr;
    work_ = DeviceBuffer();
    c_ = DeviceBuffer();
  }

  bool Try(const SpConfig& cfg, std::string* why) {
    Release();
    Gpu& g = *g_gpu;
    const int64_t m = cd_.spec.m, k = cd_.spec.k, n = cd_.spec.n;
    cfg_ = cfg;
    f32_in_ = cfg.ab == CUDA_R_32F;
    const cudaDataType ab = cfg.ab;
    const cusparseOrder_t order = cfg.col_major ? CUSPARSE_ORDER_COL : CUSPARSE_ORDER_ROW;
    auto fail = [&](const char* step, cusparseStatus_t st) {
      *why = std::string(step) + " " + cusparseGetErrorString(st);
      Release();
      return false;
    };
    cusparseStatus_t st = CreateA(ab, &a_desc_);
    if (st != CUSPARSE_STATUS_SUCCESS) return fail("create A:", st);
    st = cusparseCreateDnMat(&b_desc_, k, n, cfg.col_major ? k : n,
                             cd_.BPtr(0, f32_in_, cfg.col_major), ab, order);
    if (st != CUSPARSE_STATUS_SUCCESS) return fail("create B:", st);
    c_ = DeviceBuffer(static_cast<size_t>(m * n * (cfg.c == CUDA_R_32F ? 4 : 2)));
    st = cusparseCreateDnMat(&c_desc_, m, n, cfg.col_major ? m : n, c_.get(), cfg.c, order);
    if (st != CUSPARSE_STATUS_SUCCESS) return fail("create C:", st);
    const float alpha = 1.0f, beta = 0.0f;
    size_t bytes = 0;
    st = cusparseSpMM_bufferSize(g.sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                 CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a_desc_, b_desc_, &beta,
                                 c_desc_, CUDA_R_32F, alg_, &bytes);
    if (st != CUSPARSE_STATUS_SUCCESS) return fail("bufferSize:", st);
    work_ = DeviceBuffer(bytes);
    st = cusparseSpMM_preprocess(g.sparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                 CUSPARSE_OPERATION_NON_TRANSPOSE, &alpha, a_desc_, b_desc_, &beta,
                                 c_desc_, CUDA_R_32F, alg_, work_.get());
    if (st != CUSPARSE_STATUS_SUCCESS) return fail("preprocess:", st);
    st = Run();
    CHECK_CUDA(cudaStreamSynchronize(g.stream));
    if (st != CUSPARSE_STATUS_SUCCESS) return fail("SpMM:", st);
    return true;
  }

  cusparseSpMMAlg_t alg_;
  SpConfig cfg_{};
  bool f32_in_ = false;
  cusparseSpMatDescr_t a_desc_ = nullptr;
  cusparseDnMatDescr_t b_desc_ = nullptr, c_desc_ = nullptr;
  DeviceBuffer work_, c_;
};

class CusparseBsrContender : public CusparseContender {
 public:
  explicit CusparseBsrContender(CaseData& cd)
      : CusparseContender("cusparse_bsr", CUSPARSE_SPMM_BSR_ALG1, cd),
        row_ptr_(DeviceBuffer::FromHost(cd.a.row_ptr)),
        col_idx_(DeviceBuffer::FromHost(cd.a.col_idx)),
        values_(DeviceBuffer::FromHost(cd.a.values)) {}

 protected:
  cusparseStatus_t CreateA(cudaDataType t, cusparseSpMatDescr_t* d) override {
    const BsrHost& a = cd_.a;
    if (t == CUDA_R_32F && values_f32_.bytes() == 0)
      values_f32_ = DeviceBuffer::FromHost(Bf16ToF32(a.values));
    void* vals = t == CUDA_R_32F ? values_f32_.get() : values_.get();
    return cusparseCreateBsr(d, a.mb(), a.kb(), a.nnzb(), a.r, a.r, row_ptr_.get(), col_idx_.get(),
                             vals, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO,
                             t, CUSPARSE_ORDER_ROW);
  }

 private:
  DeviceBuffer row_ptr_, col_idx_, values_, values_f32_;
};

class CusparseBellContender : public CusparseContender {
 public:
  CusparseBellContender(CaseData& cd, BlockedEllHost ell)
      : CusparseContender("cusparse_bell", CUSPARSE_SPMM_BLOCKED_ELL_ALG1, cd),
        ell_(std::move(ell)),
        col_ind_(DeviceBuffer::FromHost(ell_.col_ind)),
        values_(DeviceBuffer::FromHost(ell_.values)) {
    if (cd.a.max_blocks_per_row() * cd.a.mb() != cd.a.nnzb())
      note_prefix_ = "padded to " + std::to_string(ell_.ell_blocks) + " blocks/row; ";
  }

  absl::Status Init() {
    absl::Status s = CusparseContender::Init();
    note_ = note_prefix_ + note_;
    return s;
  }

 protected:
  cusparseStatus_t CreateA(cudaDataType t, cusparseSpMatDescr_t* d) override {
    const BsrHost& a = cd_.a;
    if (t == CUDA_R_32F && values_f32_.bytes() == 0)
      values_f32_ = DeviceBuffer::FromHost(Bf16ToF32(ell_.values));
    void* vals = t == CUDA_R_32F ? values_f32_.get() : values_.get();
    return cusparseCreateBlockedEll(d, a.m, a.k, a.r, ell_.ell_blocks * a.r, col_ind_.get(), vals,
                                    CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, t);
  }

 private:
  BlockedEllHost ell_;
  DeviceBuffer col_ind_, values_, values_f32_;
  std::string note_prefix_;
};

// --- cuBLAS -----------------------------------------------------------------

// Row-major C[m, n] = A[m, k] · B[k, n], bf16 in and out, f32 compute: in
// cuBLAS's column-major terms Cᵀ = Bᵀ · Aᵀ, the same memory.
cublasStatus_t DenseGemm(cublasHandle_t h, int64_t m, int64_t n, int64_t k, const void* a,
                         const void* b, void* c) {
  const float alpha = 1.0f, beta = 0.0f;
  return cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                      static_cast<int>(k), &alpha, b, CUDA_R_16BF, static_cast<int>(n), a,
                      CUDA_R_16BF, static_cast<int>(k), &beta, c, CUDA_R_16BF, static_cast<int>(n),
                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

class CublasContender : public Contender {
 public:
  explicit CublasContender(CaseData& cd)
      : Contender("cublas_dense"),
        cd_(cd),
        a_(DeviceBuffer::FromHost(DenseOf(cd.a))),
        c_(static_cast<size_t>(cd.spec.m * cd.spec.n * 2)) {
    note_ = "dense equivalent of A, bf16 in/out, f32 compute";
  }

  double TimedRunMs(int copy) override {
    cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
    const double ms = g_gpu->TimeEvents([&] { st = Run(copy); });
    if (st != CUBLAS_STATUS_SUCCESS) {
      error_ = cublasGetStatusString(st);
      return kNaN;
    }
    return ms;
  }

  std::vector<float> CheckRows(const std::vector<int64_t>& rows) override {
    Gpu& g = *g_gpu;
    CHECK_CUDA(cudaMemsetAsync(c_.get(), 0xff, c_.bytes(), g.stream));
    const cublasStatus_t st = Run(0);
    CHECK_CUDA(cudaStreamSynchronize(g.stream));
    if (st != CUBLAS_STATUS_SUCCESS) {
      error_ = cublasGetStatusString(st);
      return {};
    }
    return ReadRows(c_.get(), false, false, cd_.spec.m, cd_.spec.n, rows);
  }

 private:
  cublasStatus_t Run(int copy) {
    return DenseGemm(g_gpu->blas, cd_.spec.m, cd_.spec.n, cd_.spec.k, a_.get(),
                     cd_.BPtr(copy, false, false), c_.get());
  }

  CaseData& cd_;
  DeviceBuffer a_, c_;
};

// The dense bf16 tensor-core rate: cuBLAS on an s×s×s product, TFLOP/s.
double DenseReferenceTflops(int64_t s, int reps) {
  Gpu& g = *g_gpu;
  const std::vector<uint16_t> host = RandomBf16(s * s, 99);
  DeviceBuffer a = DeviceBuffer::FromHost(host), b = DeviceBuffer::FromHost(host);
  DeviceBuffer c(static_cast<size_t>(s * s * 2));
  std::vector<double> ms;
  for (int i = 0; i < 3 + reps; ++i) {
    const double t =
        g.TimeEvents([&] { CHECK_CUBLAS(DenseGemm(g.blas, s, s, s, a.get(), b.get(), c.get())); });
    if (i >= 3) ms.push_back(t);
  }
  return 2.0 * s * s * s / (Median(ms) * 1e-3) / 1e12;
}

// --- the run ----------------------------------------------------------------

struct Row {
  CaseSpec spec;
  double density = 0;  // achieved
  int64_t nnzb = 0;
  std::string contender, timing, status, note;
  double ms = kNaN, err = kNaN;
};

struct Options {
  int rounds = 30, warmup = 3, check_rows = 64;
  uint64_t seed = 1;
  BlockPattern pattern = BlockPattern::kBalanced;
  std::string variant;
  bool no_tensor_cores = false;
  std::string kernel_dir;
  std::string variants = "all";  // direct variant contenders: all, none, or a list
};

// The tuner's pick against the fastest variant of the same rounds.
struct PickRow {
  CaseSpec spec;
  std::string picked, best;
  double picked_ms = kNaN, best_ms = kNaN;
};
std::vector<PickRow> g_picks;

int CopiesFor(const CaseSpec& s, const BsrHost& a, int contenders) {
  const double l2 = g_gpu->prop.l2CacheSize;
  const double b = 2.0 * s.k * s.n, c = 2.0 * s.m * s.n;
  const double a_bytes = a.values.size() * 2.0 + a.col_idx.size() * 4.0;
  if (a_bytes + b + c > l2) return 2;
  return static_cast<int>(std::clamp<double>(std::ceil(2.0 * l2 / b), contenders + 1, 16));
}

void RunCase(const CaseSpec& spec, const Options& o, Backend* timed, Backend* check, TuneDb* db,
             const std::string& backend_error, std::vector<Row>& rows) {
  const uint64_t case_seed = o.seed * 1000003ull +
                             static_cast<uint64_t>(spec.m * 31 + spec.k * 17 + spec.r * 7) +
                             static_cast<uint64_t>(std::llround(spec.density * 1000)) * 65537ull;
  CaseData cd;
  cd.spec = spec;
  cd.a = RandomBsr(spec.m, spec.k, spec.r, spec.density, o.pattern, case_seed);
  cd.b_host = RandomBf16(spec.k * spec.n, case_seed + 1 + static_cast<uint64_t>(spec.n));
  cd.rows = SampleRows(spec.m, o.check_rows, case_seed + 2);
  cd.ref = ReferenceRows(cd.a, Bf16ToF32(cd.b_host), spec.n, cd.rows);
  const int copies = CopiesFor(spec, cd.a, /*contenders=*/4);
  {
    Tensor bh =
        Must(Tensor::Allocate({Format::kDense, DType::kBF16, DType::kI32, {spec.k, spec.n}, 0}));
    std::span<uint16_t> v = bh.data<uint16_t>("values");
    std::copy(cd.b_host.begin(), cd.b_host.end(), v.begin());
    for (int c = 0; c < copies; ++c) cd.b.push_back(Must(bh.CopyTo(Device::Cuda(0))));
  }
  std::printf("\n== %s M=%ld K=%ld N=%ld block=%ld: %ld blocks (density %.4f), %d copies of B\n",
              spec.group.c_str(), static_cast<long>(spec.m), static_cast<long>(spec.k),
              static_cast<long>(spec.n), static_cast<long>(spec.r), static_cast<long>(cd.a.nnzb()),
              cd.a.density(), copies);
  std::fflush(stdout);

  // Contenders, in table order; one that cannot run stays null with the reason.
  std::vector<std::unique_ptr<Contender>> live;
  std::vector<std::string> names, why;
  auto add = [&](const std::string& name, std::unique_ptr<Contender> c, absl::Status st) {
    names.push_back(name);
    why.push_back(st.ok() ? "" : st.ToString());
    if (!st.ok()) {
      std::printf("  %-14s n/a: %s\n", name.c_str(), st.ToString().c_str());
      c.reset();
    }
    live.push_back(std::move(c));
  };
  std::string picked;
  if (timed == nullptr) {
    add("sparsed", nullptr, absl::FailedPreconditionError(backend_error));
  } else {
    auto s = std::make_unique<SparsedContender>(*timed, *check, *db, cd);
    absl::Status st = s->Init(o.variant);
    picked = s->picked();
    add("sparsed", std::move(s), st);
  }
  {
    auto s = std::make_unique<CusparseBsrContender>(cd);
    absl::Status st = s->Init();
    add("cusparse_bsr", std::move(s), st);
  }
  {
    auto s = std::make_unique<CusparseBellContender>(cd, ToBlockedEll(cd.a));
    absl::Status st = s->Init();
    add("cusparse_bell", std::move(s), st);
  }
  add("cublas_dense", std::make_unique<CublasContender>(cd), absl::OkStatus());
  // Every BSR variant that takes the case, run directly (kernel time only).
  if (g_variants != nullptr && o.variants != "none") {
    const std::vector<int64_t> none;
    for (const cuda::BsrSpmmVariant* v : cuda::BsrSpmmVariants()) {
      const std::string name(v->name());
      if (o.variants != "all" &&
          ("," + o.variants + ",").find("," + name + ",") == std::string::npos)
        continue;
      if (v->min_arch() > g_variants->ctx.arch) continue;
      auto c = std::make_unique<VariantContender>(*v, cd);
      absl::Status st = c->Init();
      if (absl::IsUnimplemented(st) && st.message() == "does not support the case") continue;
      add("v:" + name, std::move(c), st);
    }
  }

  // Check: one run each into a poisoned output.
  const int nc = static_cast<int>(live.size());
  std::vector<double> err(nc, kNaN);
  std::vector<bool> broken(nc, false);
  for (int i = 0; i < nc; ++i) {
    if (!live[i]) continue;
    const std::vector<float> got = live[i]->CheckRows(cd.rows);
    if (got.empty()) {
      broken[i] = true;
      std::printf("  %-14s check run failed: %s\n", names[i].c_str(), live[i]->error().c_str());
      continue;
    }
    err[i] = RelError(cd.ref, got);
    std::printf("  %-14s check rel. err %.2e %s  [%s]\n", names[i].c_str(), err[i],
                err[i] < kTolerance ? "ok" : "FAIL", live[i]->note().c_str());
  }
  std::fflush(stdout);

  // Warm-up, then interleaved timed rounds: every contender once per round,
  // the starting one rotating; consecutive calls use different copies of B.
  std::vector<std::vector<double>> ms(nc);
  for (int round = 0; round < o.warmup + o.rounds; ++round) {
    for (int j = 0; j < nc; ++j) {
      const int i = (round + j) % nc;
      if (!live[i] || broken[i]) continue;
      const int copy = (round * (nc + 1) + j) % copies;
      const double t = live[i]->TimedRunMs(copy);
      if (std::isnan(t)) {
        broken[i] = true;
        continue;
      }
      if (round >= o.warmup) ms[i].push_back(t);
    }
  }

  for (int i = 0; i < nc; ++i) {
    Row r;
    r.spec = spec;
    r.density = cd.a.density();
    r.nnzb = cd.a.nnzb();
    r.contender = names[i];
    r.err = err[i];
    if (!live[i]) {
      r.status = "n/a";
      r.note = why[i];
    } else {
      r.timing = live[i]->timing();
      r.note = live[i]->note();
      if (broken[i]) {
        r.status = "ERR";
        r.note = live[i]->error() + (r.note.empty() ? "" : "; " + r.note);
      } else {
        r.ms = Median(ms[i]);
        r.status = err[i] < kTolerance ? "OK" : "FAIL";
      }
    }
    rows.push_back(r);
  }
  PickRow pick;
  pick.spec = spec;
  pick.picked = picked;
  for (size_t i = rows.size() - nc; i < rows.size(); ++i) {  // this case's rows
    const Row& r = rows[i];
    if (r.status != "OK" || r.contender.rfind("v:", 0) != 0) continue;
    if (r.contender == "v:" + picked) pick.picked_ms = r.ms;
    if (!(r.ms >= pick.best_ms)) {
      pick.best_ms = r.ms;
      pick.best = r.contender.substr(2);
    }
  }
  if (!pick.best.empty()) g_picks.push_back(pick);
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"BSR × dense SpMM (bf16): sparsed vs cuSPARSE BSR, cuSPARSE Blocked-ELL, cuBLAS"};
  Options o;
  std::string cases = "square,llm", pattern = "balanced", csv_path, square_blocks = "16,32,64,128",
              tokens = "16,128,2048,8192";
  int64_t llm_block = 64, ref_size = 8192;
  bool quick = false, flush = false;
  double lead_us = 50;
  app.add_option("--cases", cases, "comma-separated: square, llm");
  app.add_flag("--quick", quick, "a small subset of the cases, 10 rounds (smoke run)");
  app.add_option("--rounds", o.rounds, "interleaved timed rounds (median)");
  app.add_option("--warmup", o.warmup, "untimed rounds first");
  app.add_option("--seed", o.seed, "random seed of the operands");
  app.add_option("--pattern", pattern, "balanced (same count per block row) or random (global)")
      ->check(CLI::IsMember({"balanced", "random"}));
  app.add_option("--llm-block", llm_block, "block size of the llm cases");
  app.add_option("--square-blocks", square_blocks, "block sizes of the square cases");
  app.add_option("--tokens", tokens, "N of the llm cases");
  app.add_option("--variant", o.variant, "CudaBackendOptions.force_variant (\"\" = tune)");
  app.add_flag(
      "--no-tensor-cores", o.no_tensor_cores,
      "tune without the JIT tensor-core BSR kernels (CudaBackendOptions.bsr_tensor_cores)");
  app.add_option("--variants", o.variants,
                 "BSR variants also timed directly (kernel only): all, none, or a list");
  app.add_option("--kernel-dir", o.kernel_dir, "JIT kernel cache directory (\"\" = memory only)");
  app.add_option("--check-rows", o.check_rows, "rows compared with the float64 reference");
  app.add_flag("--flush-l2", flush, "overwrite a 2×L2 buffer before every timed run");
  app.add_option("--lead-us", lead_us, "spin queued ahead of each event-timed run (µs)");
  app.add_option("--ref-size", ref_size, "s of the dense s×s×s cuBLAS reference product");
  app.add_option("--csv", csv_path, "also write the rows as CSV here");
  CLI11_PARSE(app, argc, argv);
  o.pattern = pattern == "random" ? BlockPattern::kRandom : BlockPattern::kBalanced;
  if (quick && app.count("--rounds") == 0) o.rounds = 10;

  if (ListGpus().empty()) {
    std::fprintf(stderr, "no GPU\n");
    return 1;
  }
  Gpu gpu;
  g_gpu = &gpu;
  CHECK_CUDA(cudaSetDevice(0));
  CHECK_CUDA(cudaGetDeviceProperties(&gpu.prop, 0));
  CHECK_CUDA(cudaStreamCreateWithFlags(&gpu.stream, cudaStreamNonBlocking));
  CHECK_CUDA(cudaEventCreate(&gpu.start));
  CHECK_CUDA(cudaEventCreate(&gpu.stop));
  CHECK_CUSPARSE(cusparseCreate(&gpu.sparse));
  CHECK_CUSPARSE(cusparseSetStream(gpu.sparse, gpu.stream));
  CHECK_CUBLAS(cublasCreate(&gpu.blas));
  CHECK_CUBLAS(cublasSetStream(gpu.blas, gpu.stream));
  gpu.lead_ns = static_cast<int64_t>(lead_us * 1000);
  gpu.flush = flush;
  if (flush) gpu.flush_buf = DeviceBuffer(static_cast<size_t>(gpu.prop.l2CacheSize) * 2);

  // Our backend: one to time, one that poisons its outputs for the check,
  // sharing the tune database (so the second finds the first's choice).
  std::unique_ptr<TuneDb> db = Must(TuneDb::Open(""));
  std::unique_ptr<Backend> timed, check;
  std::string backend_error;
  {
    CudaBackendOptions bo;
    bo.tune_db = db.get();
    bo.force_variant = o.variant;
    bo.bsr_tensor_cores = !o.no_tensor_cores;
    // One kernel directory for the run, so the check backend reuses the
    // timed backend's compiled kernels.
    bo.kernel_cache_dir = o.kernel_dir;
    absl::StatusOr<std::unique_ptr<Backend>> t = MakeCudaBackend(bo);
    bo.poison_outputs = true;
    absl::StatusOr<std::unique_ptr<Backend>> c = MakeCudaBackend(bo);
    if (t.ok() && c.ok()) {
      timed = std::move(t).value();
      check = std::move(c).value();
    } else {
      backend_error = (t.ok() ? c.status() : t.status()).ToString();
    }
  }

  // The direct variant contenders' context: our stream and cuSPARSE handle,
  // a memory-only JIT cache.
  VariantEnv venv;
  {
    venv.ctx.device = 0;
    venv.ctx.num_sms = gpu.prop.multiProcessorCount;
    venv.ctx.arch = gpu.prop.major * 10 + gpu.prop.minor;
    venv.ctx.stream = gpu.stream;
    venv.ctx.cusparse = gpu.sparse;
    cuda::JitCacheOptions jo;
    jo.device = 0;
    jo.generator = cuda::GenerateKernel;
    venv.jit = Must(cuda::JitCache::Open(jo));
    venv.ctx.jit = venv.jit.get();
    g_variants = &venv;
  }

  int runtime = 0, driver = 0, sparse_ver = 0, blas_ver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  CHECK_CUSPARSE(cusparseGetVersion(gpu.sparse, &sparse_ver));
  CHECK_CUBLAS(cublasGetVersion(gpu.blas, &blas_ver));
  const double dense_tflops = DenseReferenceTflops(ref_size, 20);
  std::printf("GPU %s (%d SMs, L2 %.0f MB), CUDA runtime %d, driver %d, cuSPARSE %d, cuBLAS %d\n",
              gpu.prop.name, gpu.prop.multiProcessorCount, gpu.prop.l2CacheSize / 1e6, runtime,
              driver, sparse_ver, blas_ver);
  std::printf("dense reference: cuBLAS bf16 %ld^3 = %.1f TFLOP/s (median of 20)\n",
              static_cast<long>(ref_size), dense_tflops);
  std::string variants;
  for (const std::string& v : CudaSpmmVariantNames()) variants += (variants.empty() ? "" : ",") + v;
  std::printf("sparsed variants: %s%s\n", variants.c_str(),
              o.variant.empty() ? " (tuned)" : (" (forced " + o.variant + ")").c_str());
  std::printf(
      "%d warm-up + %d interleaved rounds, median; pattern %s; seed %lu; L2 flush %s; "
      "spin lead %.0f us\n",
      o.warmup, o.rounds, pattern.c_str(), static_cast<unsigned long>(o.seed), flush ? "on" : "off",
      lead_us);
  std::fflush(stdout);

  // The cases.
  std::vector<CaseSpec> specs;
  std::set<std::string> groups;
  {
    std::stringstream s(cases);
    for (std::string t; std::getline(s, t, ',');) groups.insert(t);
  }
  for (const std::string& g : groups) {
    if (g != "square" && g != "llm") {
      std::fprintf(stderr, "unknown case group %s (square, llm)\n", g.c_str());
      return 1;
    }
  }
  if (groups.count("square")) {
    std::vector<int64_t> blocks = ParseInts(square_blocks);
    if (quick && app.count("--square-blocks") == 0) blocks = {32, 128};
    for (int64_t r : blocks) specs.push_back({"square", 4096, 4096, 4096, r, 0.125});
  }
  if (groups.count("llm")) {
    std::vector<std::pair<int64_t, int64_t>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    std::vector<double> sparsities = {0.5, 0.75, 0.9};
    std::vector<int64_t> ns = ParseInts(tokens);
    if (quick) {
      shapes = {{4096, 4096}};
      sparsities = {0.5, 0.9};
      if (app.count("--tokens") == 0) ns = {16, 2048};
    }
    for (auto [m, k] : shapes)
      for (double sp : sparsities)
        for (int64_t n : ns) specs.push_back({"llm", m, k, n, llm_block, 1.0 - sp});
  }

  std::vector<Row> rows;
  for (const CaseSpec& spec : specs) {
    if (spec.m % spec.r != 0 || spec.k % spec.r != 0) {
      std::printf("\n== %s M=%ld K=%ld block=%ld: skipped (block does not divide the shape)\n",
                  spec.group.c_str(), static_cast<long>(spec.m), static_cast<long>(spec.k),
                  static_cast<long>(spec.r));
      continue;
    }
    RunCase(spec, o, timed.get(), check.get(), db.get(), backend_error, rows);
    std::fflush(stdout);
  }

  // The table.
  std::map<std::string, double> dense_ms;  // per case
  auto key = [](const Row& r) {
    return r.spec.group + "/" + std::to_string(r.spec.m) + "/" + std::to_string(r.spec.k) + "/" +
           std::to_string(r.spec.n) + "/" + std::to_string(r.spec.r) + "/" + Fmt("%.4f", r.density);
  };
  for (const Row& r : rows)
    if (r.contender == "cublas_dense" && r.status != "ERR") dense_ms[key(r)] = r.ms;

  std::ostringstream csv;
  csv << "case,M,K,N,block,density,nnz_blocks,contender,median_ms,eff_tflops,t_vs_dense,"
         "frac_dense_tc,check_rel_err,status,timing,note\n";
  std::printf("\n%-6s %6s %6s %5s %5s %7s  %-14s %10s %8s %8s %8s %9s %-5s %s\n", "case", "M", "K",
              "N", "block", "density", "contender", "median ms", "TFLOP/s", "t/dense", "frac TC",
              "check err", "stat", "note");
  for (const Row& r : rows) {
    const double flops = 2.0 * r.nnzb * r.spec.r * r.spec.r * r.spec.n;
    const double tflops = std::isfinite(r.ms) ? flops / (r.ms * 1e-3) / 1e12 : kNaN;
    auto it = dense_ms.find(key(r));
    const double vs = it != dense_ms.end() && std::isfinite(r.ms) ? r.ms / it->second : kNaN;
    const double frac = tflops / dense_tflops;
    std::string note = r.note;
    if (!r.timing.empty() && r.timing != "events") note = r.timing + "; " + note;
    std::printf("%-6s %6ld %6ld %5ld %5ld %7.4f  %-14s %10.4f %8.2f %8.3f %8.3f %9.2e %-5s %s\n",
                r.spec.group.c_str(), static_cast<long>(r.spec.m), static_cast<long>(r.spec.k),
                static_cast<long>(r.spec.n), static_cast<long>(r.spec.r), r.density,
                r.contender.c_str(), r.ms, tflops, vs, frac, r.err, r.status.c_str(), note.c_str());
    csv << r.spec.group << "," << r.spec.m << "," << r.spec.k << "," << r.spec.n << "," << r.spec.r
        << "," << Fmt("%.6f", r.density) << "," << r.nnzb << "," << r.contender << ","
        << Fmt("%.6f", r.ms) << "," << Fmt("%.3f", tflops) << "," << Fmt("%.4f", vs) << ","
        << Fmt("%.4f", frac) << "," << Fmt("%.3e", r.err) << "," << r.status << ","
        << CsvField(r.timing) << "," << CsvField(r.note) << "\n";
  }
  std::printf(
      "\nTFLOP/s counts useful FLOPs only (2·blocks·R²·N) for every contender, dense included; "
      "t/dense = time / cuBLAS dense time of the case; frac TC = TFLOP/s / the %ld^3 dense "
      "rate; sparsed times are the host wall of one backend call (allocation and "
      "synchronisation included), the others CUDA-event device times.\n",
      static_cast<long>(ref_size));
  if (!g_picks.empty()) {
    std::printf("\nTuner pick vs the fastest variant in the same rounds (kernel times):\n");
    std::printf("%-6s %6s %6s %5s %5s  %-16s %10s  %-16s %10s %7s\n", "case", "M", "K", "N",
                "block", "picked", "ms", "fastest", "ms", "ratio");
    for (const PickRow& p : g_picks) {
      std::printf("%-6s %6ld %6ld %5ld %5ld  %-16s %10.4f  %-16s %10.4f %7.3f%s\n",
                  p.spec.group.c_str(), static_cast<long>(p.spec.m), static_cast<long>(p.spec.k),
                  static_cast<long>(p.spec.n), static_cast<long>(p.spec.r), p.picked.c_str(),
                  p.picked_ms, p.best.c_str(), p.best_ms, p.best_ms / p.picked_ms,
                  p.best_ms / p.picked_ms < 0.95 ? "  < 0.95" : "");
    }
  }
  if (!csv_path.empty()) {
    std::ofstream f(csv_path);
    f << csv.str();
    if (!f) {
      std::fprintf(stderr, "could not write %s\n", csv_path.c_str());
      return 1;
    }
    std::printf("CSV: %s\n", csv_path.c_str());
  }

  check.reset();
  timed.reset();
  g_variants = nullptr;
  venv.jit.reset();
  cublasDestroy(gpu.blas);
  cusparseDestroy(gpu.sparse);
  cudaEventDestroy(gpu.start);
  cudaEventDestroy(gpu.stop);
  gpu.flush_buf = DeviceBuffer();
  cudaStreamDestroy(gpu.stream);
  return 0;
}

}  // namespace sparsed::bench

int main(int argc, char** argv) { return sparsed::bench::Main(argc, argv); }
