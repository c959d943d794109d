// CPU SpMM kernels (internal to the CPU backend). Operands are already in the
// form the kernels want: the sparse operand is a canonical CSR holding op(S).
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace sparsed::cpu {

// op(S) as CSR, with index type I.
template <class I>
struct CsrView {
  int64_t rows = 0, cols = 0;
  std::span<const I> row_ptr, col_idx;
  std::span<const float> values;
};

// A row-major dense matrix and whether it is used transposed.
struct DenseView {
  const float* data = nullptr;
  int64_t rows = 0, cols = 0;  // as stored
  bool transpose = false;
};

// Where results go and how each output element is finished:
//   out[i, j] = min(relu(alpha * acc + beta * c_in[i, j] + bias[j]), clamp_max)
struct OutputSpec {
  float* out = nullptr;  // [m, n]
  int64_t m = 0, n = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* c_in = nullptr;  // read only when beta != 0
  const float* bias = nullptr;  // n values or nullptr
  bool relu = false;
  std::optional<float> clamp_max;
  int threads = 1;
};

// C = finish(op(S) * op(D)) with op(S) [m, k] sparse and op(D) [k, n] dense.
void SparseTimesDense(const CsrView<int32_t>& s, const DenseView& d, const OutputSpec& out);
void SparseTimesDense(const CsrView<int64_t>& s, const DenseView& d, const OutputSpec& out);

// C = finish(op(D) * op(S)) with op(D) [m, k] dense and op(S) [k, n] sparse.
void DenseTimesSparse(const DenseView& d, const CsrView<int32_t>& s, const OutputSpec& out);
void DenseTimesSparse(const DenseView& d, const CsrView<int64_t>& s, const OutputSpec& out);

// The same products with the sparse operand transposed, read as stored (no
// transpose is built). C = finish(Sᵀ * op(D)) with S stored [k, m]:
void SparseTransposedTimesDense(const CsrView<int32_t>& s, const DenseView& d,
                                const OutputSpec& out);
void SparseTransposedTimesDense(const CsrView<int64_t>& s, const DenseView& d,
                                const OutputSpec& out);
// C = finish(op(D) * Sᵀ) with S stored [n, k]:
void DenseTimesSparseTransposed(const DenseView& d, const CsrView<int32_t>& s,
                                const OutputSpec& out);
void DenseTimesSparseTransposed(const DenseView& d, const CsrView<int64_t>& s,
                                const OutputSpec& out);

}  // namespace sparsed::cpu
