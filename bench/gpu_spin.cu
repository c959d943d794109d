// A one-thread kernel that keeps the stream busy for a while: queued ahead
// of a start event, it hides the host's launch latency of the timed work
// (the event fires when the spin ends, by which time the work is queued).
#include <cuda_runtime.h>

#include <cstdint>

namespace sparsed::bench {
namespace {

__device__ uint64_t GlobalTimerNs() {
  uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void SpinKernel(uint64_t ns) {
  const uint64_t start = GlobalTimerNs();
  while (GlobalTimerNs() - start < ns) {
  }
}

}  // namespace

cudaError_t LaunchSpin(cudaStream_t stream, int64_t ns) {
  if (ns <= 0) return cudaSuccess;
  SpinKernel<<<1, 1, 0, stream>>>(static_cast<uint64_t>(ns));
  return cudaGetLastError();
}

}  // namespace sparsed::bench
