// What every gRPC service of the daemon shares.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "server/auth.h"
#include "server/config.h"
#include "server/layer_store.h"
#include "server/sessions.h"
#include "server/shm_regions.h"
#include "server/stall_watchdog.h"
#include "server/tenant_quotas.h"
#include "server/tensor_store.h"
#include "sparsed/backend.h"
#include "sparsed/tune_db.h"

namespace sparsed::server {

struct ServiceContext {
  Config config;
  // Who may call (server/auth.h); off unless auth_tokens or tls_client_ca is set.
  std::unique_ptr<Authenticator> auth = std::make_unique<Authenticator>("", false);
  // Per-tenant request rate and compute concurrency (tensor and checkpoint
  // quotas are enforced by the store and server/checkpoints.cc).
  std::unique_ptr<TenantQuotas> quotas = std::make_unique<TenantQuotas>();
  // config.max_request_work resolved for the backend (0 = no limit).
  double max_request_work = 0;
  TensorStore store;
  // Client sessions; the lease is config.session_lease_seconds.
  std::unique_ptr<SessionTable> sessions =
      std::make_unique<SessionTable>(std::chrono::milliseconds(30'000));
  // Registered shared-memory regions (null when config.shared_memory is off).
  std::unique_ptr<SharedRegions> regions;
  LayerStore layers;                // training layers (Training service)
  std::unique_ptr<TuneDb> tune_db;  // <data_dir>/tune.json; outlives the backend
  std::unique_ptr<Backend> backend;
  std::string metrics_address;   // host:port of /metrics once bound ("" when disabled)
  std::string kernel_cache_dir;  // where the backend keeps compiled kernels ("" = none)
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<int> inflight_compute{0};
  std::mutex checkpoint_mu;  // serialises checkpoint saves and deletes
  std::mutex restore_mu;     // serialises restores
  // Cancels uploads whose client went silent (config.upload_idle_timeout_seconds).
  std::unique_ptr<StallWatchdog> stall_watchdog;
};

}  // namespace sparsed::server
