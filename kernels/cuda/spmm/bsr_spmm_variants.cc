// The BSR SpMM variants: tensor-core tiles (JIT-specialised, bsr_tc_kernel.cuh),
// our CUDA-core kernel (blocked_spmm_kernels.cu) and cuSPARSE's BSR SpMM.
#include <cusparse.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <string>

#include "cuda_check.h"
#include "jit/jit_cache.h"
#include "spmm/blocked_spmm_kernels.h"
#include "spmm/bsr_spmm.h"
#include "spmm/bsr_tc_generator.h"
#include "util_kernels.h"

namespace sparsed::cuda {
namespace {

int Log2Bucket(double x) { return x <= 1 ? 0 : static_cast<int>(std::ceil(std::log2(x))); }

const char* TypeName(ValueType t) {
  return t == ValueType::kF32 ? "f32" : t == ValueType::kF16 ? "f16" : "bf16";
}
const char* OutName(OutType t) {
  return t == OutType::kF32 ? "f32" : t == OutType::kF16 ? "f16" : "bf16";
}

// The f32 result of a variant that writes only f32: `out` itself, or a
// workspace array cast to out_type after the product.
absl::StatusOr<float*> F32Target(const BsrSpmmProblem& p, Workspace& ws) {
  if (p.out_type == OutType::kF32) return static_cast<float*>(p.out);
  return ws.AllocArray<float>(std::max<int64_t>(p.m * p.n, 1));
}
absl::Status FinishCast(const BsrSpmmProblem& p, const float* f32, const ExecContext& ctx) {
  if (p.out_type == OutType::kF32) return absl::OkStatus();
  return CudaStatus(
      kernels::LaunchFromF32(f32, p.out_type == OutType::kF16 ? ValueType::kF16 : ValueType::kBF16,
                             p.out, p.m * p.n, ctx.stream),
      "cast launch");
}
// The plain layout the library kernels take: A not transposed, B row-major
// [k, n], out row-major [m, n], all without padding.
bool PlainLayout(const BsrSpmmProblem& p) {
  return !p.a_trans && !p.b_nmajor && !p.c_trans && p.ldb == p.n && p.ldc == p.n;
}

// ---- Tensor cores -------------------------------------------------------

struct TcPlan : Plan {
  const JitKernel* kernel = nullptr;
  BsrTcConfig config;
};

class BsrTensorCore final : public BsrSpmmVariant {
 public:
  BsrTensorCore(std::string name, BsrTcTile tile) : name_(std::move(name)), tile_(tile) {}
  std::string_view name() const override { return name_; }
  int min_arch() const override { return 80; }  // mma.sync bf16, cp.async, ldmatrix

  // This tile fitted to p: bm shrinks to divide the output block rows, warps
  // along m to what bm holds.
  BsrTcConfig ConfigFor(const BsrSpmmProblem& p) const {
    BsrTcConfig c;
    c.bf16 = p.type == ValueType::kBF16;
    c.out_kind = p.out_type == OutType::kF32 ? 0 : p.out_type == OutType::kBF16 ? 1 : 2;
    c.idx64 = p.idx64 && !p.a_trans;
    c.r = static_cast<int>(p.r);
    c.c = static_cast<int>(p.c);
    c.a_trans = p.a_trans;
    c.b_nmajor = p.b_nmajor;
    c.c_trans = p.c_trans;
    c.beta = p.epilogue.beta != 0.0f;
    c.bias = p.epilogue.bias != nullptr;
    c.relu = p.epilogue.relu;
    c.clamp = p.epilogue.has_clamp;
    c.tile = tile_;
    const int obr = p.a_trans ? c.c : c.r;
    while (c.tile.bm > 16 && obr % c.tile.bm != 0) c.tile.bm /= 2;
    if (c.tile.bm > obr) c.tile.bm = obr;
    c.tile.wm = std::max(1, std::min(c.tile.wm, c.tile.bm / 16));
    while (c.tile.bm % (16 * c.tile.wm) != 0) --c.tile.wm;
    c.kt = 0;  // the largest that divides the k-block
    const int kblock = p.a_trans ? c.r : c.c;
    for (int kt : {64, 48, 32, 16}) {
      if (kblock % kt == 0) {
        c.kt = kt;
        break;
      }
    }
    return c;
  }

  bool Supports(const BsrSpmmProblem& p) const override {
    if (p.type == ValueType::kF32) return false;
    if (p.r % 16 != 0 || p.c % 16 != 0 || p.r > 128 || p.c > 128) return false;
    if (p.a_trans && p.t_ptr == nullptr) return false;
    // 16-byte copies of B rows (or of B's k runs when n-major).
    if (p.ldb % 8 != 0) return false;
    if (!p.b_nmajor && p.n % 8 != 0) return false;
    if (p.b_nmajor && p.k % 8 != 0) return false;
    if (!p.c_trans && p.ldc % 2 != 0) return false;  // paired stores
    // A tile far wider than the output only burns threads.
    if (tile_.bn > std::max<int64_t>(32, 2 * p.n)) return false;
    if ((p.n + tile_.bn - 1) / tile_.bn > 65535) return false;
    return BsrTcConfigOf(BsrTcSpec(ConfigFor(p))).ok();
  }

  absl::StatusOr<Plan*> Prepare(const BsrSpmmProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    if (ctx.jit == nullptr) return absl::UnimplementedError("no JIT kernel cache on this device");
    auto plan = std::make_unique<TcPlan>();
    plan->config = ConfigFor(p);
    ASSIGN_OR_RETURN(plan->kernel, ctx.jit->Get(BsrTcSpec(plan->config)));
    return ws.Keep(std::move(plan));
  }

  absl::Status Run(const BsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const override {
    const auto* tp = static_cast<const TcPlan*>(plan);
    const BsrTcConfig& c = tp->config;
    const int64_t obr = p.a_trans ? p.c : p.r;
    const int64_t out_block_rows = p.a_trans ? p.block_cols : p.block_rows;
    const dim3 grid(static_cast<unsigned>(out_block_rows * (obr / c.tile.bm)),
                    static_cast<unsigned>((p.n + c.tile.bn - 1) / c.tile.bn));
    if (grid.x == 0 || grid.y == 0) return absl::OkStatus();
    const dim3 block(32 * c.tile.wm * c.tile.wn);
    const void* a_vals = p.a_values;
    const void* ptr = p.a_trans ? static_cast<const void*>(p.t_ptr) : p.block_row_ptr;
    const void* blk = p.a_trans ? static_cast<const void*>(p.t_blk) : nullptr;
    const void* kblk = p.a_trans ? static_cast<const void*>(p.t_kblk) : p.block_col_idx;
    const void* b = p.b;
    void* out = p.out;
    const float* c_in = p.epilogue.c_in;
    const float* bias = p.epilogue.bias;
    long long m = p.m, n = p.n, k = p.k, ldb = p.ldb, ldc = p.ldc;
    float alpha = p.epilogue.alpha, beta = p.epilogue.beta, clamp_max = p.epilogue.clamp_max;
    void* args[] = {&a_vals, &ptr, &blk, &kblk, &b,   &out,   &c_in, &bias,
                    &m,      &n,   &k,   &ldb,  &ldc, &alpha, &beta, &clamp_max};
    return tp->kernel->Launch(grid, block, static_cast<unsigned>(BsrTcSmemBytes(c)), ctx.stream,
                              args);
  }

 private:
  std::string name_;
  BsrTcTile tile_;
};

// ---- CUDA cores ---------------------------------------------------------

struct F32Plan : Plan {
  float* target = nullptr;
};

class BsrCudaCore final : public BsrSpmmVariant {
 public:
  std::string_view name() const override { return "bsr_cuda_core"; }
  bool Supports(const BsrSpmmProblem& p) const override { return PlainLayout(p); }
  absl::StatusOr<Plan*> Prepare(const BsrSpmmProblem& p, const ExecContext&,
                                Workspace& ws) const override {
    auto plan = std::make_unique<F32Plan>();
    ASSIGN_OR_RETURN(plan->target, F32Target(p, ws));
    return ws.Keep(std::move(plan));
  }
  absl::Status Run(const BsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const override {
    float* target = static_cast<F32Plan*>(plan)->target;
    CUDA_RETURN_IF_ERROR(
        kernels::LaunchBsrSpmm(p.type, p.idx64, p.block_row_ptr, p.block_col_idx, p.a_values, p.r,
                               p.c, p.m, p.k, p.b, p.n, target, p.epilogue, ctx.stream),
        "bsr cuda-core launch");
    return FinishCast(p, target, ctx);
  }
};

// ---- cuSPARSE -----------------------------------------------------------

cudaDataType CudaTypeOf(ValueType t) {
  return t == ValueType::kF16 ? CUDA_R_16F : t == ValueType::kBF16 ? CUDA_R_16BF : CUDA_R_32F;
}

struct CusparseBsrPlan : Plan {
  cusparseSpMatDescr_t a = nullptr;
  cusparseDnMatDescr_t b = nullptr;
  cusparseDnMatDescr_t c = nullptr;
  void* buffer = nullptr;
  float* target = nullptr;
  ~CusparseBsrPlan() override {
    if (a != nullptr) cusparseDestroySpMat(a);
    if (b != nullptr) cusparseDestroyDnMat(b);
    if (c != nullptr) cusparseDestroyDnMat(c);
  }
};

// cuSPARSE computes alpha·A·B + beta·C in f32; bias, ReLU and clamp follow
// in a separate pass, then the cast to the output type.
class CusparseBsr final : public BsrSpmmVariant {
 public:
  std::string_view name() const override { return "cusparse_bsr"; }
  bool Supports(const BsrSpmmProblem& p) const override {
    return PlainLayout(p) && p.m > 0 && p.n > 0 && p.k > 0 && p.m % p.r == 0 && p.k % p.c == 0;
  }
  absl::StatusOr<Plan*> Prepare(const BsrSpmmProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    auto plan = std::make_unique<CusparseBsrPlan>();
    ASSIGN_OR_RETURN(plan->target, F32Target(p, ws));
    const cusparseIndexType_t it = p.idx64 ? CUSPARSE_INDEX_64I : CUSPARSE_INDEX_32I;
    CUSPARSE_RETURN_IF_ERROR(
        cusparseCreateBsr(&plan->a, p.block_rows, p.block_cols, p.nnzb, p.r, p.c,
                          const_cast<void*>(p.block_row_ptr), const_cast<void*>(p.block_col_idx),
                          const_cast<void*>(p.a_values), it, it, CUSPARSE_INDEX_BASE_ZERO,
                          CudaTypeOf(p.type), CUSPARSE_ORDER_ROW),
        "cusparseCreateBsr");
    CUSPARSE_RETURN_IF_ERROR(cusparseCreateDnMat(&plan->b, p.k, p.n, p.n, const_cast<void*>(p.b),
                                                 CudaTypeOf(p.type), CUSPARSE_ORDER_ROW),
                             "cusparseCreateDnMat(B)");
    CUSPARSE_RETURN_IF_ERROR(
        cusparseCreateDnMat(&plan->c, p.m, p.n, p.n, plan->target, CUDA_R_32F, CUSPARSE_ORDER_ROW),
        "cusparseCreateDnMat(C)");
    size_t bytes = 0;
    CUSPARSE_RETURN_IF_ERROR(
        cusparseSpMM_bufferSize(ctx.cusparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                CUSPARSE_OPERATION_NON_TRANSPOSE, &p.epilogue.alpha, plan->a,
                                plan->b, &p.epilogue.beta, plan->c, CUDA_R_32F,
                                CUSPARSE_SPMM_BSR_ALG1, &bytes),
        "cusparseSpMM_bufferSize(BSR)");
    if (bytes > 0) {
      ASSIGN_OR_RETURN(plan->buffer, ws.Alloc(static_cast<int64_t>(bytes)));
    }
    return ws.Keep(std::move(plan));
  }
  absl::Status Run(const BsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const override {
    auto* cp = static_cast<CusparseBsrPlan*>(plan);
    const Epilogue& e = p.epilogue;
    if (e.beta != 0.0f) {
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(cp->target, e.c_in, p.m * p.n * sizeof(float),
                                           cudaMemcpyDeviceToDevice, ctx.stream),
                           "cudaMemcpyAsync(C_in)");
    }
    CUSPARSE_RETURN_IF_ERROR(
        cusparseSpMM(ctx.cusparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                     CUSPARSE_OPERATION_NON_TRANSPOSE, &e.alpha, cp->a, cp->b, &e.beta, cp->c,
                     CUDA_R_32F, CUSPARSE_SPMM_BSR_ALG1, cp->buffer),
        "cusparseSpMM(BSR)");
    CUDA_RETURN_IF_ERROR(kernels::LaunchBiasReluClamp(cp->target, p.m, p.n, e.bias, e.relu,
                                                      e.has_clamp, e.clamp_max, ctx.stream),
                         "epilogue launch");
    return FinishCast(p, cp->target, ctx);
  }
};

}  // namespace

const std::vector<const BsrSpmmVariant*>& BsrSpmmVariants() {
  // Tiles: {bm, bn, warps along m, warps along n, stages}.
  static const BsrTensorCore tc_64x128("bsr_tc_64x128", {64, 128, 2, 2, 3});
  static const BsrTensorCore tc_128x128("bsr_tc_128x128", {128, 128, 4, 2, 3});
  static const BsrTensorCore tc_64x256("bsr_tc_64x256", {64, 256, 2, 4, 3});
  static const BsrTensorCore tc_128x64("bsr_tc_128x64", {128, 64, 4, 1, 4});
  static const BsrTensorCore tc_32x64("bsr_tc_32x64", {32, 64, 1, 4, 4});
  static const BsrTensorCore tc_16x64("bsr_tc_16x64", {16, 64, 1, 4, 4});
  static const BsrTensorCore tc_16x32("bsr_tc_16x32", {16, 32, 1, 2, 4});
  static const BsrCudaCore cuda_core;
  static const CusparseBsr cusparse;
  static const std::vector<const BsrSpmmVariant*> all = {&tc_64x128, &tc_128x128, &tc_64x256,
                                                         &tc_128x64, &tc_32x64,   &tc_16x64,
                                                         &tc_16x32,  &cuda_core,  &cusparse};
  return all;
}

bool IsBsrTensorCoreVariant(const BsrSpmmVariant& v) {
  return dynamic_cast<const BsrTensorCore*>(&v) != nullptr;
}

std::string BsrSpmmTuneKey(const std::string& device_desc, const BsrSpmmProblem& p) {
  return StrCat(device_desc, "|spmm|bsr|", TypeName(p.type), ">", OutName(p.out_type), "|b", p.r,
                "x", p.c, "|", p.a_trans ? "T" : "N", p.b_nmajor ? "T" : "N", p.c_trans ? "T" : "N",
                "|m2^", Log2Bucket(static_cast<double>(p.m)), "|k2^",
                Log2Bucket(static_cast<double>(p.k)), "|n",
                std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(p.n, 1))), p.n % 8 ? "u" : "",
                "|bpr2^", Log2Bucket(p.mean_blocks_per_row), "|", kBsrSpmmVariantSetVersion);
}

}  // namespace sparsed::cuda
