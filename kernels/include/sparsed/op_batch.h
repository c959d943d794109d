// A batch of ops queued on a backend without waiting for each other.
//
// Between Backend::BeginBatch and the batch's Finish, the ops one thread
// calls on that backend run in call order but asynchronously to the host:
// the CUDA backend queues them all on one stream, allocates and frees their
// temporaries and results in stream order and synchronises nothing between
// them (a graph of 30 SpMMs costs one wait, not 30). Contract for callers:
//   - a tensor an op returned may still be being computed until Finish has
//     returned: hand it to later ops of the batch freely, but read its memory
//     on the host (CopyTo the CPU, a download) only after Finish, or through
//     Tensor::CopyTo on the same thread, which copies in stream order;
//   - ops that answer with host data (TopK) still wait for their own result;
//   - an error a queued op meets on the device may surface only in Finish,
//     which then names no op;
//   - the batch belongs to the thread that began it; ops other threads call
//     meanwhile are not part of it.
// Backends without asynchronous execution (the CPU backend) run each op to
// completion at once; their batch only keeps the clock for Mark.
#pragma once

#include <memory>

#include "absl/status/status.h"

namespace sparsed {

class OpBatch {
 public:
  virtual ~OpBatch() = default;  // implementations wait for their queue (as Finish)
  // Marks the point the batch's queue has reached; returns the mark's index
  // (0, 1, 2, ... in call order).
  virtual int Mark() = 0;
  // Waits until every op queued so far has completed; the first error
  // found. The batch stays open: more ops may follow, and the marks stay.
  virtual absl::Status Finish() = 0;
  // Milliseconds of the batch's queue between marks `from` and `to`, valid
  // once a Finish after both has returned OK (the device's time on CUDA,
  // including any time the device waited for the host to queue the next
  // op); 0 for a mark that does not exist.
  virtual double MillisecondsBetween(int from, int to) const = 0;
};

// A batch for a backend that runs each op at once: marks are host clock
// readings, Finish has nothing to wait for.
std::unique_ptr<OpBatch> MakeHostOpBatch();

}  // namespace sparsed
