// The f32 FMA rate of the device: every thread runs 8 independent FMA chains.
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

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
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < 6; ++i) {
    cudaEventRecord(a, stream);
    FmaKernel<<<blocks, threads, 0, stream>>>(out, 0.999f, 0.001f);
    cudaEventRecord(b, stream);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    if (i > 0) ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaFree(out);
  std::sort(ms.begin(), ms.end());
  const double flops = 2.0 * 8 * kIters * static_cast<double>(blocks) * threads;
  return flops / (ms[ms.size() / 2] * 1e-3);
}

}  // namespace sparsed::bench
