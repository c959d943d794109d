#include "server/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "server/admin_service.h"
#include "server/callback_cq_heartbeat.h"
#include "server/checkpoint_service.h"
#include "server/checkpoints.h"
#include "server/compute_service.h"
#include "server/graph_service.h"
#include "server/lifetime_sweeper.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/request_metrics_interceptor.h"
#include "server/service_context.h"
#include "server/session_service.h"
#include "server/shm_service.h"
#include "server/tensors_service.h"
#include "server/tls.h"
#include "server/training_service.h"
#include "sparsed/buffer.h"
#include "sparsed/device.h"
#include "sparsed/device_memory.h"
#include "sparsed/gpu_info.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

struct Daemon::State {
  // Declared before ctx so that it outlives the backend, whose kernel
  // compilations report to it.
  std::unique_ptr<ServerMetrics> metrics;
  ServiceContext ctx;
  std::unique_ptr<MetricsHttpServer> metrics_http;
  std::unique_ptr<TensorsService> tensors;
  std::unique_ptr<ComputeService> compute;
  std::unique_ptr<GraphService> graphs;
  std::unique_ptr<AdminService> admin;
  std::unique_ptr<CheckpointService> checkpoints;
  std::unique_ptr<TrainingService> training;
  std::unique_ptr<TrainingOpsService> training_ops;
  std::unique_ptr<SessionsService> sessions;
  std::unique_ptr<SharedMemoryService> shared_memory;
  // Releases tensors past their TTL or session; declared after ctx so that it
  // stops before the store goes.
  std::unique_ptr<LifetimeSweeper> sweeper;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<CallbackCqHeartbeat> callback_cq_heartbeat;  // stopped before the server
  bool shut_down = false;

  // The periodic checkpoint (config.checkpoint_every > 0).
  std::thread checkpointer;
  std::mutex checkpointer_mu;
  std::condition_variable checkpointer_cv;
  bool stop_checkpointer = false;

  void RunCheckpointer();
  void StopCheckpointer();

  // Watches the backend's health (Backend::Health) once a second: when its
  // device faults, the gRPC health service turns NOT_SERVING (so that an
  // orchestrator restarts the daemon) and the fault is logged once.
  std::thread health_watch;
  std::mutex health_mu;
  std::condition_variable health_cv;
  bool stop_health_watch = false;

  void RunHealthWatch();
  void StopHealthWatch();
};

void Daemon::State::RunHealthWatch() {
  std::unique_lock lock(health_mu);
  while (!health_cv.wait_for(lock, std::chrono::seconds(1), [this] { return stop_health_watch; })) {
    const absl::Status health = ctx.backend->Health();
    if (health.ok()) continue;
    spdlog::error("the backend's device has failed; health turns NOT_SERVING: {}",
                  health.ToString());
    server->GetHealthCheckService()->SetServingStatus(false);
    return;  // a faulted device does not recover
  }
}

void Daemon::State::StopHealthWatch() {
  if (!health_watch.joinable()) return;
  {
    std::lock_guard lock(health_mu);
    stop_health_watch = true;
  }
  health_cv.notify_all();
  health_watch.join();
}

namespace {

// An automatic checkpoint: logged either way, counted in the metrics
// (sparsed_checkpoint_saves_total{trigger, result}); a failure is logged at
// error level and returned.
absl::Status SaveNamedCheckpoint(ServiceContext& ctx, ServerMetrics& metrics, const char* why) {
  const std::string& name = ctx.config.checkpoint_name;
  absl::StatusOr<SavedCheckpoint> saved = SaveEveryTenant(ctx, name);
  metrics.RecordAutoCheckpoint(why, saved.ok());
  if (saved.ok()) {
    spdlog::info("{} checkpoint '{}' saved: {} tensors, {} layers, {} bytes", why, name,
                 saved->tensors, saved->layers, saved->bytes);
    return absl::OkStatus();
  }
  spdlog::error("{} checkpoint '{}' failed: {}", why, name, saved.status().ToString());
  return saved.status();
}

}  // namespace

void Daemon::State::RunCheckpointer() {
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(ctx.config.checkpoint_every));
  std::unique_lock lock(checkpointer_mu);
  auto next = std::chrono::steady_clock::now() + period;
  while (!checkpointer_cv.wait_until(lock, next, [this] { return stop_checkpointer; })) {
    lock.unlock();
    (void)SaveNamedCheckpoint(ctx, *metrics, "periodic");  // logged and counted there
    lock.lock();
    next = std::chrono::steady_clock::now() + period;
  }
}

void Daemon::State::StopCheckpointer() {
  if (!checkpointer.joinable()) return;
  {
    std::lock_guard lock(checkpointer_mu);
    stop_checkpointer = true;
  }
  checkpointer_cv.notify_all();
  checkpointer.join();
}

namespace {

// Where the CUDA backend keeps JIT-compiled kernels.
std::string KernelCacheDir(const Config& config) {
  return (std::filesystem::path(config.data_dir) / "kernels").string();
}

// What the backend needs from the daemon besides the configuration.
struct BackendHooks {
  TuneDb* tune_db = nullptr;
  std::function<void(double seconds)> on_kernel_compile;
};

CudaBackendOptions CudaOptions(const Config& config, int device, const BackendHooks& hooks) {
  CudaBackendOptions o;
  o.device = device;
  o.tune_db = hooks.tune_db;
  o.streams = config.cuda_streams;
  o.max_queued = config.cuda_max_queued;
  o.force_variant = config.spmm_variant;
  o.kernel_cache_dir = KernelCacheDir(config);
  o.kernel_cache_bytes = config.kernel_cache_bytes;
  o.bsr_tensor_cores = config.bsr_tensor_cores;
  o.on_kernel_compile = hooks.on_kernel_compile;
  return o;
}

// Picks the backend for config.device: "cpu"; "cuda:N" (that GPU or an
// error); "auto" (cuda:0 when a GPU is visible and the CUDA backend starts,
// else the CPU, saying why).
absl::StatusOr<std::unique_ptr<Backend>> MakeBackend(const Config& config,
                                                     const BackendHooks& hooks) {
  if (config.device == "cpu") {
    spdlog::info("device = cpu: serving on the CPU backend");
    return MakeCpuBackend(config.cpu_threads);
  }
  const std::vector<GpuInfo> gpus = ListGpus();
  if (config.device == "auto") {
    if (gpus.empty()) {
      spdlog::info("device = auto: no GPU visible{}; serving on the CPU backend",
                   CudaCompiledIn() ? "" : " (this build has no CUDA support)");
      return MakeCpuBackend(config.cpu_threads);
    }
    absl::StatusOr<std::unique_ptr<Backend>> cuda = MakeCudaBackend(CudaOptions(config, 0, hooks));
    if (!cuda.ok()) {
      spdlog::warn(
          "device = auto: {} GPU(s) visible ({}), but the CUDA backend did not start: {}; "
          "serving on the CPU backend",
          gpus.size(), gpus[0].name, cuda.status().ToString());
      return MakeCpuBackend(config.cpu_threads);
    }
    spdlog::info("device = auto: serving on the CUDA backend on cuda:0 ({})", gpus[0].name);
    return cuda;
  }
  ASSIGN_OR_RETURN(const Device device, ParseDevice(config.device));
  if (device.is_cpu()) return MakeCpuBackend(config.cpu_threads);
  absl::StatusOr<std::unique_ptr<Backend>> cuda =
      MakeCudaBackend(CudaOptions(config, device.index, hooks));
  if (!cuda.ok()) {
    return absl::FailedPreconditionError(
        StrCat("device = '", config.device, "': the CUDA backend cannot start there (", gpus.size(),
               " GPU(s) visible", CudaCompiledIn() ? "" : ", no CUDA in this build",
               "): ", cuda.status().message(), "; use --device cpu or auto"));
  }
  spdlog::info("device = {}: serving on the CUDA backend", config.device);
  return cuda;
}

absl::Status WriteAnnounceFile(const std::string& path, const BoundAddresses& a) {
  nlohmann::json j = {{"grpc", a.grpc}, {"metrics", a.metrics}, {"pid", ::getpid()}};
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) return absl::InternalError(StrCat("cannot write announce file '", tmp, "'"));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(StrCat("cannot rename '", tmp, "': ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

Daemon::Daemon(std::unique_ptr<State> state) : state_(std::move(state)) {}

Daemon::~Daemon() { (void)Shutdown(); }

absl::Status Daemon::ReloadAuth() {
  ServiceContext& ctx = state_->ctx;
  if (ctx.config.auth_tokens.empty()) return absl::OkStatus();
  absl::Status s = ctx.auth->Reload();
  if (s.ok()) {
    spdlog::info("auth_tokens reloaded: {} tokens of {} tenants", ctx.auth->tokens(),
                 ctx.auth->Tenants().size());
  } else {
    spdlog::error("auth_tokens not reloaded, the tokens before stay in force: {}",
                  std::string(s.message()));
  }
  return s;
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const Config& config) {
  RETURN_IF_ERROR(CheckConfig(config));
  auto state = std::make_unique<State>();
  ServiceContext& ctx = state->ctx;
  ctx.stall_watchdog = std::make_unique<StallWatchdog>(
      std::chrono::duration<double>(config.upload_idle_timeout_seconds));
  ctx.config = config;
  ctx.sessions = std::make_unique<SessionTable>(
      std::chrono::milliseconds(static_cast<int64_t>(config.session_lease_seconds * 1000)));
  ctx.quotas = std::make_unique<TenantQuotas>(
      TenantLimits{.max_bytes = config.tenant_max_bytes,
                   .max_tensors = config.tenant_max_tensors,
                   .max_concurrent_compute = config.tenant_max_concurrent_compute,
                   .max_requests_per_second = config.tenant_max_requests_per_second,
                   .max_checkpoint_bytes = config.tenant_max_checkpoint_bytes,
                   .max_concurrent_calls = config.tenant_max_concurrent_calls});
  ctx.store.SetTenantLimits(config.tenant_max_tensors, config.tenant_max_bytes, ctx.quotas.get());

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        StrCat("data_dir '", config.data_dir, "' cannot be created: ", ec.message()));
  }
  ASSIGN_OR_RETURN(ctx.tune_db,
                   TuneDb::Open((std::filesystem::path(config.data_dir) / "tune.json").string()));
  if (!ctx.tune_db->warning().empty()) spdlog::warn("tune database: {}", ctx.tune_db->warning());
  ASSIGN_OR_RETURN(state->metrics, ServerMetrics::Create());
  BackendHooks hooks;
  hooks.tune_db = ctx.tune_db.get();
  hooks.on_kernel_compile = [m = state->metrics.get()](double seconds) {
    m->ObserveKernelCompile(seconds);
  };
  ASSIGN_OR_RETURN(ctx.backend, MakeBackend(config, hooks));
  {
    // Host memory is bounded on every backend (request scratch, inline
    // results, host copies); the compute device by memory_limit_bytes.
    const Device device = ctx.backend->device();
    int64_t device_total = HostMemoryBytes();
    for (const GpuInfo& g : device.is_cpu() ? std::vector<GpuInfo>{} : ListGpus()) {
      if (g.index == device.index) device_total = g.total_bytes;
    }
    const int64_t device_limit = EffectiveMemoryLimit(config.memory_limit_bytes, device_total);
    MemoryAccount::For(device).set_limit(device_limit);
    if (!device.is_cpu() && config.memory_limit_bytes != 0) {
      MemoryAccount::For(Device::Cpu()).set_limit(EffectiveMemoryLimit(-1, HostMemoryBytes()));
    }
    spdlog::info("memory limit on {}: {}", device.ToString(),
                 device_limit > 0 ? StrCat(device_limit, " bytes") : std::string("none"));
  }
  if (ctx.backend->name() != "cpu") ctx.kernel_cache_dir = KernelCacheDir(config);
  ctx.max_request_work = config.max_request_work >= 0   ? config.max_request_work
                         : ctx.backend->name() == "cpu" ? 1e11
                                                        : 1e14;
  const Device active_device = ctx.backend->device();
  const std::string backend_device = active_device.ToString();
  state->metrics->SetDeviceUsage(
      [store = &ctx.store, backend = ctx.backend.get(), active_device, backend_device] {
        std::vector<DeviceUsage> out;
        bool has_backend = false;
        for (const HeldUsage& u : store->Usage()) {
          out.push_back({u.device, static_cast<double>(u.tensors), static_cast<double>(u.bytes)});
          has_backend |= u.device == backend_device;
        }
        if (!has_backend) out.push_back({backend_device, 0, 0});
        const bool healthy = backend->Health().ok();
        for (DeviceUsage& u : out) {
          if (u.device != backend_device) continue;
          u.has_health = true;
          u.healthy = healthy ? 1 : 0;
        }
        if (!active_device.is_cpu()) {
          const DevicePoolStats pool = GetDevicePoolStats(active_device.index);
          for (DeviceUsage& u : out) {
            if (u.device != backend_device) continue;
            u.has_pool = true;
            u.pool_reserved_bytes = static_cast<double>(pool.reserved_bytes);
            u.pool_used_bytes = static_cast<double>(pool.used_bytes);
          }
        }
        return out;
      });

  // Per tenant: labels only for tenants that authenticated (those of the
  // token file, or certificates the configured CA signed), so bounded.
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_tenant_quota_refusals_total",
      "Calls refused because a tenant was over a quota, by tenant and quota.", MetricType::kCounter,
      {"tenant", "quota"}, [quotas = ctx.quotas.get()] {
        std::vector<CallbackSample> out;
        for (const auto& [key, n] : quotas->Refusals()) {
          out.push_back({{key.first, key.second}, static_cast<double>(n)});
        }
        return out;
      }));
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_tenant_open_calls",
      "Calls running, by tenant (counted where tenant_max_concurrent_calls is set).",
      MetricType::kGauge, {"tenant"}, [quotas = ctx.quotas.get()] {
        std::vector<CallbackSample> out;
        for (const auto& [tenant, n] : quotas->OpenCalls()) {
          out.push_back({{tenant}, static_cast<double>(n)});
        }
        return out;
      }));
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_sessions_open", "Client sessions open (Sessions.Open).", MetricType::kGauge, {},
      [sessions = ctx.sessions.get()] {
        return std::vector<CallbackSample>{{{}, static_cast<double>(sessions->open())}};
      }));
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_shared_memory_regions", "Shared-memory regions registered.", MetricType::kGauge, {},
      [&ctx] {
        const double n = ctx.regions ? static_cast<double>(ctx.regions->size()) : 0.0;
        return std::vector<CallbackSample>{{{}, n}};
      }));
  auto per_tenant = [store = &ctx.store](bool bytes) {
    return [store, bytes] {
      std::vector<CallbackSample> out;
      for (const auto& [tenant, held] : store->TenantUsage()) {
        out.push_back({{tenant}, static_cast<double>(bytes ? held.second : held.first)});
      }
      return out;
    };
  };
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_tenant_tensors", "Tensors held, by tenant (authentication on).", MetricType::kGauge,
      {"tenant"}, per_tenant(false)));
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_tenant_tensor_bytes", "Bytes of tensors held, by tenant (authentication on).",
      MetricType::kGauge, {"tenant"}, per_tenant(true)));

  state->metrics->SetTuneStats([db = ctx.tune_db.get()] {
    return TuneStats{.entries = static_cast<double>(db->size()),
                     .hits = static_cast<double>(db->hits()),
                     .misses = static_cast<double>(db->misses()),
                     .trials = static_cast<double>(db->trials())};
  });

  state->metrics->SetKernelCacheStats([backend = ctx.backend.get()] {
    const KernelCacheStats s = backend->KernelCacheStatistics();
    return KernelCacheMetrics{.hits = static_cast<double>(s.hits),
                              .misses = static_cast<double>(s.misses),
                              .compiles = static_cast<double>(s.compiles),
                              .compile_errors = static_cast<double>(s.compile_errors),
                              .bytes = static_cast<double>(s.bytes_on_disk),
                              .entries = static_cast<double>(s.entries)};
  });

  state->tensors = std::make_unique<TensorsService>(ctx);
  state->compute = std::make_unique<ComputeService>(ctx);
  state->graphs = std::make_unique<GraphService>(ctx);
  state->admin = std::make_unique<AdminService>(ctx);
  state->checkpoints = std::make_unique<CheckpointService>(ctx);
  state->training = std::make_unique<TrainingService>(ctx);
  state->training_ops = std::make_unique<TrainingOpsService>(ctx);
  state->sweeper = std::make_unique<LifetimeSweeper>(ctx, std::chrono::milliseconds(200));
  state->sessions = std::make_unique<SessionsService>(ctx, state->sweeper.get());
  state->shared_memory = std::make_unique<SharedMemoryService>(ctx);
  RETURN_IF_ERROR(state->metrics->registry().AddCallback(
      "sparsed_tensors_released_total",
      "Tensors released because their lifetime ended, by reason (ttl, session).",
      MetricType::kCounter, {"reason"}, [sweeper = state->sweeper.get()] {
        std::vector<CallbackSample> out;
        for (const auto& [reason, n] : sweeper->released()) {
          out.push_back({{reason}, static_cast<double>(n)});
        }
        return out;
      }));

  ASSIGN_OR_RETURN(ctx.auth,
                   Authenticator::Create(config.auth_tokens, !config.tls_client_ca.empty()));
  // Shared memory lets a caller make the daemon open objects of its host by
  // name, so `auto` keeps it to daemons without tenants.
  if (config.shared_memory == "on" || (config.shared_memory == "auto" && !ctx.auth->enabled())) {
    ctx.regions = std::make_unique<SharedRegions>();
  }
  if (ctx.auth->enabled()) {
    spdlog::info("authentication on: {} tokens of {} tenants{}", ctx.auth->tokens(),
                 ctx.auth->Tenants().size(),
                 config.tls_client_ca.empty() ? "" : ", client certificates name tenants");
  }

  // Saves cut short by a crash of an earlier run leave temporary files.
  std::vector<std::string> checkpoint_dirs = {CheckpointDir(config)};
  for (const std::string& t : TenantsWithCheckpoints(config)) {
    checkpoint_dirs.push_back(CheckpointDir(config, t));
  }
  for (const std::string& dir : checkpoint_dirs) {
    if (absl::StatusOr<int64_t> removed =
            checkpoint::RemoveStaleTemporaries(dir, /*own_pid_is_stale=*/true);
        !removed.ok()) {
      spdlog::warn("checkpoint temporaries not cleaned: {}", removed.status().ToString());
    } else if (*removed > 0) {
      spdlog::info("removed {} temporary files of interrupted checkpoint saves in {}", *removed,
                   dir);
    }
  }

  if (!config.restore.empty()) {
    absl::StatusOr<RestoredCheckpoint> restored = RestoreEveryTenant(ctx, config.restore);
    // Restoring the checkpoint this daemon writes itself (the durable setup:
    // --restore auto with --checkpoint-every/--checkpoint-on-exit): none yet
    // means the first boot on this data dir, so start empty (issue 19).
    const bool own_checkpoint = config.restore == config.checkpoint_name &&
                                (config.checkpoint_every > 0 || config.checkpoint_on_exit);
    if (absl::IsNotFound(restored.status()) && own_checkpoint) {
      spdlog::info("no checkpoint '{}' yet in {}: first start on this data dir, starting empty",
                   config.restore, CheckpointDir(config));
      restored = RestoredCheckpoint{};
    }
    if (!restored.ok()) {
      return absl::Status(restored.status().code(),
                          StrCat("--restore ", config.restore, ": ", restored.status().message()));
    }
    spdlog::info("restored checkpoint '{}': {} tensors, {} layers", config.restore,
                 restored->tensors.size(), restored->layers.size());
  }

  grpc::EnableDefaultHealthCheckService(true);
  RETURN_IF_ERROR(CheckProtectedMode(config));
  if (config.insecure && !ctx.auth->enabled()) {
    spdlog::warn(
        "--insecure: serving {} without authentication; every client that can reach "
        "it may read, change and delete every tensor",
        config.listen);
  }
  if (config.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = -1;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   MakeServerCredentials(config));
  builder.AddListeningPort(config.listen, credentials, &grpc_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  // Bounded threads and streams (issue 17: 5,000 stalled streams took 5,020
  // threads): calls beyond the thread quota are refused, and one connection
  // cannot open more than max_streams_per_connection calls at once.
  grpc::ResourceQuota quota("sparsed");
  quota.SetMaxThreads(config.grpc_max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, config.max_streams_per_connection);
  builder.RegisterService(state->tensors.get());
  builder.RegisterService(state->compute.get());
  builder.RegisterService(state->graphs.get());
  builder.RegisterService(state->admin.get());
  builder.RegisterService(state->checkpoints.get());
  builder.RegisterService(state->training.get());
  builder.RegisterService(state->training_ops.get());
  builder.RegisterService(state->sessions.get());
  builder.RegisterService(state->shared_memory.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(std::make_unique<RequestMetricsInterceptorFactory>(state->metrics.get()));
  builder.experimental().SetInterceptorCreators(std::move(creators));
  const std::optional<std::string> socket_path = UnixSocketPath(config.listen);
  {
    // A Unix socket is created owner-only and then given listen_socket_mode,
    // so no other user can connect in between.
    const mode_t old_umask = socket_path ? ::umask(0077) : 0;
    state->server = builder.BuildAndStart();
    if (socket_path) ::umask(old_umask);
  }
  if (state->server && socket_path) {
    const auto mode = static_cast<mode_t>(std::stoul(config.listen_socket_mode, nullptr, 8));
    if (::chmod(socket_path->c_str(), mode) != 0) {
      state->server->Shutdown();
      return absl::FailedPreconditionError(StrCat("cannot set the mode of '", *socket_path, "' to ",
                                                  config.listen_socket_mode, ": ",
                                                  std::strerror(errno)));
    }
  }
  if (!state->server || grpc_port <= 0) {
    return absl::UnavailableError(
        StrCat("cannot listen on '", config.listen, "' (address in use or not valid here",
               config.tls_cert.empty()
                   ? ""
                   : "; or tls_key does not match tls_cert, or a PEM file is not usable",
               ")"));
  }

  state->callback_cq_heartbeat =
      std::make_unique<CallbackCqHeartbeat>(*state->server, std::chrono::milliseconds(100));

  BoundAddresses addresses;
  if (socket_path) {
    addresses.grpc = config.listen;
  } else {
    ASSIGN_OR_RETURN(auto grpc_hp, SplitHostPort(config.listen));
    addresses.grpc =
        StrCat(grpc_hp.first.find(':') != std::string::npos ? StrCat("[", grpc_hp.first, "]")
                                                            : grpc_hp.first,
               ":", grpc_port);
  }
  if (!config.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(auto hp, SplitHostPort(config.metrics_listen));
    state->metrics_http =
        std::make_unique<MetricsHttpServer>([m = state->metrics.get()] { return m->Render(); });
    absl::StatusOr<int> port = state->metrics_http->Start(hp.first, hp.second);
    if (!port.ok()) {
      state->server->Shutdown();
      return port.status();
    }
    addresses.metrics = StrCat(hp.first, ":", *port);
    ctx.metrics_address = addresses.metrics;
  }
  state->server->GetHealthCheckService()->SetServingStatus(true);

  spdlog::info(
      "sparsed {} serving gRPC on {} (backend {}, device {}), metrics on {}", SPARSED_VERSION,
      addresses.grpc, ctx.backend->name(), backend_device,
      addresses.metrics.empty() ? "(disabled)" : "http://" + addresses.metrics + "/metrics");
  if (!config.announce_file.empty()) {
    absl::Status s = WriteAnnounceFile(config.announce_file, addresses);
    if (!s.ok()) {
      state->server->Shutdown();
      return s;
    }
  }
  if (config.checkpoint_every > 0) {
    State* st = state.get();
    st->checkpointer = std::thread([st] { st->RunCheckpointer(); });
  }
  {
    State* st = state.get();
    st->health_watch = std::thread([st] { st->RunHealthWatch(); });
  }
  auto daemon = std::make_unique<Daemon>(std::move(state));
  daemon->addresses_ = std::move(addresses);
  return daemon;
}

absl::Status Daemon::Shutdown() {
  if (!state_ || state_->shut_down) return absl::OkStatus();
  state_->shut_down = true;
  state_->StopHealthWatch();
  const auto grace = std::chrono::duration<double>(state_->ctx.config.shutdown_grace_seconds);
  spdlog::info("shutting down: no new calls; in-flight calls get {:.1f} s", grace.count());
  state_->server->GetHealthCheckService()->SetServingStatus(false);
  state_->callback_cq_heartbeat.reset();  // no more calls of its own
  // Session streams stay open as long as their clients live; end them now
  // so that they do not hold the shutdown for the whole grace.
  state_->ctx.sessions->EndAll();
  const auto deadline = std::chrono::system_clock::now() +
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(grace);
  // gRPC's Shutdown cancels calls at the deadline but then waits for their
  // handlers to return; handlers that ignore cancellation would hold it
  // forever. Wait at most the grace plus kShutdownBoundSeconds.
  {
    auto stopped = std::make_shared<std::promise<void>>();
    std::future<void> done = stopped->get_future();
    std::thread stopper([server = state_->server.get(), deadline, stopped] {
      server->Shutdown(deadline);
      server->Wait();
      stopped->set_value();
    });
    const auto bound = std::chrono::duration<double>(grace.count() + kShutdownBoundSeconds);
    if (done.wait_for(bound) == std::future_status::timeout) {
      stopper.detach();
      state_->StopCheckpointer();
      const absl::Status stuck = absl::DeadlineExceededError(
          StrCat("calls still running ", kShutdownBoundSeconds,
                 " s after the shutdown grace; exiting without them (no exit checkpoint)"));
      spdlog::critical("{}", stuck.ToString());
      return stuck;
    }
    stopper.join();
  }
  state_->StopCheckpointer();
  // No call is running now, so the exit checkpoint holds the final state.
  absl::Status exit_checkpoint;
  if (state_->ctx.config.checkpoint_on_exit) {
    exit_checkpoint = SaveNamedCheckpoint(state_->ctx, *state_->metrics, "exit");
  }
  if (state_->metrics_http) state_->metrics_http->Stop();
  if (!exit_checkpoint.ok()) {
    spdlog::critical("shut down, but the exit checkpoint failed: {}", exit_checkpoint.ToString());
    return exit_checkpoint;
  }
  spdlog::info("shut down cleanly");
  return absl::OkStatus();
}

}  // namespace sparsed::server
