// The fused SpMM epilogue, written once for every CUDA kernel that finishes
// a product in registers, whether nvcc or NVRTC compiles it:
//
//   out = min(relu?(alpha·acc + beta·c_in[c_idx] + bias[bias_idx]), clamp_max)
//
// each step optional. Header-only and include-free on purpose: the JIT
// generator (spmm/bsr_tc_generator.cc) prepends this text to the kernel
// templates it hands to NVRTC, which sees no CUDA or C++ headers. A JIT
// kernel passes compile-time flags (beta 0, bias nullptr, relu false, …) and
// the compiler drops the steps it does not need.
#ifndef SPARSED_CUDA_EPILOGUE_H_
#define SPARSED_CUDA_EPILOGUE_H_

namespace sparsed::cuda {

struct Epilogue {
  float alpha = 1.0f, beta = 0.0f;
  const float* c_in = nullptr;  // f32, laid out like the output; read only when beta != 0
  const float* bias = nullptr;  // indexed by the output column (nullptr: none)
  bool relu = false;
  bool has_clamp = false;
  float clamp_max = 0.0f;
};

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
// acc: the product's element; c_idx: its index in c_in; bias_idx: in bias.
__device__ __forceinline__ float FinishEpilogue(const Epilogue& e, float acc, long long c_idx,
                                                long long bias_idx) {
  float v = e.alpha * acc;
  if (e.beta != 0.0f) v += e.beta * e.c_in[c_idx];
  if (e.bias != nullptr) v += e.bias[bias_idx];
  if (e.relu) v = fmaxf(v, 0.0f);
  if (e.has_clamp) v = fminf(v, e.clamp_max);
  return v;
}
#endif

}  // namespace sparsed::cuda

#endif  // SPARSED_CUDA_EPILOGUE_H_
