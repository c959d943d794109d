// Row-length statistics remembered per row-pointer buffer, so that an SpMM on
// a held CSR tensor does not launch a reduction and wait for its result on
// every call to compute its tuning key (issue 16, "a lean call path").
//
// Keyed by Buffer::id() (never reused, unlike a device address) together
// with the rows and non-zeros the statistics were computed for; sound
// because a row-pointer buffer is never rewritten once built (buffer.h).
// Bounded: beyond `capacity` entries the least recently used is forgotten.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "spmm/csr_spmm_problem.h"

namespace sparsed::cuda {

class RowStatsCache {
 public:
  explicit RowStatsCache(size_t capacity = 4096) : capacity_(capacity) {}
  RowStatsCache(const RowStatsCache&) = delete;
  RowStatsCache& operator=(const RowStatsCache&) = delete;

  // The statistics kept for (buffer_id, m, nnz); nullopt when none are
  // (buffer_id 0, an empty buffer, never is).
  std::optional<RowStats> Find(uint64_t buffer_id, int64_t m, int64_t nnz);
  // Keeps `stats` for (buffer_id, m, nnz); ignores buffer_id 0.
  void Put(uint64_t buffer_id, int64_t m, int64_t nnz, const RowStats& stats);

  struct Counts {
    int64_t hits = 0, misses = 0, entries = 0;
  };
  Counts counts() const;

 private:
  using Key = std::tuple<uint64_t, int64_t, int64_t>;
  struct KeyHash {
    size_t operator()(const Key& k) const {
      const auto [id, m, nnz] = k;
      size_t h = std::hash<uint64_t>()(id);
      h ^= std::hash<int64_t>()(m) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      h ^= std::hash<int64_t>()(nnz) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
      return h;
    }
  };
  struct Entry {
    RowStats stats;
    std::list<Key>::iterator age;  // position in lru_
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Key> lru_;  // most recently used first
  std::unordered_map<Key, Entry, KeyHash> entries_;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace sparsed::cuda
