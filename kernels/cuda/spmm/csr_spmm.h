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
#include "spmm/variant.h"

namespace sparsed::cuda {

std::string_view ValueTypeName(ValueType t);

// A CSR SpMM variant: see variant.h for the contract.
using CsrSpmmVariant = Variant<CsrSpmmProblem>;

// Every variant, ours first, then cuSPARSE's.
const std::vector<const CsrSpmmVariant*>& CsrSpmmVariants();
const CsrSpmmVariant* FindCsrSpmmVariant(std::string_view name);
// Changes whenever a variant is added or changed, so old tunings are redone.
inline constexpr std::string_view kCsrSpmmVariantSetVersion = "csr-spmm-v4";

// Row-length statistics of a device CSR (synchronises ctx.stream).
absl::StatusOr<RowStats> RowStatsOf(const int32_t* row_ptr, int64_t m, int64_t nnz,
                                    const ExecContext& ctx, Workspace& ws);

}  // namespace sparsed::cuda
