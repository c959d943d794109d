#include "spmm/row_stats_cache.h"

namespace sparsed::cuda {

std::optional<RowStats> RowStatsCache::Find(uint64_t buffer_id, int64_t m, int64_t nnz) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = buffer_id == 0 ? entries_.end() : entries_.find({buffer_id, m, nnz});
  if (it == entries_.end()) {
    ++misses_;
    return std::nullopt;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second.age);
  return it->second.stats;
}

void RowStatsCache::Put(uint64_t buffer_id, int64_t m, int64_t nnz, const RowStats& stats) {
  if (buffer_id == 0 || capacity_ == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  const Key key{buffer_id, m, nnz};
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.stats = stats;
    lru_.splice(lru_.begin(), lru_, it->second.age);
    return;
  }
  if (entries_.size() >= capacity_) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  entries_.emplace(key, Entry{stats, lru_.begin()});
}

RowStatsCache::Counts RowStatsCache::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {hits_, misses_, static_cast<int64_t>(entries_.size())};
}

}  // namespace sparsed::cuda
