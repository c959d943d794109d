// Element-wise ops and reductions of training: grid-stride loops of 256
// threads, except the column sums (a 32 x 8 block per 32 columns and chunk
// of rows, a fixed summation order so results repeat bit for bit) and the
// growth-score marking (a warp per tile row, lanes over its stored entries).
#include <algorithm>

#include "train/train_kernels.h"

namespace sparsed::cuda::train {
namespace {

constexpr int kThreads = 256;

unsigned GridFor(int64_t count) {
  return static_cast<unsigned>(std::min<int64_t>((count + kThreads - 1) / kThreads, 65536));
}

#define SPARSED_GRID_STRIDE(i, count)                                                        \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (count); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void AxpbyKernel(float a, const float* __restrict__ x, float b, float* __restrict__ y,
                            int64_t count) {
  // b = 0 does not read y (it may hold NaN, e.g. fresh memory).
  SPARSED_GRID_STRIDE(i, count) { y[i] = b != 0.0f ? a * x[i] + b * y[i] : a * x[i]; }
}

__global__ void ReluBackwardKernel(const float* __restrict__ dy, const float* __restrict__ y,
                                   float* __restrict__ dx, int64_t count) {
  SPARSED_GRID_STRIDE(i, count) { dx[i] = y[i] > 0.0f ? dy[i] : 0.0f; }
}

__global__ void AbsKernel(float* __restrict__ x, int64_t count) {
  SPARSED_GRID_STRIDE(i, count) { x[i] = fabsf(x[i]); }
}

__global__ void MarkStoredKernel(float* __restrict__ tile, int64_t rows, int64_t cols,
                                 const int64_t* __restrict__ row_ptr,
                                 const int64_t* __restrict__ col_idx, int64_t row_begin) {
  const int lane = threadIdx.x % 32;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x / 32);
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32; r < rows;
       r += warps) {
    float* row = tile + r * cols;
    const int64_t end = row_ptr[row_begin + r + 1];
    for (int64_t p = row_ptr[row_begin + r] + lane; p < end; p += 32) row[col_idx[p]] = -1.0f;
  }
}

__global__ void GatherOrZeroKernel(const float* __restrict__ src, const int64_t* __restrict__ index,
                                   float* __restrict__ out, int64_t count) {
  SPARSED_GRID_STRIDE(i, count) {
    const int64_t s = index[i];
    out[i] = s >= 0 ? src[s] : 0.0f;
  }
}

// dst[chunk, j] = sum of x[rows of the chunk, j]. Block (32, 8): threadIdx.x
// picks the column, threadIdx.y every 8th row of the chunk; the 8 partial
// sums are then added in order by threadIdx.y == 0.
__global__ void ColumnSumsKernel(const float* __restrict__ x, int64_t rows, int64_t cols,
                                 int64_t rows_per_chunk, float* __restrict__ dst) {
  __shared__ float part[8][33];
  const int64_t j = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  const int64_t begin = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
  float acc = 0.0f;
  if (j < cols) {
    for (int64_t r = begin + threadIdx.y; r < end; r += 8) acc += x[r * cols + j];
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && j < cols) {
    float s = part[0][threadIdx.x];
    for (int q = 1; q < 8; ++q) s += part[q][threadIdx.x];
    dst[static_cast<int64_t>(blockIdx.y) * cols + j] = s;
  }
}

cudaError_t ColumnSumsPass(const float* x, int64_t rows, int64_t cols, int64_t chunks, float* dst,
                           cudaStream_t stream) {
  const int64_t rows_per_chunk = std::max<int64_t>((rows + chunks - 1) / chunks, 1);
  const dim3 grid(static_cast<unsigned>((cols + 31) / 32), static_cast<unsigned>(chunks));
  ColumnSumsKernel<<<grid, dim3(32, 8), 0, stream>>>(x, rows, cols, rows_per_chunk, dst);
  return cudaGetLastError();
}

#undef SPARSED_GRID_STRIDE

}  // namespace

cudaError_t LaunchAxpby(float a, const float* x, float b, float* y, int64_t count,
                        cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  AxpbyKernel<<<GridFor(count), kThreads, 0, stream>>>(a, x, b, y, count);
  return cudaGetLastError();
}

cudaError_t LaunchReluBackward(const float* dy, const float* y, float* dx, int64_t count,
                               cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  ReluBackwardKernel<<<GridFor(count), kThreads, 0, stream>>>(dy, y, dx, count);
  return cudaGetLastError();
}

int64_t ColumnSumsChunks(int64_t rows, int64_t cols, int num_sms) {
  // Enough blocks for ~4 per SM, at least 64 rows per chunk.
  const int64_t col_tiles = std::max<int64_t>((cols + 31) / 32, 1);
  const int64_t target = 4 * static_cast<int64_t>(std::max(num_sms, 1));
  const int64_t by_occupancy = (target + col_tiles - 1) / col_tiles;
  const int64_t by_rows = std::max<int64_t>((rows + 63) / 64, 1);
  return std::clamp<int64_t>(std::min(by_occupancy, by_rows), 1, 65535);
}

cudaError_t LaunchColumnSums(const float* x, int64_t rows, int64_t cols, float* partial,
                             int64_t chunks, float* out, cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  if ((cols + 31) / 32 > 0x7fffffff || chunks < 1 || chunks > 65535) return cudaErrorInvalidValue;
  if (chunks == 1) return ColumnSumsPass(x, rows, cols, 1, out, stream);
  if (partial == nullptr) return cudaErrorInvalidValue;
  const cudaError_t err = ColumnSumsPass(x, rows, cols, chunks, partial, stream);
  if (err != cudaSuccess) return err;
  return ColumnSumsPass(partial, chunks, cols, 1, out, stream);
}

cudaError_t LaunchGrowthScores(float* tile, int64_t rows, int64_t cols, const int64_t* row_ptr,
                               const int64_t* col_idx, int64_t row_begin, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  AbsKernel<<<GridFor(rows * cols), kThreads, 0, stream>>>(tile, rows * cols);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // A warp per row: kThreads / 32 rows per block.
  const unsigned blocks =
      static_cast<unsigned>(std::min<int64_t>((rows + kThreads / 32 - 1) / (kThreads / 32), 65536));
  MarkStoredKernel<<<blocks, kThreads, 0, stream>>>(tile, rows, cols, row_ptr, col_idx, row_begin);
  return cudaGetLastError();
}

cudaError_t LaunchGatherOrZero(const float* src, const int64_t* index, float* out, int64_t count,
                               cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  GatherOrZeroKernel<<<GridFor(count), kThreads, 0, stream>>>(src, index, out, count);
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::train
