// BSR SpMM on the GPU: the problem every BSR variant solves, and the list.
//
//   P[m, n] = op(A) · op(B)          (f32 accumulation)
//   out     = min(relu?(alpha·P + beta·C_in + bias), clamp_max)   (each optional)
//
// A is BSR with r × c blocks (row-major within a block, edge blocks
// zero-padded); op(A) = Aᵀ when a_trans (then the transposed block index
// t_ptr/t_blk/t_kblk must be set: for each block column of A, its blocks
// and their block rows, int32). op(B) [k, n] is row-major with row stride
// ldb, or stored [n][k] (b_nmajor, row stride ldb). out is row-major [m, n]
// with row stride ldc, or [n][m] (c_trans: a product computed transposed);
// C_in (f32) is laid out like out; bias is indexed by out's column (P's
// column, or P's row when c_trans). A and B share one value type; out is
// out_type (f32, f16, bf16).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spmm/blocked_spmm_kernels.h"
#include "spmm/csr_spmm_problem.h"
#include "spmm/variant.h"

namespace sparsed::cuda {

struct BsrSpmmProblem {
  int64_t m = 0, n = 0, k = 0;
  int64_t r = 0, c = 0;    // stored block shape
  int64_t block_rows = 0;  // stored block rows of A
  int64_t block_cols = 0;  // stored block columns of A
  int64_t nnzb = 0;
  bool a_trans = false;
  const void* block_row_ptr = nullptr;  // block_rows + 1, int32 or int64 (idx64)
  const void* block_col_idx = nullptr;  // nnzb
  bool idx64 = false;
  const int32_t* t_ptr = nullptr;   // a_trans: block_cols + 1
  const int32_t* t_blk = nullptr;   // a_trans: nnzb block ids
  const int32_t* t_kblk = nullptr;  // a_trans: nnzb block rows
  const void* a_values = nullptr;   // nnzb · r · c of `type`
  ValueType type = ValueType::kBF16;
  const void* b = nullptr;
  int64_t ldb = 0;
  bool b_nmajor = false;
  void* out = nullptr;
  OutType out_type = OutType::kF32;
  int64_t ldc = 0;
  bool c_trans = false;
  Epilogue epilogue;  // alpha, beta with c_in, bias, relu, clamp
  double mean_blocks_per_row = 0;    // of op(A)'s block rows (tuning key)
};

using BsrSpmmVariant = Variant<BsrSpmmProblem>;

// Every BSR variant: the tensor-core tiles, our CUDA-core kernel, cuSPARSE.
const std::vector<const BsrSpmmVariant*>& BsrSpmmVariants();
// True for the JIT tensor-core variants (bsr_tc_*).
bool IsBsrTensorCoreVariant(const BsrSpmmVariant& v);
// Changes whenever a variant is added or changed, so old tunings are redone.
inline constexpr std::string_view kBsrSpmmVariantSetVersion = "bsr-spmm-v1";

// "<device>|spmm|bsr|<dtype>><out>|b<r>x<c>|<a_trans><b_nmajor><c_trans>|m2^a|k2^b|n<bucket>|
//  bpr2^c|<version>"
std::string BsrSpmmTuneKey(const std::string& device_desc, const BsrSpmmProblem& p);

}  // namespace sparsed::cuda
