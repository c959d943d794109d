// CUB device-wide scans, sorts and selections behind plain launchers, so that
// only this file pays for CUB's templates.
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_select.cuh>

#include "format/format_kernels.h"

namespace sparsed::cuda::fmt {

cudaError_t ExclusiveSumI64(void* temp, size_t& temp_bytes, const int64_t* in, int64_t* out,
                            int64_t count, cudaStream_t stream) {
  return cub::DeviceScan::ExclusiveSum(temp, temp_bytes, in, out, count, stream);
}

cudaError_t SortPairsU64(void* temp, size_t& temp_bytes, const uint64_t* keys_in,
                         uint64_t* keys_out, const int64_t* values_in, int64_t* values_out,
                         int64_t count, int end_bit, cudaStream_t stream) {
  return cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys_in, keys_out, values_in, values_out,
                                         count, 0, end_bit, stream);
}

cudaError_t SortKeysU64(void* temp, size_t& temp_bytes, const uint64_t* keys_in, uint64_t* keys_out,
                        int64_t count, int end_bit, cudaStream_t stream) {
  return cub::DeviceRadixSort::SortKeys(temp, temp_bytes, keys_in, keys_out, count, 0, end_bit,
                                        stream);
}

cudaError_t UniqueU64(void* temp, size_t& temp_bytes, const uint64_t* in, uint64_t* out,
                      int64_t* num_out, int64_t count, cudaStream_t stream) {
  return cub::DeviceSelect::Unique(temp, temp_bytes, in, out, num_out, count, stream);
}

}  // namespace sparsed::cuda::fmt
