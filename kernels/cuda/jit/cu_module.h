// RAII for a loaded CUmodule (internal to the kernels library).
#pragma once

#include <cuda.h>

#include <utility>

#include "driver_api.h"

namespace sparsed::cuda::jit {

// Owns one module of context `ctx`; unloads it (in that context) on destruction.
class CuModule {
 public:
  CuModule() = default;
  CuModule(const DriverApi* cu, CUcontext ctx, CUmodule module)
      : cu_(cu), ctx_(ctx), module_(module) {}
  CuModule(CuModule&& o) noexcept
      : cu_(o.cu_), ctx_(o.ctx_), module_(std::exchange(o.module_, nullptr)) {}
  CuModule& operator=(CuModule&& o) noexcept {
    if (this != &o) {
      Reset();
      cu_ = o.cu_;
      ctx_ = o.ctx_;
      module_ = std::exchange(o.module_, nullptr);
    }
    return *this;
  }
  CuModule(const CuModule&) = delete;
  CuModule& operator=(const CuModule&) = delete;
  ~CuModule() { Reset(); }

  CUmodule get() const { return module_; }
  CUcontext context() const { return ctx_; }

 private:
  void Reset() {
    if (module_ == nullptr) return;
    ScopedContext in(*cu_, ctx_);
    // Fails only once the context is gone, which took the module with it.
    cu_->cuModuleUnload(module_);
    module_ = nullptr;
  }

  const DriverApi* cu_ = nullptr;
  CUcontext ctx_ = nullptr;
  CUmodule module_ = nullptr;
};

}  // namespace sparsed::cuda::jit
