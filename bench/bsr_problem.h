// Host side of the BSR SpMM benchmark (bsr_spmm.cc): random block-sparse
// matrices with square R×R blocks and bf16 values, their dense and
// Blocked-ELL equivalents, and a float64 reference on sampled rows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparsed::bench {

// How the present blocks are chosen.
enum class BlockPattern {
  kBalanced,  // uniformly at random within each block row, same count per block row where possible
  kRandom,    // uniformly at random over the whole block grid
};

// A BSR matrix on the host: [m, k] with r×r blocks (r divides m and k),
// block_col_idx sorted within each block row, each block row-major, values
// bf16 bit patterns (never zero).
struct BsrHost {
  int64_t m = 0, k = 0, r = 0;
  std::vector<int32_t> row_ptr;  // m / r + 1
  std::vector<int32_t> col_idx;  // nnzb
  std::vector<uint16_t> values;  // nnzb * r * r

  int64_t mb() const { return m / r; }
  int64_t kb() const { return k / r; }
  int64_t nnzb() const { return static_cast<int64_t>(col_idx.size()); }
  double density() const { return static_cast<double>(nnzb()) / (mb() * kb()); }
  int64_t max_blocks_per_row() const;
};

// round(density · block count) blocks (at least 1) laid out by `pattern`,
// values uniform in [-1, 1] rounded to bf16, resampled where they round to 0.
BsrHost RandomBsr(int64_t m, int64_t k, int64_t r, double density, BlockPattern pattern,
                  uint64_t seed);

// `count` bf16 values uniform in [-1, 1], none zero.
std::vector<uint16_t> RandomBf16(int64_t count, uint64_t seed);

// The dense row-major [m, k] bf16 equivalent (zeros outside the blocks).
std::vector<uint16_t> DenseOf(const BsrHost& a);

// Blocked-ELL as cuSPARSE stores it: every block row holds `ell_blocks`
// slots (the most blocks of any block row); col_ind is [m / r][ell_blocks]
// with -1 in unused slots; values is row-major [m][ell_blocks · r], slot s of
// block row i holding its block in columns [s·r, (s+1)·r) of rows
// [i·r, (i+1)·r) (zeros in unused slots).
struct BlockedEllHost {
  int64_t ell_blocks = 0;
  std::vector<int32_t> col_ind;
  std::vector<uint16_t> values;
};
BlockedEllHost ToBlockedEll(const BsrHost& a);

// bf16 bits -> f32 for a whole array.
std::vector<float> Bf16ToF32(const std::vector<uint16_t>& v);
// Row-major [rows, cols] -> row-major [cols, rows] (a column-major copy).
template <class T>
std::vector<T> Transposed(const std::vector<T>& v, int64_t rows, int64_t cols);

// `count` distinct row indices in [0, m), sorted.
std::vector<int64_t> SampleRows(int64_t m, int64_t count, uint64_t seed);

// Float64 reference of rows `rows` of A · B (B row-major [k, n] f32 holding
// bf16-representable values): result[i · n + j] is row rows[i], column j.
// Uses every core.
std::vector<double> ReferenceRows(const BsrHost& a, const std::vector<float>& b, int64_t n,
                                  const std::vector<int64_t>& rows);

// ‖got − ref‖ / ‖ref‖ (NaN when got holds a NaN or an infinity).
double RelError(const std::vector<double>& ref, const std::vector<float>& got);

}  // namespace sparsed::bench
