#include "server/callback_cq_heartbeat.h"

#include <grpcpp/support/byte_buffer.h>

#include <future>

namespace sparsed::server {

CallbackCqHeartbeat::CallbackCqHeartbeat(grpc::Server& server, std::chrono::milliseconds period)
    : period_(period),
      channel_(server.InProcessChannel(grpc::ChannelArguments())),
      stub_(channel_),
      thread_([this] { Run(); }) {}

CallbackCqHeartbeat::~CallbackCqHeartbeat() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CallbackCqHeartbeat::Run() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stopping_; })) {
    lock.unlock();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    context.AddMetadata(kHeartbeatMetadata, "1");
    grpc::Slice empty("");  // an empty HealthCheckRequest (0 bytes, one slice)
    grpc::ByteBuffer request(&empty, 1), response;
    std::promise<void> done;
    stub_.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&done](grpc::Status) { done.set_value(); });
    done.get_future().wait();  // its context and buffers must outlive it
    lock.lock();
  }
}

}  // namespace sparsed::server
