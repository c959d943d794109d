#include "sparsed/cancel.h"

#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

thread_local const CancelToken* current_token = nullptr;

}  // namespace

bool CancelToken::Requested() const {
  if (cancelled_.load(std::memory_order_relaxed)) return true;
  const Clock::time_point now = Clock::now();
  if (now >= deadline_) {
    past_deadline_.store(true, std::memory_order_relaxed);
    cancelled_.store(true, std::memory_order_relaxed);
    return true;
  }
  if (poll_) {
    const int64_t ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    int64_t last = last_poll_ns_.load(std::memory_order_relaxed);
    // One thread polls per 10 ms; the others go on.
    if (ns - last >= 10'000'000 &&
        last_poll_ns_.compare_exchange_strong(last, ns, std::memory_order_relaxed) && poll_()) {
      cancelled_.store(true, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

absl::Status CancelToken::Status() const {
  if (!Requested()) return absl::OkStatus();
  if (past_deadline_.load(std::memory_order_relaxed)) {
    return absl::DeadlineExceededError("the call's deadline passed while it was computing");
  }
  return absl::CancelledError("the call was cancelled while it was computing");
}

ScopedCancelToken::ScopedCancelToken(const CancelToken* token) : previous_(current_token) {
  current_token = token;
}

ScopedCancelToken::~ScopedCancelToken() { current_token = previous_; }

const CancelToken* CurrentCancelToken() { return current_token; }

bool CancelRequested() { return current_token != nullptr && current_token->Requested(); }

absl::Status CancelStatus() {
  return current_token == nullptr ? absl::OkStatus() : current_token->Status();
}

}  // namespace sparsed
