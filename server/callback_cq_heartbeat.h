// Keeps gRPC's callback completion-queue threads from idling into a stall.
//
// gRPC 1.51 (Debian 12) runs callback-API work (our Upload, Download and
// Sessions.Open reactors, callback client calls) on "nexting" threads that
// wait on their queue for 1 s and, when nothing came, sleep 100 ms. Measured
// (docs/PERFORMANCE.md): every RPC of the daemon, sync ones too, then waits —
// a 100 ms stall every 1.1 s. A tiny callback call to our own health service
// every `period` gives those threads work, so they never reach the sleep.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace sparsed::server {

// Metadata key marking the heartbeat's calls (request metrics skip them).
inline constexpr const char* kHeartbeatMetadata = "sparsed-heartbeat";

class CallbackCqHeartbeat {
 public:
  // `server` must outlive this object.
  CallbackCqHeartbeat(grpc::Server& server, std::chrono::milliseconds period);
  ~CallbackCqHeartbeat();  // stops, after the call in flight completes
  CallbackCqHeartbeat(const CallbackCqHeartbeat&) = delete;
  CallbackCqHeartbeat& operator=(const CallbackCqHeartbeat&) = delete;

 private:
  void Run();
  const std::chrono::milliseconds period_;
  std::shared_ptr<grpc::Channel> channel_;  // in-process
  grpc::GenericStub stub_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sparsed::server
