// The few CUDA driver API functions the JIT cache uses, looked up at run time
// through the runtime (cudaGetDriverEntryPointByVersion) instead of linking
// libcuda: binaries must start where there is no NVIDIA driver (CI, build
// containers), and only loading a kernel needs one. Internal to the kernels
// library.
#pragma once

#include <cuda.h>
#include <cudaTypedefs.h>

#include <string_view>

#include "absl/status/statusor.h"

namespace sparsed::cuda::jit {

struct DriverApi {
  PFN_cuGetErrorString_v6000 cuGetErrorString = nullptr;
  PFN_cuDriverGetVersion_v2020 cuDriverGetVersion = nullptr;
  PFN_cuModuleLoadData_v2000 cuModuleLoadData = nullptr;
  PFN_cuModuleUnload_v2000 cuModuleUnload = nullptr;
  PFN_cuModuleGetFunction_v2000 cuModuleGetFunction = nullptr;
  PFN_cuFuncSetAttribute_v9000 cuFuncSetAttribute = nullptr;
  PFN_cuLaunchKernel_v4000 cuLaunchKernel = nullptr;
  PFN_cuCtxGetCurrent_v4000 cuCtxGetCurrent = nullptr;
  PFN_cuCtxPushCurrent_v4000 cuCtxPushCurrent = nullptr;
  PFN_cuCtxPopCurrent_v4000 cuCtxPopCurrent = nullptr;
};

// The table, looked up once per process. FAILED_PRECONDITION naming the
// first function the driver could not provide (e.g. no driver installed).
absl::StatusOr<const DriverApi*> Driver();

// cuDriverGetVersion (e.g. 13000: the CUDA version the driver supports), or
// 0 where no usable driver is present.
int DriverVersionOrZero();

// OK, or INTERNAL "<what> failed: <driver's error text>".
absl::Status CuStatus(CUresult r, std::string_view what);

// Makes `ctx` current on this thread for the guard's lifetime when another
// one (or none) is (push/pop, so the caller's state is restored); no-op for
// a null ctx or when it already is current.
class ScopedContext {
 public:
  ScopedContext(const DriverApi& cu, CUcontext ctx);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
  const absl::Status& status() const { return status_; }

 private:
  const DriverApi& cu_;
  bool pushed_ = false;
  absl::Status status_;
};

}  // namespace sparsed::cuda::jit
