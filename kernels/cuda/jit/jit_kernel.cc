// JitKernel::Launch through the driver API (driver_api.h).
#include <mutex>

#include "driver_api.h"
#include "jit/jit_cache.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {
namespace {

// Serialises raises of the dynamic shared-memory limit, so that a smaller
// request racing a larger one can never lower it (raises are rare: once per
// kernel and size).
std::mutex& SmemLimitMutex() {
  static std::mutex mu;
  return mu;
}

}  // namespace

absl::Status JitKernel::Launch(dim3 grid, dim3 block, unsigned smem_bytes, cudaStream_t stream,
                               void** args) const {
  ASSIGN_OR_RETURN(const jit::DriverApi* cu, jit::Driver());
  jit::ScopedContext in(*cu, ctx_);
  RETURN_IF_ERROR(in.status());
  if (smem_bytes > smem_limit_set_.load(std::memory_order_acquire)) {
    std::lock_guard<std::mutex> lock(SmemLimitMutex());
    if (smem_bytes > smem_limit_set_.load(std::memory_order_relaxed)) {
      RETURN_IF_ERROR(jit::CuStatus(
          cu->cuFuncSetAttribute(fn_, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                 static_cast<int>(smem_bytes)),
          StrCat("raising the shared memory of ", spec_, " to ", smem_bytes, " bytes")));
      smem_limit_set_.store(smem_bytes, std::memory_order_release);
    }
  }
  // cudaStream_t and CUstream are the same type.
  return jit::CuStatus(cu->cuLaunchKernel(fn_, grid.x, grid.y, grid.z, block.x, block.y, block.z,
                                          smem_bytes, stream, args, nullptr),
                       StrCat("launching ", spec_));
}

}  // namespace sparsed::cuda
