// The CUDA backend's OpBatch (sparsed/op_batch.h): one leased stream for
// every op of the batch, this thread's device memory ordered on it
// (StreamOrderScope), and each op's workspace kept until Finish so that the
// plans its queued kernels use outlive them (its temporaries are freed at
// once, in stream order). Marks are CUDA events on the stream.
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "exec_context.h"
#include "sparsed/device_memory.h"
#include "sparsed/op_batch.h"
#include "stream_pool.h"

namespace sparsed::cuda {

class CudaOpBatch final : public OpBatch {
 public:
  // A batch on `lease`'s stream, with `jit` in its context, registered as
  // `owner`'s batch on this thread until destroyed (owner: the backend).
  CudaOpBatch(const void* owner, StreamPool::Lease lease, JitCache* jit);
  ~CudaOpBatch() override;  // waits (as Finish), then unregisters
  CudaOpBatch(const CudaOpBatch&) = delete;
  CudaOpBatch& operator=(const CudaOpBatch&) = delete;

  int Mark() override;
  absl::Status Finish() override;
  double MillisecondsBetween(int from, int to) const override;

  // What this thread's batch on `owner` runs ops with; null when none.
  static CudaOpBatch* Active(const void* owner);
  const ExecContext& context() const { return ctx_; }
  // Frees `ws`'s temporaries in stream order now and keeps its plans until
  // Finish.
  void Keep(std::unique_ptr<Workspace> ws);

 private:
  const void* owner_;
  StreamPool::Lease lease_;
  ExecContext ctx_;
  StreamOrderScope order_;  // declared after lease_: restored before it is released
  CudaOpBatch* previous_;   // this thread's batch before this one
  std::vector<std::unique_ptr<Workspace>> kept_;
  std::vector<cudaEvent_t> marks_;
  absl::Status error_;  // the first error Mark met
};

}  // namespace sparsed::cuda
