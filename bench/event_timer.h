// Median device time of a piece of queued work, with CUDA events.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

namespace sparsed::bench {

// Runs `work` (which queues on `stream`) warmup + reps times and returns the
// median milliseconds of the last reps runs.
template <class F>
float MedianEventMs(cudaStream_t stream, int warmup, int reps, F&& work) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  std::vector<float> ms;
  for (int i = 0; i < warmup + reps; ++i) {
    cudaEventRecord(a, stream);
    work();
    cudaEventRecord(b, stream);
    cudaEventSynchronize(b);
    float t = 0;
    cudaEventElapsedTime(&t, a, b);
    if (i >= warmup) ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace sparsed::bench
