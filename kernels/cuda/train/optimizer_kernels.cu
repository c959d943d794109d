// Optimizer updates, one thread per parameter (grid-stride), f32 arithmetic
// in the order of the formulas in train_ops.h. The bias corrections of Adam
// come from the host (computed there in double).
#include <algorithm>

#include "train/train_kernels.h"

namespace sparsed::cuda::train {
namespace {

constexpr int kThreads = 256;

__global__ void SgdKernel(OptimizerProblem p) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float w = p.param[i];
    const float g = p.grad_scale * p.grad[i] + p.weight_decay * w;
    if (p.state1 == nullptr) {
      p.param[i] = w - p.lr * g;
      continue;
    }
    const float buf = p.momentum * p.state1[i] + g;
    p.state1[i] = buf;
    const float d = p.nesterov ? g + p.momentum * buf : buf;
    p.param[i] = w - p.lr * d;
  }
}

__global__ void AdamKernel(OptimizerProblem p, bool decoupled) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < p.count;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float w = p.param[i];
    float g = p.grad_scale * p.grad[i];
    if (decoupled) {
      w -= p.lr * p.weight_decay * w;
    } else {
      g += p.weight_decay * w;
    }
    const float m = p.beta1 * p.state1[i] + (1.0f - p.beta1) * g;
    const float v = p.beta2 * p.state2[i] + (1.0f - p.beta2) * g * g;
    p.state1[i] = m;
    p.state2[i] = v;
    p.param[i] = w - p.lr * (m / p.bias1) / (sqrtf(v / p.bias2) + p.eps);
  }
}

}  // namespace

cudaError_t LaunchOptimizerUpdate(const OptimizerProblem& p, cudaStream_t stream) {
  if (p.count == 0) return cudaSuccess;
  const unsigned blocks =
      static_cast<unsigned>(std::min<int64_t>((p.count + kThreads - 1) / kThreads, 65536));
  switch (p.kind) {
    case kOptimizerSgd:
      SgdKernel<<<blocks, kThreads, 0, stream>>>(p);
      break;
    case kOptimizerAdam:
    case kOptimizerAdamW:
      AdamKernel<<<blocks, kThreads, 0, stream>>>(p, p.kind == kOptimizerAdamW);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace sparsed::cuda::train
