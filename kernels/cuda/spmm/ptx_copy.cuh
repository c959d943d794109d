// Asynchronous global → shared copies and ldmatrix fragment loads, shared by
// the tensor-core kernels whether nvcc compiles them (nm_tc_kernels.cu
// includes this file) or NVRTC does (the generator prepends this text to the
// JIT templates, bsr_tc_kernel.cuh). Include-free on purpose, as epilogue.h.
#ifndef SPARSED_CUDA_SPMM_PTX_COPY_CUH_
#define SPARSED_CUDA_SPMM_PTX_COPY_CUH_

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
namespace sparsed::cuda::ptx {

__device__ __forceinline__ unsigned SmemAddr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// 16 bytes global → shared; the bytes past src_bytes are zero-filled (0:
// all zeros, for rows or columns past the operand's edge).
__device__ __forceinline__ void CpAsync16(unsigned dst, const void* src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes));
}
// 4 bytes, likewise (src_bytes 0 or 4).
__device__ __forceinline__ void CpAsync4(unsigned dst, const void* src, int src_bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst), "l"(src),
               "r"(src_bytes));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N committed groups are still in flight.
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8×8 16-bit matrices from shared memory (row addresses from lanes
// 8i..8i+7 for matrix i), as the mma fragments take them; T: transposed.
__device__ __forceinline__ void Ldsm4(unsigned addr, unsigned* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void Ldsm4T(unsigned addr, unsigned* r) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

}  // namespace sparsed::cuda::ptx
#endif

#endif  // SPARSED_CUDA_SPMM_PTX_COPY_CUH_
