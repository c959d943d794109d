#include "server/metrics_http.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>

#include "sparsed/str_cat.h"

namespace sparsed::server {

MetricsHttpServer::MetricsHttpServer(std::function<std::string()> render)
    : render_(std::move(render)) {}

namespace {
constexpr size_t kHttpWorkers = 64;
constexpr time_t kHttpReadTimeoutSeconds = 2;
}  // namespace

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::StatusOr<int> MetricsHttpServer::Start(const std::string& host, int port) {
  if (server_) return absl::FailedPreconditionError("metrics HTTP server already started");
  auto server = std::make_unique<httplib::Server>();
  // httplib's default sets SO_REUSEPORT, which would let a second daemon bind
  // the same port and silently share scrapes. SO_REUSEADDR only allows a
  // quick restart over connections in TIME_WAIT.
  server->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Slow or idle clients must not starve scrapes and probes (issue 17: 16
  // slow clients made /metrics and /healthz time out): more workers than
  // httplib's default, and short read/keep-alive timeouts so a stalled
  // connection gives its worker back within a second or two.
  // (httplib takes ownership of the queue: its API returns a raw pointer.)
  server->new_task_queue = [] { return new httplib::ThreadPool(kHttpWorkers); };
  server->set_read_timeout(kHttpReadTimeoutSeconds, 0);
  server->set_write_timeout(5, 0);
  server->set_keep_alive_timeout(kHttpReadTimeoutSeconds);
  server->set_keep_alive_max_count(16);
  server->set_payload_max_length(1 << 16);  // GETs only: no bodies worth reading
  server->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_(), kMetricsContentType);
  });
  server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain; charset=utf-8");
  });
  // Unmatched paths get httplib's default 404.

  int bound = port;
  if (port == 0) {
    bound = server->bind_to_any_port(host);  // -1 on failure
  } else if (!server->bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound < 0) {
    return absl::UnavailableError(StrCat("metrics HTTP server: cannot bind ", host, ":", port));
  }

  server_ = std::move(server);
  listener_done_ = false;
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    listener_done_ = true;
  });
  // httplib's stop() is a no-op until the listen loop has started, so wait
  // for it here; otherwise an early Stop() would leave the thread running.
  while (!server_->is_running() && !listener_done_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (listener_done_) {  // the listen loop exited at once
    Stop();
    return absl::UnavailableError(
        StrCat("metrics HTTP server: listen failed on ", host, ":", bound));
  }
  return bound;
}

void MetricsHttpServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace sparsed::server
