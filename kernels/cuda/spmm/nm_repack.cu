// N:M (n ≤ 2, m % 4 == 0) → packed 2:4. Contract in nm_repack.h.
#include "spmm/nm_repack.h"

namespace sparsed::cuda::kernels {
namespace {

// One thread per metadata word: eight groups of four columns of one row.
__global__ void NmRepackKernel(const uint16_t* values, const int32_t* positions, int n, int m,
                               long long rows, long long k, uint16_t* values24, int32_t* meta24) {
  const long long words = (k / 4 + 7) / 8;
  const long long slots_per_row = k / m * n;
  for (long long t = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
       t < rows * words; t += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long row = t / words, word = t % words;
    unsigned packed = 0;
    for (int q = 0; q < 8; ++q) {
      const long long g4 = word * 8 + q;  // group of four columns
      if (g4 >= k / 4) break;
      const long long col0 = g4 * 4, group = col0 / m;
      const int base = static_cast<int>(col0 % m);
      // The (at most two) kept values of this group of four, in order.
      int found = 0, pos[2] = {0, 0};
      uint16_t val[2] = {0, 0};
      for (int s = 0; s < n; ++s) {
        const long long slot = row * slots_per_row + group * n + s;
        const int p = positions[slot] - base;
        if (p >= 0 && p < 4) {
          pos[found] = p;
          val[found] = values[slot];
          ++found;
        }
      }
      if (found == 0) {
        pos[0] = 0;
        pos[1] = 1;
      } else if (found == 1) {  // a zero beside it, positions ascending
        if (pos[0] == 3) {
          pos[1] = 3;
          val[1] = val[0];
          pos[0] = 2;
          val[0] = 0;
        } else {
          pos[1] = pos[0] + 1;
        }
      }
      values24[row * (k / 2) + g4 * 2] = val[0];
      values24[row * (k / 2) + g4 * 2 + 1] = val[1];
      packed |= static_cast<unsigned>(pos[0] | (pos[1] << 2)) << (4 * q);
    }
    meta24[t] = static_cast<int32_t>(packed);
  }
}

}  // namespace

cudaError_t LaunchNmRepackTo24(const uint16_t* values, const int32_t* positions, int n, int m,
                               int64_t rows, int64_t k, uint16_t* values24, int32_t* meta24,
                               cudaStream_t stream) {
  if (n < 1 || n > 2 || m % 4 != 0 || k % m != 0) return cudaErrorInvalidValue;
  const long long words = (k / 4 + 7) / 8, total = rows * words;
  if (total == 0) return cudaSuccess;
  const int threads = 256;
  const unsigned blocks = static_cast<unsigned>(
      (total + threads - 1) / threads < 65536 ? (total + threads - 1) / threads : 65536);
  NmRepackKernel<<<blocks, threads, 0, stream>>>(values, positions, n, m, rows, k, values24,
                                                 meta24);
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::kernels
