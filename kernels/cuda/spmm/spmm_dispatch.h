// SpMM dispatch on one device: every form of SpmmArgs (either operand
// sparse, in any format, transposes, mixed value types, any output dtype) is
// reduced to a problem some variant list solves, and the tuner of that list
// picks and runs a variant.
//
// - BSR (either side, either transpose): BsrSpmmProblem (bsr_spmm.h), when
//   a BSR variant supports it (16-bit values on tensor cores; f32 or mixed
//   types on the CUDA-core kernel or cuSPARSE, B made row-major first).
// - 2:4 with 16-bit values of one type, the N:M operand not transposed when
//   it is A, transposed when it is B (X·Wᵀ): NmTcProblem (nm_tc_spmm.h) on
//   sparse tensor cores, written in out_dtype with the epilogue fused.
// - Other N:M A not transposed: the direct CUDA-core kernel.
// - Everything else: int32 CSR (COO, CSC views, BSR/N:M converted on the
//   device), then CsrSpmmProblem, the scatter kernel for transposed sparse
//   operands, and transposes with the epilogue for dense × sparse.
// Results not written in out_dtype by their kernel are computed in f32 and
// cast at the end.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "exec_context.h"
#include "sparsed/spmm.h"
#include "sparsed/tensor.h"
#include "spmm/bsr_spmm.h"
#include "spmm/csr_spmm_tuner.h"
#include "spmm/nm_repack_cache.h"
#include "spmm/nm_tc_spmm.h"
#include "spmm/row_stats_cache.h"
#include "spmm/tuner.h"

namespace sparsed::cuda {

struct SpmmTuners {
  const CsrSpmmTuner* csr = nullptr;
  const Tuner<BsrSpmmProblem>* bsr = nullptr;
  const Tuner<NmTcProblem>* nm = nullptr;
  std::string device_desc;  // first part of every tuning key
  bool poison = false;      // poison temporaries too (tests)
  bool tensor_cores = false;  // tune among the tensor-core BSR variants
  std::string forced;         // a forced variant name (runs even when tensor_cores is off)
  bool nm_wgmma = false;      // also tune among the unverified wgmma.sp (nm_wg_*) tiles
  RowStatsCache* row_stats = nullptr;  // null: computed on every call
  NmRepackCache* nm_repack = nullptr;  // null: N:M weights repacked to 2:4 on every call
  bool dense_gather = false;  // D·Sᵀ in f32 by the row-gather kernel (dense_csr_gather.h)
  int dense_gather_config = 0;  // its configuration (ResolveDenseGatherConfig applied)
};

// Computes args (already checked by CheckSpmm, operands on ctx's device)
// into `out`, a dense [m, n] tensor of args.out_dtype.
absl::Status SpmmOnDevice(const SpmmArgs& args, Tensor& out, const SpmmTuners& tuners,
                          const ExecContext& ctx, Workspace& ws);

}  // namespace sparsed::cuda
