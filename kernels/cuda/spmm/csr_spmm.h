// CSR SpMM on the GPU: the variant interface the autotuner chooses among (the
// problem itself is described in csr_spmm_problem.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "csr_spmm_problem.h"
#include "exec_context.h"

namespace sparsed::cuda {

std::string_view ValueTypeName(ValueType t);

class CsrSpmmVariant {
 public:
  virtual ~CsrSpmmVariant() = default;
  virtual std::string_view name() const = 0;
  // Whether this variant computes `p` (shapes, alignment, value type).
  virtual bool Supports(const CsrSpmmProblem& p) const = 0;
  // One-time work for p's pattern and shapes (workspaces, cuSPARSE
  // preprocessing); its memory lives in `ws`. May return UNIMPLEMENTED when
  // a library turns the problem down.
  virtual absl::StatusOr<Plan*> Prepare(const CsrSpmmProblem& p, const ExecContext& ctx,
                                        Workspace& ws) const = 0;
  // Queues the computation on ctx.stream (asynchronous).
  virtual absl::Status Run(const CsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const = 0;
};

// Every variant, ours first, then cuSPARSE's.
const std::vector<const CsrSpmmVariant*>& CsrSpmmVariants();
const CsrSpmmVariant* FindCsrSpmmVariant(std::string_view name);
// Changes whenever a variant is added or changed, so old tunings are redone.
inline constexpr std::string_view kCsrSpmmVariantSetVersion = "csr-spmm-v3";

// Row-length statistics of a device CSR (synchronises ctx.stream).
absl::StatusOr<RowStats> RowStatsOf(const int32_t* row_ptr, int64_t m, int64_t nnz,
                                    const ExecContext& ctx, Workspace& ws);

}  // namespace sparsed::cuda
