// Cancellation of long host loops (issue 17: a request could run for hours
// and could not be stopped). The server gives each request a CancelToken
// (its gRPC deadline, and a poll of whether the client went away) and makes
// it current on the handling thread with ScopedCancelToken; loops that
// produce a new result check CancelRequested() now and then, and
// ParallelForCancellable carries the token to its worker threads. A loop
// that stops early leaves its output incomplete, so whoever ran it must
// return CancelStatus() instead of the output. Loops that change state in
// place (optimizer steps) never stop early.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "absl/status/status.h"

namespace sparsed {

class CancelToken {
 public:
  using Clock = std::chrono::steady_clock;

  // deadline: time_point::max() for none. poll: whether the caller went away
  // (called at most every 10 ms, from any thread; may be empty).
  explicit CancelToken(Clock::time_point deadline = Clock::time_point::max(),
                       std::function<bool()> poll = {})
      : deadline_(deadline), poll_(std::move(poll)) {}

  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  // Cancelled, past the deadline, or the poll said so (remembered).
  bool Requested() const;
  // OK, DEADLINE_EXCEEDED or CANCELLED.
  absl::Status Status() const;

 private:
  const Clock::time_point deadline_;
  const std::function<bool()> poll_;
  mutable std::atomic<bool> cancelled_{false};
  mutable std::atomic<bool> past_deadline_{false};
  mutable std::atomic<int64_t> last_poll_ns_{0};
};

// Makes `token` current on this thread for the object's lifetime.
class ScopedCancelToken {
 public:
  explicit ScopedCancelToken(const CancelToken* token);
  ~ScopedCancelToken();
  ScopedCancelToken(const ScopedCancelToken&) = delete;
  ScopedCancelToken& operator=(const ScopedCancelToken&) = delete;

 private:
  const CancelToken* previous_;
};

// The token current on this thread (nullptr: none).
const CancelToken* CurrentCancelToken();
// Whether the current token asks to stop (false without one).
bool CancelRequested();
// OK without a token; else the current token's Status().
absl::Status CancelStatus();

}  // namespace sparsed
