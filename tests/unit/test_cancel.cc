// CancelToken and ParallelForCancellable: loops stop at the deadline, on
// Cancel() and when the poll says the caller went away, and not otherwise.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "sparsed/cancel.h"
#include "sparsed/parallel.h"

namespace sparsed {
namespace {

using Clock = CancelToken::Clock;

TEST(CancelTokenTest, DeadlineCancelAndPoll) {
  EXPECT_FALSE(CancelRequested());  // no token on this thread
  EXPECT_TRUE(CancelStatus().ok());

  CancelToken none;
  EXPECT_FALSE(none.Requested());
  EXPECT_TRUE(none.Status().ok());

  CancelToken past(Clock::now() - std::chrono::milliseconds(1));
  EXPECT_TRUE(past.Requested());
  EXPECT_EQ(past.Status().code(), absl::StatusCode::kDeadlineExceeded);

  CancelToken manual;
  manual.Cancel();
  EXPECT_EQ(manual.Status().code(), absl::StatusCode::kCancelled);

  std::atomic<bool> gone{false};
  CancelToken polled(Clock::time_point::max(), [&] { return gone.load(); });
  EXPECT_FALSE(polled.Requested());
  gone = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(15));  // polls are 10 ms apart
  EXPECT_TRUE(polled.Requested());
  EXPECT_EQ(polled.Status().code(), absl::StatusCode::kCancelled);

  {
    ScopedCancelToken current(&manual);
    EXPECT_EQ(CurrentCancelToken(), &manual);
    EXPECT_TRUE(CancelRequested());
    EXPECT_EQ(CancelStatus().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(CurrentCancelToken(), nullptr);
}

// Without a stop, every index is visited exactly once, like ParallelFor.
TEST(ParallelForCancellableTest, VisitsEveryIndexOnceWhenNotStopped) {
  CancelToken token;
  ScopedCancelToken current(&token);
  for (int threads : {1, 3, 8}) {
    std::vector<std::atomic<int>> seen(10007);
    ParallelForCancellable(10007, 5, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) seen[i]++;
    });
    for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << i << " " << threads;
    EXPECT_TRUE(CancelStatus().ok());
  }
}

// A loop that would take about 20 s stops soon after its deadline, on every
// thread, and the token (seen by the workers too) says why.
TEST(ParallelForCancellableTest, StopsSoonAfterTheDeadline) {
  CancelToken token(Clock::now() + std::chrono::milliseconds(100));
  ScopedCancelToken current(&token);
  std::atomic<int64_t> done{0};
  std::atomic<bool> workers_saw_token{true};
  const auto start = Clock::now();
  ParallelForCancellable(4000, 1, 4, [&](int64_t b, int64_t e) {
    if (CurrentCancelToken() != &token) workers_saw_token = false;
    for (int64_t i = b; i < e; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      done++;
    }
  });
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  EXPECT_LT(seconds, 2.0);  // pieces are 1/32 of a thread's range: 31 x 20 ms at most
  EXPECT_LT(done.load(), 4000);
  EXPECT_TRUE(workers_saw_token.load());
  EXPECT_EQ(CancelStatus().code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace sparsed
