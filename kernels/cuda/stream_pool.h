// A device's execution slots: each a non-blocking stream with its own
// cuSPARSE handle. At most `slots` requests compute at once; up to
// `max_queued` more wait for a slot; beyond that RESOURCE_EXHAUSTED.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "exec_context.h"

namespace sparsed::cuda {

class StreamPool {
 public:
  static absl::StatusOr<std::unique_ptr<StreamPool>> Create(int device, int slots, int max_queued);
  StreamPool() = default;  // empty; use Create
  ~StreamPool();
  StreamPool(const StreamPool&) = delete;
  StreamPool& operator=(const StreamPool&) = delete;

  // Holds one slot until destroyed.
  class Lease {
   public:
    Lease(StreamPool* pool, int slot) : pool_(pool), slot_(slot) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), slot_(o.slot_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr) pool_->Release(slot_);
    }
    const ExecContext& context() const { return pool_->contexts_[slot_]; }

   private:
    StreamPool* pool_;
    int slot_;
  };

  absl::StatusOr<Lease> Acquire();
  int queued() const;

 private:
  void Release(int slot);

  int max_queued_ = 0;
  std::vector<ExecContext> contexts_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> free_;
  int waiting_ = 0;
};

}  // namespace sparsed::cuda
