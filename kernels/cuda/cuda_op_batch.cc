#include "cuda_op_batch.h"

#include <utility>

#include "cuda_check.h"

namespace sparsed::cuda {
namespace {

thread_local CudaOpBatch* tls_batch = nullptr;

}  // namespace

CudaOpBatch::CudaOpBatch(const void* owner, StreamPool::Lease lease, JitCache* jit)
    : owner_(owner),
      lease_(std::move(lease)),
      ctx_([&] {
        ExecContext c = lease_.context();
        c.jit = jit;
        return c;
      }()),
      order_(ctx_.device, ctx_.stream),
      previous_(tls_batch) {
  tls_batch = this;
}

CudaOpBatch::~CudaOpBatch() {
  (void)Finish();
  for (cudaEvent_t e : marks_) cudaEventDestroy(e);
  tls_batch = previous_;
}

CudaOpBatch* CudaOpBatch::Active(const void* owner) {
  for (CudaOpBatch* b = tls_batch; b != nullptr; b = b->previous_) {
    if (b->owner_ == owner) return b;
  }
  return nullptr;
}

void CudaOpBatch::Keep(std::unique_ptr<Workspace> ws) {
  ws->ReleaseBuffers();  // under order_: freed after the queued work that uses them
  kept_.push_back(std::move(ws));
}

int CudaOpBatch::Mark() {
  cudaEvent_t e = nullptr;
  cudaError_t err = cudaEventCreate(&e);
  if (err == cudaSuccess) {
    err = cudaEventRecord(e, ctx_.stream);
    if (err != cudaSuccess) cudaEventDestroy(e);
  }
  if (err != cudaSuccess) {
    e = nullptr;  // MillisecondsBetween answers 0 for this mark
    if (error_.ok()) error_ = CudaStatus(err, "batch mark");
  }
  marks_.push_back(e);
  return static_cast<int>(marks_.size()) - 1;
}

absl::Status CudaOpBatch::Finish() {
  absl::Status status = CudaStatus(cudaStreamSynchronize(ctx_.stream), "batch synchronise");
  kept_.clear();  // the plans: every kernel that used them has completed
  if (status.ok()) status = error_;
  return status;
}

double CudaOpBatch::MillisecondsBetween(int from, int to) const {
  const int n = static_cast<int>(marks_.size());
  if (from < 0 || to < 0 || from >= n || to >= n || marks_[from] == nullptr ||
      marks_[to] == nullptr) {
    return 0.0;
  }
  float ms = 0.0f;
  if (cudaEventElapsedTime(&ms, marks_[from], marks_[to]) != cudaSuccess) {
    cudaGetLastError();
    return 0.0;
  }
  return ms;
}

}  // namespace sparsed::cuda
