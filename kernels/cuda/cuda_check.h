// CUDA / cuSPARSE return-code checks that turn failures into absl::Status.
#pragma once

#include <cuda_runtime.h>
#include <cusparse.h>

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {

// Errors after which the device's CUDA context is unusable until the process
// exits (a kernel faulted, or the GPU reported an uncorrectable ECC or NVLink
// error): every later CUDA call of the process returns them again.
inline bool IsDeviceFault(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorLaunchTimeout:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorAssert:
    case cudaErrorECCUncorrectable:
    case cudaErrorNvlinkUncorrectable:
      return true;
    default:
      return false;
  }
}

// The payload that marks a Status as a device fault (IsDeviceFault).
inline constexpr char kDeviceFaultPayload[] = "type.sparsed.dev/device-fault";

// OK for cudaSuccess; RESOURCE_EXHAUSTED for out of memory; UNAVAILABLE
// (with kDeviceFaultPayload) for a device fault; INTERNAL otherwise. Each
// names `what` and the CUDA error.
inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(StrCat(what, ": out of device memory"));
  }
  if (IsDeviceFault(err)) {
    absl::Status s = absl::UnavailableError(
        StrCat(what, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
               "): the GPU is in an unrecoverable state; restart the daemon to reset it"));
    s.SetPayload(kDeviceFaultPayload, absl::Cord(cudaGetErrorName(err)));
    return s;
  }
  return absl::InternalError(
      StrCat(what, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")"));
}

inline bool IsDeviceFaultStatus(const absl::Status& s) {
  return s.GetPayload(kDeviceFaultPayload).has_value();
}

inline absl::Status CusparseStatus(cusparseStatus_t st, const char* what) {
  if (st == CUSPARSE_STATUS_SUCCESS) return absl::OkStatus();
  if (st == CUSPARSE_STATUS_ALLOC_FAILED || st == CUSPARSE_STATUS_INSUFFICIENT_RESOURCES) {
    return absl::ResourceExhaustedError(StrCat(what, ": ", cusparseGetErrorString(st)));
  }
  if (st == CUSPARSE_STATUS_NOT_SUPPORTED) {
    return absl::UnimplementedError(StrCat(what, ": ", cusparseGetErrorString(st)));
  }
  return absl::InternalError(StrCat(what, " failed: ", cusparseGetErrorString(st)));
}

}  // namespace sparsed::cuda

#define CUDA_RETURN_IF_ERROR(expr, what) \
  RETURN_IF_ERROR(::sparsed::cuda::CudaStatus((expr), (what)))
#define CUSPARSE_RETURN_IF_ERROR(expr, what) \
  RETURN_IF_ERROR(::sparsed::cuda::CusparseStatus((expr), (what)))
