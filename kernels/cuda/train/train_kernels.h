// Device kernels of the training primitives (train_ops.h). Every launcher
// queues work on `stream`, launches nothing for an empty problem and returns
// the launch error. Matrices are row-major f32; pattern indices are int64
// (the hub's WideIndices view of either index dtype).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace sparsed::cuda::train {

// ------------------------------------------------------------------ SDDMM
// out[p] = alpha * dot(a[row(p), :k], bt[col_idx[p], :k]) + beta * c[p] for
// p in [0, nnz), where row(p) is the CSR row holding p. a is op(A) with rows
// `lda` apart and bt is op(B)ᵀ with rows `ldb` apart, both with unit stride
// along k (so the dot product reads coalesced). c is read only when beta != 0.
struct SddmmProblem {
  const float* a = nullptr;
  int64_t lda = 0;
  const float* bt = nullptr;
  int64_t ldb = 0;
  const int64_t* row_ptr = nullptr;  // m + 1
  const int64_t* col_idx = nullptr;  // nnz
  int64_t m = 0, nnz = 0, k = 0;
  float alpha = 1.0f, beta = 0.0f;
  const float* c = nullptr;
  float* out = nullptr;
};
cudaError_t LaunchSddmm(const SddmmProblem& p, int num_sms, cudaStream_t stream);

// ----------------------------------------------------------- dense matmul
// c[rows, n] = rows [row_begin, row_begin + rows) of op(A) · op(B), f32
// accumulation. A is stored [.., lda] row-major (op(A) = A or Aᵀ), B likewise.
struct SgemmProblem {
  const float* a = nullptr;
  int64_t lda = 0;
  bool transpose_a = false;
  const float* b = nullptr;
  int64_t ldb = 0;
  bool transpose_b = false;
  int64_t row_begin = 0, rows = 0, n = 0, k = 0;
  float* c = nullptr;
};
cudaError_t LaunchSgemm(const SgemmProblem& p, cudaStream_t stream);

// -------------------------------------------------------------- optimizer
// One update of `count` parameters in place, the formulas of train_ops.h.
// bias1 = 1 - beta1^step and bias2 = 1 - beta2^step (Adam / AdamW).
// OptimizerKind's values (this header stays free of the C++20 API headers,
// which nvcc does not compile here).
constexpr int kOptimizerSgd = 1, kOptimizerAdam = 2, kOptimizerAdamW = 3;
struct OptimizerProblem {
  int kind = kOptimizerSgd;
  float lr = 0, momentum = 0, weight_decay = 0, beta1 = 0, beta2 = 0, eps = 0;
  bool nesterov = false;
  float grad_scale = 1.0f;
  float bias1 = 1.0f, bias2 = 1.0f;
  int64_t count = 0;
  float* param = nullptr;
  const float* grad = nullptr;
  float* state1 = nullptr;  // momentum buffer / m (null: plain SGD)
  float* state2 = nullptr;  // v (Adam / AdamW)
};
cudaError_t LaunchOptimizerUpdate(const OptimizerProblem& p, cudaStream_t stream);

// ------------------------------------------------------------------ top-k
constexpr int kTopKLargest = 1, kTopKLargestMagnitude = 2, kTopKSmallestMagnitude = 3;
// keys[i] = a 32-bit key of scores[i] that sorts ascending best first for the
// order (TopKOrder's value: kTopKLargest, ...); nan_count (zeroed first) gains the NaNs seen.
cudaError_t LaunchTopKKeys(const float* scores, int64_t count, int order, uint32_t* keys,
                           unsigned long long* nan_count, cudaStream_t stream);
// Stable ascending radix sort of (key, index) pairs (CUB); temp == nullptr
// asks for temp_bytes.
cudaError_t SortKeyIndexPairs(void* temp, size_t& temp_bytes, const uint32_t* keys_in,
                              uint32_t* keys_out, const int64_t* index_in, int64_t* index_out,
                              int64_t count, cudaStream_t stream);
// out[i] = i.
cudaError_t LaunchIota(int64_t* out, int64_t count, cudaStream_t stream);

// ------------------------------------------------------------ element-wise
// y = a * x + b * y (y not read when b = 0).
cudaError_t LaunchAxpby(float a, const float* x, float b, float* y, int64_t count,
                        cudaStream_t stream);
// dx = y > 0 ? dy : 0.
cudaError_t LaunchReluBackward(const float* dy, const float* y, float* dx, int64_t count,
                               cudaStream_t stream);
// out[j] = sum over rows of x[rows, cols] (column j), f32 accumulation in a
// fixed order; `partial` holds chunks * cols floats where chunks =
// ColumnSumsChunks(rows, cols, num_sms) (null when that is 1).
int64_t ColumnSumsChunks(int64_t rows, int64_t cols, int num_sms);
cudaError_t LaunchColumnSums(const float* x, int64_t rows, int64_t cols, float* partial,
                             int64_t chunks, float* out, cudaStream_t stream);
// tile[rows, cols] = |tile|, then -1 at the stored positions of pattern rows
// [row_begin, row_begin + rows).
cudaError_t LaunchGrowthScores(float* tile, int64_t rows, int64_t cols, const int64_t* row_ptr,
                               const int64_t* col_idx, int64_t row_begin, cudaStream_t stream);
// out[i] = index[i] >= 0 ? src[index[i]] : 0.
cudaError_t LaunchGatherOrZero(const float* src, const int64_t* index, float* out, int64_t count,
                               cudaStream_t stream);
// out[i] = src[index[i]] (top-k values).
cudaError_t LaunchGather(const float* src, const int64_t* index, float* out, int64_t count,
                         cudaStream_t stream);

}  // namespace sparsed::cuda::train
