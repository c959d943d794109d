// Serves GET /metrics (Prometheus text format) and GET /healthz over HTTP.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace sparsed::server {

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

class MetricsHttpServer {
 public:
  // `render` produces the /metrics body; it is called on the listener's
  // worker threads, so it must be thread-safe.
  explicit MetricsHttpServer(std::function<std::string()> render);
  ~MetricsHttpServer();  // Stop()s
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds host:port (port 0 picks a free one) and serves on a background
  // thread. Returns the bound port, or UNAVAILABLE naming the address when
  // binding fails, FAILED_PRECONDITION if already started.
  absl::StatusOr<int> Start(const std::string& host, int port);

  // Stops the listener and joins its thread. Idempotent. Start/Stop are not
  // meant to be called concurrently from several threads.
  void Stop();

 private:
  const std::function<std::string()> render_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> listener_done_{false};
};

}  // namespace sparsed::server
