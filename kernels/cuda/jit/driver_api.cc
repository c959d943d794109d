#include "driver_api.h"

#include <cuda_runtime.h>

#include "sparsed/str_cat.h"

namespace sparsed::cuda::jit {
namespace {

// The ABI to bind: each function as it was in CUDA 12.0, matching the
// PFN_*_vNNNN types in DriverApi (none of them changed since).
constexpr unsigned kDriverAbiVersion = 12000;

template <class Fn>
absl::Status Lookup(const char* name, Fn* out) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  const cudaError_t err =
      cudaGetDriverEntryPointByVersion(name, &fn, kDriverAbiVersion, cudaEnableDefault, &found);
  if (err != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr) {
    cudaGetLastError();  // clear the error for the runtime's other users
    return absl::FailedPreconditionError(
        StrCat("no usable CUDA driver (looking up ", name, ": ",
               err != cudaSuccess ? cudaGetErrorString(err) : "symbol not found",
               "); loading JIT kernels needs an NVIDIA driver and GPU"));
  }
  *out = reinterpret_cast<Fn>(fn);
  return absl::OkStatus();
}

absl::StatusOr<DriverApi> LookupAll() {
  DriverApi d;
  absl::Status s;
  auto get = [&s](const char* name, auto* out) {
    if (s.ok()) s = Lookup(name, out);
  };
  get("cuGetErrorString", &d.cuGetErrorString);
  get("cuDriverGetVersion", &d.cuDriverGetVersion);
  get("cuModuleLoadData", &d.cuModuleLoadData);
  get("cuModuleUnload", &d.cuModuleUnload);
  get("cuModuleGetFunction", &d.cuModuleGetFunction);
  get("cuFuncSetAttribute", &d.cuFuncSetAttribute);
  get("cuLaunchKernel", &d.cuLaunchKernel);
  get("cuCtxGetCurrent", &d.cuCtxGetCurrent);
  get("cuCtxPushCurrent", &d.cuCtxPushCurrent);
  get("cuCtxPopCurrent", &d.cuCtxPopCurrent);
  if (!s.ok()) return s;
  return d;
}

const absl::StatusOr<DriverApi>& Table() {
  static const absl::StatusOr<DriverApi> table = LookupAll();  // thread-safe, once
  return table;
}

}  // namespace

absl::StatusOr<const DriverApi*> Driver() {
  const absl::StatusOr<DriverApi>& t = Table();
  if (!t.ok()) return t.status();
  return &*t;
}

int DriverVersionOrZero() {
  int version = 0;
  if (absl::StatusOr<const DriverApi*> cu = Driver(); cu.ok()) {
    if ((*cu)->cuDriverGetVersion(&version) != CUDA_SUCCESS) version = 0;
  }
  return version;
}

absl::Status CuStatus(CUresult r, std::string_view what) {
  if (r == CUDA_SUCCESS) return absl::OkStatus();
  const char* text = nullptr;
  if (absl::StatusOr<const DriverApi*> cu = Driver(); cu.ok()) (*cu)->cuGetErrorString(r, &text);
  return absl::InternalError(StrCat(what, " failed: ", text != nullptr ? text : "driver error",
                                    " (CUresult ", static_cast<int>(r), ")"));
}

ScopedContext::ScopedContext(const DriverApi& cu, CUcontext ctx) : cu_(cu) {
  if (ctx == nullptr) return;
  CUcontext current = nullptr;
  status_ = CuStatus(cu_.cuCtxGetCurrent(&current), "cuCtxGetCurrent");
  if (!status_.ok() || current == ctx) return;
  status_ = CuStatus(cu_.cuCtxPushCurrent(ctx), "cuCtxPushCurrent");
  pushed_ = status_.ok();
}

ScopedContext::~ScopedContext() {
  if (!pushed_) return;
  CUcontext popped = nullptr;
  cu_.cuCtxPopCurrent(&popped);
}

}  // namespace sparsed::cuda::jit
