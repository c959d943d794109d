// Releases what outlived its lifetime: tensors past their TTL, and tensors and
// shared-memory regions of sessions that ended (stream closed, client gone,
// lease lapsed). Runs on its own thread every `period` and at once on Wake()
// (a session's stream just ended).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace sparsed::server {

struct ServiceContext;

class LifetimeSweeper {
 public:
  LifetimeSweeper(ServiceContext& ctx, std::chrono::milliseconds period);
  ~LifetimeSweeper();  // stops the thread
  LifetimeSweeper(const LifetimeSweeper&) = delete;
  LifetimeSweeper& operator=(const LifetimeSweeper&) = delete;

  void Wake();
  // One pass now, on the calling thread (the thread calls it too).
  void SweepOnce();
  // Tensors released so far, by reason ("ttl", "session").
  std::map<std::string, int64_t> released() const;

 private:
  void Run();

  ServiceContext& ctx_;
  const std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool woken_ = false, stopping_ = false;    // guarded by mu_
  std::map<std::string, int64_t> released_;  // guarded by mu_
  std::mutex sweep_mu_;                      // one pass at a time
  std::thread thread_;
};

}  // namespace sparsed::server
