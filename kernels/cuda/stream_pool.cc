#include "stream_pool.h"

#include "cuda_check.h"

namespace sparsed::cuda {

absl::StatusOr<std::unique_ptr<StreamPool>> StreamPool::Create(int device, int slots,
                                                               int max_queued) {
  if (slots < 1)
    return absl::InvalidArgumentError(StrCat("cuda streams = ", slots, " must be >= 1"));
  auto pool = std::make_unique<StreamPool>();
  pool->max_queued_ = max_queued;
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device), "cudaSetDevice");
  int sms = 0;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                       "cudaDeviceGetAttribute");
  int major = 0, minor = 0;
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                       "cudaDeviceGetAttribute");
  CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
                       "cudaDeviceGetAttribute");
  for (int i = 0; i < slots; ++i) {
    ExecContext ctx;
    ctx.device = device;
    ctx.num_sms = sms;
    ctx.arch = major * 10 + minor;
    CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking),
                         "cudaStreamCreate");
    pool->contexts_.push_back(ctx);  // destroyed by ~StreamPool from here on
    CUSPARSE_RETURN_IF_ERROR(cusparseCreate(&pool->contexts_.back().cusparse), "cusparseCreate");
    CUSPARSE_RETURN_IF_ERROR(cusparseSetStream(pool->contexts_.back().cusparse, ctx.stream),
                             "cusparseSetStream");
    pool->free_.push_back(i);
  }
  return pool;
}

StreamPool::~StreamPool() {
  for (ExecContext& ctx : contexts_) {
    if (ctx.cusparse != nullptr) cusparseDestroy(ctx.cusparse);
    if (ctx.stream != nullptr) cudaStreamDestroy(ctx.stream);
  }
}

absl::StatusOr<StreamPool::Lease> StreamPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  if (free_.empty()) {
    if (waiting_ >= max_queued_) {
      return absl::ResourceExhaustedError(
          StrCat("device busy: ", contexts_.size(), " requests computing and ", waiting_,
                 " queued (cuda_max_queued = ", max_queued_, "); retry later"));
    }
    ++waiting_;
    cv_.wait(lock, [&] { return !free_.empty(); });
    --waiting_;
  }
  const int slot = free_.back();
  free_.pop_back();
  return Lease(this, slot);
}

int StreamPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_;
}

void StreamPool::Release(int slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(slot);
  }
  cv_.notify_one();
}

}  // namespace sparsed::cuda
