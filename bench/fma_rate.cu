// The f32 FMA rate of the device: every thread runs 8 independent FMA chains.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "event_timer.h"

namespace sparsed::bench {
namespace {

constexpr int kIters = 4096;

__global__ void FmaKernel(float* out, float a, float b) {
  float x[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) x[i] = threadIdx.x * 0.001f + i;
  for (int it = 0; it < kIters; ++it) {
#pragma unroll
    for (int i = 0; i < 8; ++i) x[i] = fmaf(x[i], a, b);
  }
  float s = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) s += x[i];
  if (s == 12345.0f) out[0] = s;  // keeps the chains alive
}

}  // namespace

// FLOP/s, counting an FMA as two.
double MeasureFmaRate(cudaStream_t stream) {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const int blocks = sms * 8, threads = 256;
  float* out = nullptr;
  cudaMalloc(&out, sizeof(float));
  const float ms = MedianEventMs(
      stream, 1, 5, [&] { FmaKernel<<<blocks, threads, 0, stream>>>(out, 0.999f, 0.001f); });
  cudaFree(out);
  const double flops = 2.0 * 8 * kIters * static_cast<double>(blocks) * threads;
  return flops / (ms * 1e-3);
}

}  // namespace sparsed::bench
