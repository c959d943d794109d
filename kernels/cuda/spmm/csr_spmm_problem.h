// CSR SpMM on the GPU: the canonical problem every variant solves, and the
// variant interface the autotuner chooses among.
//
//   C[m, n] = finish(alpha * A[m, k] * B[k, n] + beta * C_in[m, n])
//   finish(x)[i, j] = min(relu?(x + bias[j]), clamp_max)      (each optional)
//
// A is canonical CSR with int32 indices (sorted, no duplicates), B is dense
// row-major, both of value type `type`; C and C_in are f32 row-major and do
// not alias. Transposes, COO and dense-times-sparse are reduced to this form
// by the backend before a variant sees the problem.
#pragma once

#include <cstdint>

namespace sparsed::cuda {

enum class ValueType { kF32, kF16, kBF16 };
constexpr int64_t SizeOf(ValueType t) { return t == ValueType::kF32 ? 4 : 2; }
// What a kernel that writes its output type itself writes.
enum class OutType { kF32, kBF16, kF16 };
constexpr int64_t SizeOf(OutType t) { return t == OutType::kF32 ? 4 : 2; }

// Row-length statistics of A, computed on the device (RowStatsOf).
struct RowStats {
  int64_t max_row = 0;
  int64_t empty_rows = 0;
  double mean = 0, stddev = 0;
};

struct CsrSpmmProblem {
  int64_t m = 0, k = 0, n = 0, nnz = 0;
  const int32_t* row_ptr = nullptr;  // device, m + 1
  const int32_t* col_idx = nullptr;  // device, nnz
  const void* a_values = nullptr;    // device, nnz of `type`
  const void* b = nullptr;           // device, k * n of `type`, row-major
  ValueType type = ValueType::kF32;
  float* c = nullptr;  // device, m * n, every element written
  float alpha = 1.0f, beta = 0.0f;
  const float* c_in = nullptr;  // device, m * n; read only when beta != 0
  const float* bias = nullptr;  // device, n values, or nullptr
  bool relu = false;
  bool has_clamp = false;
  float clamp_max = 0.0f;
  RowStats stats;
};

}  // namespace sparsed::cuda
