// Top-k by a stable radix sort: every score becomes a 32-bit key that sorts
// ascending best first, the (key, index) pairs are sorted with CUB (stable,
// indices start in increasing order, so equal keys keep the smaller index
// first) and the first k pairs are the answer. NaNs are counted on the way.
#include <algorithm>
#include <cub/device/device_radix_sort.cuh>

#include "train/train_kernels.h"

namespace sparsed::cuda::train {
namespace {

constexpr int kThreads = 256;

unsigned GridFor(int64_t count) {
  return static_cast<unsigned>(std::min<int64_t>((count + kThreads - 1) / kThreads, 65536));
}

// Ascending in the float order for non-NaN x, with -0 and +0 equal (tested
// on the bits, so that no flush-to-zero mode can merge denormals with 0).
__device__ __forceinline__ uint32_t OrderedBits(float x) {
  uint32_t b = __float_as_uint(x);
  if ((b & 0x7fffffffu) == 0) b = 0;
  return (b & 0x80000000u) != 0 ? ~b : (b | 0x80000000u);
}

__global__ void TopKKeysKernel(const float* __restrict__ scores, int64_t count, int order,
                               uint32_t* __restrict__ keys, unsigned long long* nan_count) {
  unsigned long long nans = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float x = scores[i];
    uint32_t key = 0;
    if (isnan(x)) {
      ++nans;
    } else if (order == kTopKLargest) {
      key = ~OrderedBits(x);
    } else {
      // |x| of a non-NaN float orders like its bits.
      const uint32_t u = __float_as_uint(fabsf(x));
      key = order == kTopKLargestMagnitude ? ~u : u;
    }
    keys[i] = key;
  }
  for (int off = 16; off > 0; off /= 2) nans += __shfl_down_sync(0xffffffffu, nans, off);
  if (threadIdx.x % 32 == 0 && nans != 0) atomicAdd(nan_count, nans);
}

__global__ void IotaKernel(int64_t* out, int64_t count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = i;
  }
}

__global__ void GatherKernel(const float* __restrict__ src, const int64_t* __restrict__ index,
                             float* __restrict__ out, int64_t count) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = src[index[i]];
  }
}

}  // namespace

cudaError_t LaunchTopKKeys(const float* scores, int64_t count, int order, uint32_t* keys,
                           unsigned long long* nan_count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  if (order != kTopKLargest && order != kTopKLargestMagnitude && order != kTopKSmallestMagnitude) {
    return cudaErrorInvalidValue;
  }
  TopKKeysKernel<<<GridFor(count), kThreads, 0, stream>>>(scores, count, order, keys, nan_count);
  return cudaGetLastError();
}

cudaError_t SortKeyIndexPairs(void* temp, size_t& temp_bytes, const uint32_t* keys_in,
                              uint32_t* keys_out, const int64_t* index_in, int64_t* index_out,
                              int64_t count, cudaStream_t stream) {
  return cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, index_in, index_out,
                                         count, 0, 32, stream);
}

cudaError_t LaunchIota(int64_t* out, int64_t count, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  IotaKernel<<<GridFor(count), kThreads, 0, stream>>>(out, count);
  return cudaGetLastError();
}

cudaError_t LaunchGather(const float* src, const int64_t* index, float* out, int64_t count,
                         cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  GatherKernel<<<GridFor(count), kThreads, 0, stream>>>(src, index, out, count);
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::train
