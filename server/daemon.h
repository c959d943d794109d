// The daemon: gRPC server (Tensors, Compute, Admin, Checkpoints, Training,
// TrainingOps, grpc.health.v1.Health, reflection) plus the Prometheus
// endpoint, wired to one backend.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace sparsed::server {

struct BoundAddresses {
  std::string grpc;     // host:port actually bound
  std::string metrics;  // host:port, or "" when disabled
};

class Daemon {
  struct State;

 public:
  // Use Start(); State is private, so only Start can build one.
  explicit Daemon(std::unique_ptr<State> state);
  ~Daemon();

  // Creates the backend (per config.device), binds every listener and starts
  // serving. Fails (and serves nothing) if any step fails.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const Config& config);

  const BoundAddresses& addresses() const { return addresses_; }

  // Rereads the auth_tokens file (SIGHUP). On error, logged and returned, the
  // tokens before stay in force.
  absl::Status ReloadAuth();

  // Marks the service NOT_SERVING, stops accepting calls, waits up to
  // shutdown_grace_seconds for in-flight calls (then cancels them), saves the
  // exit checkpoint when configured, stops the metrics endpoint. Idempotent.
  // Returns the exit checkpoint's error, if it failed (the caller exits
  // non-zero: nothing may be lost silently). DEADLINE_EXCEEDED when calls
  // still ran kShutdownBoundSeconds after the grace: the server cannot be
  // destroyed under them, so the caller must leave with std::_Exit.
  absl::Status Shutdown();
  // 1.8 s, so that with signal delivery and exit the whole stays within
  // the grace + 2 s the issue asks for (measured 3.03 s with 2.0).
  static constexpr double kShutdownBoundSeconds = 1.8;

 private:
  std::unique_ptr<State> state_;
  BoundAddresses addresses_;
};

}  // namespace sparsed::server
