// CUDA / cuSPARSE return-code checks that turn failures into absl::Status.
#pragma once

#include <cuda_runtime.h>
#include <cusparse.h>

#include "absl/status/status.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {

inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return absl::ResourceExhaustedError(StrCat(what, ": out of device memory"));
  }
  return absl::InternalError(
      StrCat(what, " failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")"));
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
