// cuSPARSE's CSR SpMM algorithms as variants. cuSPARSE computes
// alpha * A * B + beta * C; bias, ReLU and clamp follow in a separate pass.
#include <cuda_runtime.h>
#include <cusparse.h>

#include "csr_spmm.h"
#include "cuda_check.h"
#include "util_kernels.h"

namespace sparsed::cuda {
namespace {

cudaDataType CudaTypeOf(ValueType t) {
  switch (t) {
    case ValueType::kF16:
      return CUDA_R_16F;
    case ValueType::kBF16:
      return CUDA_R_16BF;
    default:
      return CUDA_R_32F;
  }
}

struct CusparsePlan : Plan {
  cusparseSpMatDescr_t a = nullptr;
  cusparseDnMatDescr_t b = nullptr;
  cusparseDnMatDescr_t c = nullptr;
  void* buffer = nullptr;
  ~CusparsePlan() override {
    if (a != nullptr) cusparseDestroySpMat(a);
    if (b != nullptr) cusparseDestroyDnMat(b);
    if (c != nullptr) cusparseDestroyDnMat(c);
  }
};

class CusparseSpmm final : public CsrSpmmVariant {
 public:
  CusparseSpmm(std::string_view name, cusparseSpMMAlg_t alg, bool preprocess)
      : name_(name), alg_(alg), preprocess_(preprocess) {}
  std::string_view name() const override { return name_; }
  bool Supports(const CsrSpmmProblem& p) const override { return p.m > 0 && p.n > 0 && p.k > 0; }

  absl::StatusOr<Plan*> Prepare(const CsrSpmmProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    auto plan = std::make_unique<CusparsePlan>();
    const cudaDataType vt = CudaTypeOf(p.type);
    CUSPARSE_RETURN_IF_ERROR(
        cusparseCreateCsr(&plan->a, p.m, p.k, p.nnz, const_cast<int32_t*>(p.row_ptr),
                          const_cast<int32_t*>(p.col_idx), const_cast<void*>(p.a_values),
                          CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_BASE_ZERO, vt),
        "cusparseCreateCsr");
    CUSPARSE_RETURN_IF_ERROR(cusparseCreateDnMat(&plan->b, p.k, p.n, p.n, const_cast<void*>(p.b),
                                                 vt, CUSPARSE_ORDER_ROW),
                             "cusparseCreateDnMat(B)");
    CUSPARSE_RETURN_IF_ERROR(
        cusparseCreateDnMat(&plan->c, p.m, p.n, p.n, p.c, CUDA_R_32F, CUSPARSE_ORDER_ROW),
        "cusparseCreateDnMat(C)");
    size_t bytes = 0;
    CUSPARSE_RETURN_IF_ERROR(cusparseSetStream(ctx.cusparse, ctx.stream), "cusparseSetStream");
    CUSPARSE_RETURN_IF_ERROR(
        cusparseSpMM_bufferSize(ctx.cusparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                CUSPARSE_OPERATION_NON_TRANSPOSE, &p.alpha, plan->a, plan->b,
                                &p.beta, plan->c, CUDA_R_32F, alg_, &bytes),
        "cusparseSpMM_bufferSize");
    if (bytes > 0) {
      ASSIGN_OR_RETURN(plan->buffer, ws.Alloc(static_cast<int64_t>(bytes)));
    }
    if (preprocess_) {
      CUSPARSE_RETURN_IF_ERROR(
          cusparseSpMM_preprocess(ctx.cusparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                  CUSPARSE_OPERATION_NON_TRANSPOSE, &p.alpha, plan->a, plan->b,
                                  &p.beta, plan->c, CUDA_R_32F, alg_, plan->buffer),
          "cusparseSpMM_preprocess");
    }
    return ws.Keep(std::move(plan));
  }

  absl::Status Run(const CsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const override {
    auto* cp = static_cast<CusparsePlan*>(plan);
    if (p.beta != 0.0f) {
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(p.c, p.c_in, p.m * p.n * sizeof(float),
                                           cudaMemcpyDeviceToDevice, ctx.stream),
                           "cudaMemcpyAsync(C_in)");
    }
    CUSPARSE_RETURN_IF_ERROR(cusparseSetStream(ctx.cusparse, ctx.stream), "cusparseSetStream");
    CUSPARSE_RETURN_IF_ERROR(cusparseSpMM(ctx.cusparse, CUSPARSE_OPERATION_NON_TRANSPOSE,
                                          CUSPARSE_OPERATION_NON_TRANSPOSE, &p.alpha, cp->a, cp->b,
                                          &p.beta, cp->c, CUDA_R_32F, alg_, cp->buffer),
                             "cusparseSpMM");
    CUDA_RETURN_IF_ERROR(kernels::LaunchBiasReluClamp(p.c, p.m, p.n, p.bias, p.relu, p.has_clamp,
                                                      p.clamp_max, ctx.stream),
                         "epilogue launch");
    return absl::OkStatus();
  }

 private:
  std::string_view name_;
  cusparseSpMMAlg_t alg_;
  bool preprocess_;
};

}  // namespace

std::vector<const CsrSpmmVariant*> CusparseSpmmVariants() {
  static const CusparseSpmm alg1("cusparse_csr_alg1", CUSPARSE_SPMM_CSR_ALG1, true);
  static const CusparseSpmm alg2("cusparse_csr_alg2", CUSPARSE_SPMM_CSR_ALG2, false);
  static const CusparseSpmm alg3("cusparse_csr_alg3", CUSPARSE_SPMM_CSR_ALG3, true);
  return {&alg1, &alg2, &alg3};
}

}  // namespace sparsed::cuda
