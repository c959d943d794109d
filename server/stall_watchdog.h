// Cancels streaming calls whose client stopped sending (issue 17: an upload
// that stalls held its memory and a thread forever). A handler registers its
// call, touches the registration whenever a message arrives, and learns from
// it whether the watchdog cancelled the call.
#pragma once

#include <grpcpp/server_context.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

namespace sparsed::server {

class StallWatchdog {
 public:
  // Calls idle for longer than `idle` are cancelled (checked about every
  // idle / 4, at least every 250 ms). idle <= 0 turns the watchdog off.
  explicit StallWatchdog(std::chrono::duration<double> idle);
  ~StallWatchdog();
  StallWatchdog(const StallWatchdog&) = delete;
  StallWatchdog& operator=(const StallWatchdog&) = delete;

  class Watch;
  // Watches `ctx` until the returned Watch is destroyed.
  std::unique_ptr<Watch> Start(grpc::ServerContextBase* ctx);

  double idle_seconds() const { return idle_.count(); }

 private:
  struct Entry {
    grpc::ServerContextBase* ctx;
    std::atomic<int64_t> last_ns;
    std::atomic<bool> cancelled{false};
  };
  void Loop();

  const std::chrono::duration<double> idle_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<Entry*> entries_;  // guarded by mu_
  std::thread thread_;
};

class StallWatchdog::Watch {
 public:
  Watch(StallWatchdog* dog, std::unique_ptr<Entry> entry);
  ~Watch();
  // A message arrived: the call is alive.
  void Touch();
  // Whether the watchdog cancelled the call for being idle.
  bool cancelled() const { return entry_->cancelled.load(); }

 private:
  StallWatchdog* dog_;
  std::unique_ptr<Entry> entry_;
};

}  // namespace sparsed::server
