// Device kernels of the format conversions, transposes and pruning. Every
// launcher queues work on `stream`, launches nothing for an empty problem and
// returns the launch error. Index arrays are int64 ("hub" CSR, see hub.h);
// values are moved as raw 2- or 4-byte words (`elem_bytes`), so one
// instantiation serves f16 and bf16.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "spmm/csr_spmm_problem.h"

namespace sparsed::cuda::fmt {

// ---------------------------------------------------------------- indices

// out[i] = in[i] between int32 and int64 arrays (a memcpy when equal widths).
cudaError_t CopyIndices(const void* in, bool in64, void* out, bool out64, int64_t count,
                        cudaStream_t stream);
// out[i] = i.
cudaError_t Iota(int64_t* out, int64_t count, cudaStream_t stream);
// row_ptr[r] = first position of row r in the sorted `rows` (r in [0, nrows]).
cudaError_t RowPtrFromSorted(const int64_t* rows, int64_t nnz, int64_t nrows, int64_t* row_ptr,
                             cudaStream_t stream);
// rows[e] = the row of entry e.
cudaError_t ExpandRows(const int64_t* row_ptr, int64_t nrows, int64_t nnz, int64_t* rows,
                       cudaStream_t stream);
// out[i] = in[perm[i]] for int64 arrays.
cudaError_t GatherIndices(const int64_t* in, const int64_t* perm, int64_t* out, int64_t count,
                          cudaStream_t stream);
// out[i] = in[perm[i]] for values.
cudaError_t GatherValues(const void* in, int elem_bytes, const int64_t* perm, void* out,
                         int64_t count, cudaStream_t stream);

// ------------------------------------------------------- row compaction
// Each kernel pair walks candidate entries of every row in column order:
// Count writes counts[r] (and counts[rows] = 0, so an exclusive scan of rows+1
// counts gives row pointers); Fill writes the kept entries from those row
// pointers. One warp per row; order within a row is preserved.

// Dense [rows, cols]: kept = non-zero (+0 and -0 are zero; NaN is kept).
cudaError_t DenseNonzeroCount(const void* dense, int elem_bytes, int64_t rows, int64_t cols,
                              int64_t* counts, cudaStream_t stream);
cudaError_t DenseNonzeroFill(const void* dense, int elem_bytes, int64_t rows, int64_t cols,
                             const int64_t* row_ptr, int64_t* col_idx, void* values,
                             cudaStream_t stream);

// CSR entries, kept = flags[e] != 0, or non-zero value when flags is null.
cudaError_t CsrKeepCount(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                         int elem_bytes, const uint8_t* flags, int64_t rows, int64_t* counts,
                         cudaStream_t stream);
cudaError_t CsrKeepFill(const int64_t* in_row_ptr, const int64_t* in_col_idx, const void* in_values,
                        int elem_bytes, const uint8_t* flags, int64_t rows, const int64_t* row_ptr,
                        int64_t* col_idx, void* values, cudaStream_t stream);

struct BsrArrays {
  const int64_t* block_row_ptr;
  const int64_t* block_col_idx;
  const void* values;
  int64_t block_rows, block_cols;  // R, C
  int64_t cols;                    // scalar columns (padding beyond is skipped)
};
// BSR scalar rows, kept = non-zero value inside the matrix.
cudaError_t BsrNonzeroCount(const BsrArrays& a, int elem_bytes, int64_t rows, int64_t* counts,
                            cudaStream_t stream);
cudaError_t BsrNonzeroFill(const BsrArrays& a, int elem_bytes, int64_t rows, const int64_t* row_ptr,
                           int64_t* col_idx, void* values, cudaStream_t stream);

struct NmArrays {
  const void* values;
  const int32_t* meta;
  int n, m;
  int64_t groups;  // per row
  bool packed;     // 2:4 nibble metadata
};
// N:M slots, kept = non-zero value.
cudaError_t NmNonzeroCount(const NmArrays& a, int elem_bytes, int64_t rows, int64_t* counts,
                           cudaStream_t stream);
cudaError_t NmNonzeroFill(const NmArrays& a, int elem_bytes, int64_t rows, const int64_t* row_ptr,
                          int64_t* col_idx, void* values, cudaStream_t stream);

// ------------------------------------------------------------ hub → format

// dense[rows, cols] (zeroed by the caller) gets every entry.
cudaError_t CsrScatterDense(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                            int elem_bytes, int64_t rows, int64_t cols, int64_t nnz, void* dense,
                            cudaStream_t stream);
// keys[e] = (row / R) * block_col_count + col / C.
cudaError_t BlockKeys(const int64_t* row_ptr, const int64_t* col_idx, int64_t rows, int64_t nnz,
                      int64_t R, int64_t C, int64_t block_col_count, uint64_t* keys,
                      cudaStream_t stream);
// From the sorted distinct block keys: block_row_ptr (block_row_count + 1)
// and block_col_idx (nblocks).
cudaError_t BlockStructure(const uint64_t* keys, int64_t nblocks, int64_t block_row_count,
                           int64_t block_col_count, int64_t* block_row_ptr, int64_t* block_col_idx,
                           cudaStream_t stream);
// Writes every CSR entry into its block of `blocks` (zeroed by the caller).
cudaError_t BsrScatter(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                       int elem_bytes, int64_t rows, int64_t nnz, int64_t R, int64_t C,
                       int64_t block_col_count, const uint64_t* keys, int64_t nblocks, void* blocks,
                       cudaStream_t stream);
// One thread per (row, group): the group's entries go to slots in position
// order, free slots take the smallest unused positions and value 0. Packed
// 2:4 metadata is OR-ed into `meta` (zeroed by the caller). A group with more
// than n entries lowers *bad_group to its row-major group index.
cudaError_t NmFromCsr(const int64_t* row_ptr, const int64_t* col_idx, const void* values,
                      int elem_bytes, int64_t rows, int64_t groups, int n, int m, bool packed,
                      void* out_values, int32_t* meta, unsigned long long* bad_group,
                      cudaStream_t stream);

// ------------------------------------------------------------ transposes

// out[cols, rows] = in[rows, cols]ᵀ.
cudaError_t DenseTranspose(const void* in, int elem_bytes, int64_t rows, int64_t cols, void* out,
                           cudaStream_t stream);
// Output block p (C x R) is the transpose of input block perm[p] (R x C).
cudaError_t BlockTransposeValues(const void* in, int elem_bytes, const int64_t* perm,
                                 int64_t nblocks, int64_t R, int64_t C, void* out,
                                 cudaStream_t stream);

// ------------------------------------------------------------- pruning

// *first = the smallest index e < count whose value is NaN (unchanged when
// none is; initialise it to INT64_MAX).
cudaError_t FirstNan(const void* values, ValueType type, int64_t count, int64_t* first,
                     cudaStream_t stream);

// Sort keys that order entries for magnitude pruning when sorted ascending
// (stable, payload = entry index): larger |w| first; per_row puts the row in
// the high bits so each row's entries are contiguous.
cudaError_t MagnitudeKeys(const int64_t* row_ptr, const void* values, ValueType type, int64_t rows,
                          int64_t nnz, bool per_row, uint64_t* keys, cudaStream_t stream);
// flags[perm[p]] = 1 for the first `keep` sorted positions (global), or for
// the first `keep` of each row (per_row; row_ptr of the unsorted entries).
cudaError_t MarkKept(const int64_t* perm, const int64_t* row_ptr, int64_t rows, int64_t nnz,
                     bool per_row, int64_t keep, uint8_t* flags, cudaStream_t stream);
// N:M pruning of dense [rows, cols]: each group keeps its n largest |w|
// (ties: smaller position). meta must be zeroed when packed.
cudaError_t NmPruneDense(const void* dense, ValueType type, int64_t rows, int64_t cols, int n,
                         int m, bool packed, void* out_values, int32_t* meta, cudaStream_t stream);
// Frobenius norm (float64, row-major summation order) of every R x C block of
// dense [rows, cols]; keys sort the norms descending when sorted ascending.
cudaError_t BlockNorms(const void* dense, ValueType type, int64_t rows, int64_t cols, int64_t R,
                       int64_t C, int64_t block_row_count, int64_t block_col_count, double* norms,
                       uint64_t* keys, cudaStream_t stream);
// flags[perm[p]] = 1 for p < keep where the block's norm is not zero.
cudaError_t MarkKeptBlocks(const int64_t* perm, const double* norms, int64_t keep, uint8_t* flags,
                           cudaStream_t stream);
// Widens uint8 flags into int64 (count + 1 entries, last 0) for a scan.
cudaError_t FlagsToCounts(const uint8_t* flags, int64_t count, int64_t* out, cudaStream_t stream);
// From kept-block flags and their exclusive scan (total + 1 entries): the BSR
// structure and, per stored block, its row-major block position.
cudaError_t KeptBlockStructure(const uint8_t* flags, const int64_t* scan, int64_t block_row_count,
                               int64_t block_col_count, int64_t* block_row_ptr,
                               int64_t* block_col_idx, int64_t* block_pos, cudaStream_t stream);
// Copies the blocks at `block_pos` out of dense [rows, cols] (padding zeros).
cudaError_t GatherBlocks(const void* dense, int elem_bytes, int64_t rows, int64_t cols, int64_t R,
                         int64_t C, int64_t block_col_count, const int64_t* block_pos,
                         int64_t nblocks, void* out, cudaStream_t stream);

// ------------------------------------------------------------- CUB

// Two-phase CUB calls: with temp == nullptr only `temp_bytes` is set.
cudaError_t ExclusiveSumI64(void* temp, size_t& temp_bytes, const int64_t* in, int64_t* out,
                            int64_t count, cudaStream_t stream);
cudaError_t SortPairsU64(void* temp, size_t& temp_bytes, const uint64_t* keys_in,
                         uint64_t* keys_out, const int64_t* values_in, int64_t* values_out,
                         int64_t count, int end_bit, cudaStream_t stream);
cudaError_t SortKeysU64(void* temp, size_t& temp_bytes, const uint64_t* keys_in, uint64_t* keys_out,
                        int64_t count, int end_bit, cudaStream_t stream);
cudaError_t UniqueU64(void* temp, size_t& temp_bytes, const uint64_t* in, uint64_t* out,
                      int64_t* num_out, int64_t count, cudaStream_t stream);

}  // namespace sparsed::cuda::fmt
