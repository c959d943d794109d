// What a CUDA op runs with: the device, a stream, a cuSPARSE handle bound to
// that stream, and a workspace that owns every temporary of one request.
#pragma once

#include <cuda_runtime.h>
#include <cusparse.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/buffer.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {

class JitCache;

struct ExecContext {
  int device = 0;
  int num_sms = 0;
  int arch = 0;              // compute capability, major * 10 + minor
  JitCache* jit = nullptr;   // the device's JIT kernel cache (not owned); null: none
  cudaStream_t stream = nullptr;
  cusparseHandle_t cusparse = nullptr;
};

// Anything a kernel variant keeps between preparation and its runs (cuSPARSE
// descriptors, partition tables, ...).
class Plan {
 public:
  virtual ~Plan() = default;
};

// Owns the device temporaries and plans of one request. Work queued on the
// stream may still use them, so whoever owns the workspace synchronises the
// stream (Sync) before the workspace is destroyed.
class Workspace {
 public:
  explicit Workspace(const ExecContext& ctx) : ctx_(ctx) {}
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  // Device memory of `bytes` (uninitialised), kept until the workspace dies.
  absl::StatusOr<void*> Alloc(int64_t bytes) {
    absl::StatusOr<Buffer> b = Buffer::Allocate(bytes, Device::Cuda(ctx_.device));
    if (!b.ok()) return b.status();
    buffers_.push_back(std::move(*b));
    return buffers_.back().data();
  }
  template <class T>
  absl::StatusOr<T*> AllocArray(int64_t count) {
    absl::StatusOr<void*> p = Alloc(count * static_cast<int64_t>(sizeof(T)));
    if (!p.ok()) return p.status();
    return static_cast<T*>(*p);
  }
  // Frees the temporaries now (plans stay). Only where the work queued on
  // the stream is ordered before the free: under a StreamOrderScope for the
  // stream (CudaOpBatch), or after Sync.
  void ReleaseBuffers() { buffers_.clear(); }
  Plan* Keep(std::unique_ptr<Plan> plan) {
    plans_.push_back(std::move(plan));
    return plans_.back().get();
  }
  absl::Status Sync() const {
    const cudaError_t err = cudaStreamSynchronize(ctx_.stream);
    if (err != cudaSuccess) {
      return absl::InternalError(StrCat("cudaStreamSynchronize failed: ", cudaGetErrorString(err)));
    }
    return absl::OkStatus();
  }

 private:
  ExecContext ctx_;
  std::vector<Buffer> buffers_;
  std::vector<std::unique_ptr<Plan>> plans_;
};

}  // namespace sparsed::cuda
