// The 2:4 repacks of held N:M weights (1:4, 2:8, 2:16, … as packed 2:4 for
// the tensor-core tiles, nm_repack.h), kept so that a weight is repacked
// once, not on every call (issue 16's per-tensor plan cache; the decode
// sizes, where the repack would be as much traffic as the product).
//
// Keyed by the weight's values and positions Buffer::id()s (never reused;
// stored tensors' components are never rewritten) and its shape and
// pattern. An entry's copies may still be being written on the stream that
// made it: `ready` is recorded after the repack, and a reader on another
// stream waits for it (UseOn). Readers hold the entry (shared_ptr) until
// their work is done, so an eviction never frees memory a queued kernel
// reads. Bounded by bytes: least recently used entries go first; an entry
// larger than the whole budget is not kept. Thread-safe.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

#include "absl/status/status.h"
#include "sparsed/buffer.h"

namespace sparsed::cuda {

class NmRepackCache {
 public:
  struct Key {
    uint64_t values_id = 0, positions_id = 0;
    int64_t rows = 0, k = 0;
    int n = 0, m = 0;
    friend bool operator<(const Key& a, const Key& b) {
      return std::tie(a.values_id, a.positions_id, a.rows, a.k, a.n, a.m) <
             std::tie(b.values_id, b.positions_id, b.rows, b.k, b.n, b.m);
    }
  };
  struct Packed {
    Buffer values24, meta24;
    cudaEvent_t ready = nullptr;  // recorded after the repack; owned
    Packed() = default;
    Packed(const Packed&) = delete;
    Packed& operator=(const Packed&) = delete;
    ~Packed();
    int64_t bytes() const { return values24.size() + meta24.size(); }
    // Makes `stream` wait until the copies are written (no host wait).
    absl::Status UseOn(cudaStream_t stream) const;
  };
  using Ptr = std::shared_ptr<const Packed>;

  explicit NmRepackCache(int64_t capacity_bytes = int64_t{256} << 20) : capacity_(capacity_bytes) {}
  NmRepackCache(const NmRepackCache&) = delete;
  NmRepackCache& operator=(const NmRepackCache&) = delete;

  Ptr Find(const Key& key);  // null when not kept
  void Put(const Key& key, Ptr packed);

  struct Counts {
    int64_t hits = 0, misses = 0, entries = 0, bytes = 0;
  };
  Counts counts() const;

 private:
  struct Entry {
    Ptr packed;
    std::list<Key>::iterator age;
  };
  void EvictTo(int64_t bytes);  // mu_ held

  const int64_t capacity_;
  mutable std::mutex mu_;
  std::list<Key> lru_;  // most recent first
  std::map<Key, Entry> entries_;
  int64_t bytes_ = 0, hits_ = 0, misses_ = 0;
};

}  // namespace sparsed::cuda
