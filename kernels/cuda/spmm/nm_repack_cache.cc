#include "spmm/nm_repack_cache.h"

#include <utility>

#include "cuda_check.h"

namespace sparsed::cuda {

NmRepackCache::Packed::~Packed() {
  if (ready != nullptr) cudaEventDestroy(ready);
}

absl::Status NmRepackCache::Packed::UseOn(cudaStream_t stream) const {
  if (ready == nullptr) return absl::OkStatus();
  return CudaStatus(cudaStreamWaitEvent(stream, ready, 0), "cudaStreamWaitEvent(repack)");
}

NmRepackCache::Ptr NmRepackCache::Find(const Key& key) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = entries_.find(key);
  if (it == entries_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.age);
  return it->second.packed;
}

void NmRepackCache::Put(const Key& key, Ptr packed) {
  if (packed == nullptr || packed->bytes() > capacity_) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    bytes_ -= it->second.packed->bytes();
    lru_.erase(it->second.age);
    entries_.erase(it);
  }
  EvictTo(capacity_ - packed->bytes());
  bytes_ += packed->bytes();
  lru_.push_front(key);
  entries_.emplace(key, Entry{std::move(packed), lru_.begin()});
}

void NmRepackCache::EvictTo(int64_t bytes) {
  while (bytes_ > bytes && !lru_.empty()) {
    const auto it = entries_.find(lru_.back());
    bytes_ -= it->second.packed->bytes();
    entries_.erase(it);  // freed when its last reader lets go
    lru_.pop_back();
  }
}

NmRepackCache::Counts NmRepackCache::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {hits_, misses_, static_cast<int64_t>(entries_.size()), bytes_};
}

}  // namespace sparsed::cuda
