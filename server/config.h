// Daemon configuration: built-in defaults, overridden by a JSON file
// (config/sparsed.json), then by SPARSED_* environment variables, then by
// command-line flags. Every key exists in all three forms:
//   JSON key "metrics_listen" = env SPARSED_METRICS_LISTEN = flag --metrics-listen.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparsed::server {

struct Config {
  std::string listen = "127.0.0.1:50051";         // gRPC address; port 0 picks a free one
  std::string metrics_listen = "127.0.0.1:9464";  // Prometheus /metrics; "" disables
  // Token file (server/auth.h): "SHA256-OF-TOKEN TENANT ROLE" lines; set:
  // clients must authenticate, each tenant sees only its own data.
  std::string auth_tokens;
  // Quotas of each authenticated tenant (0 = unlimited; tenant "" of a daemon
  // without authentication has none): server/tenant_quotas.h.
  int64_t tenant_max_bytes = 0;               // bytes of tensors held
  int64_t tenant_max_tensors = 0;             // tensors held
  int tenant_max_concurrent_compute = 0;      // compute calls running at once
  int tenant_max_concurrent_calls = 0;        // calls of any kind open at once
  double tenant_max_requests_per_second = 0;  // calls per second (burst: one second's worth)
  int64_t tenant_max_checkpoint_bytes = 0;    // bytes of the tenant's checkpoint files
  int64_t checkpoint_max_bytes = 0;
  // Largest estimated cost of one request in scalar operations
  // (server/request_cost.h); -1 = 1e11 on the CPU backend, 1e14 on a GPU; 0 = none.
  double max_request_work = -1;             // bytes of all checkpoint files together
  std::string listen_socket_mode = "0600";  // file mode of a unix:/path listen socket
  bool insecure = false;      // serve a non-loopback listen address without authentication
  bool reflection = true;     // gRPC server reflection
  std::string tls_cert;       // PEM certificate chain; with tls_key: gRPC over TLS
  std::string tls_key;        // PEM private key of tls_cert
  std::string tls_client_ca;  // PEM CA bundle; set: mutual TLS (client certificates required)
  std::string data_dir = "./sparsed-data";  // tune database, checkpoints, caches
  std::string device = "auto";              // auto | cpu | cuda:N
  std::string log_level = "info";           // trace|debug|info|warn|error|critical|off
  bool log_json = false;                    // one JSON object per log line
  int64_t max_message_bytes = 64 << 20;     // largest gRPC message either way
  int grpc_max_threads = 512;            // threads serving calls (more calls: RESOURCE_EXHAUSTED)
  int max_streams_per_connection = 100;  // concurrent calls one client connection may open
  int64_t memory_limit_bytes = -1;       // tensors held per device; -1 = 90% of it, 0 = unlimited
  int cpu_threads = 0;                   // CPU backend threads; 0 = all cores
  int max_inflight_compute = 64;         // compute calls at once; more get RESOURCE_EXHAUSTED
  double shutdown_grace_seconds = 10;    // in-flight calls get this long on SIGTERM
  double upload_idle_timeout_seconds = 60;  // an upload silent this long is cancelled (0: never)
  double session_lease_seconds = 30;  // a session not pinged this long ends (docs/API.md)
  // SharedMemory service: auto (on without authentication, off with it), on, off.
  std::string shared_memory = "auto";
  std::string announce_file;                // if set, write bound addresses here as JSON
  int cuda_streams = 4;                     // CUDA backend: requests computing at once on the GPU
  int cuda_max_queued = 64;                 // CUDA backend: requests waiting for a stream
  std::string spmm_variant;                 // CUDA backend: force this SpMM variant ("" = tune)
  bool bsr_tensor_cores = false;         // CUDA backend: tune among the JIT tensor-core BSR kernels
  int64_t kernel_cache_bytes = 1 << 30;  // CUDA backend: JIT kernels on disk; 0 = no cap
  std::string restore;                   // start with this checkpoint's tensors ("" = none)
  double checkpoint_every = 0;           // seconds between periodic checkpoints; 0 = off
  std::string checkpoint_name = "auto";  // the periodic and the exit checkpoint
  bool checkpoint_on_exit = false;       // save checkpoint_name on SIGTERM/SIGINT
};

// One configurable key: its name in each form and how to set it from text.
struct ConfigKey {
  std::string json;  // "metrics_listen"
  std::string env;   // "SPARSED_METRICS_LISTEN"
  std::string flag;  // "--metrics-listen"
  std::string help;
  bool boolean = false;  // takes true/false; as a flag the value may be left out
};
const std::vector<ConfigKey>& ConfigKeys();

// Sets `key` (its JSON name) from text; INVALID_ARGUMENT naming `source`,
// the key and the value when the text does not parse or is out of range.
absl::Status SetConfigValue(Config& config, const std::string& key, const std::string& value,
                            const std::string& source);

// Applies a JSON object of keys to `config`. Unknown keys are an error (to
// catch typos), as are values of the wrong type.
absl::Status ApplyConfigJson(Config& config, const std::string& json_text,
                             const std::string& source);
absl::Status ApplyConfigFile(Config& config, const std::string& path);

// Applies SPARSED_* variables found through `getenv` (std::getenv by default).
absl::Status ApplyConfigEnv(Config& config,
                            const std::function<const char*(const char*)>& getenv = nullptr);

// Applies flag values (keyed by JSON name).
absl::Status ApplyConfigFlags(Config& config, const std::map<std::string, std::string>& flags);

// Checks cross-field constraints (addresses present, positive limits, ...).
absl::Status CheckConfig(const Config& config);

// Splits "host:port" ("[v6]:port" too); INVALID_ARGUMENT on a bad address.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address);
// Whether `host` (from SplitHostPort) only accepts connections from this
// machine: 127.0.0.0/8, ::1, localhost.
bool IsLoopbackHost(const std::string& host);
// The byte limit of a device whose memory is `total_bytes`: `configured`
// when positive, 0 (unlimited) when 0, and for -1 (auto) 90% of total_bytes
// (0 when the total is unknown).
int64_t EffectiveMemoryLimit(int64_t configured, int64_t total_bytes);

// The socket path of a "unix:/path" listen address; nullopt for host:port.
std::optional<std::string> UnixSocketPath(const std::string& listen);

// Whether callers must authenticate: a token file or client certificates.
bool AuthenticationConfigured(const Config& config);
// Protected mode (as Redis has it): with no authentication, a gRPC listen
// address other than loopback needs `insecure`. FAILED_PRECONDITION naming
// the address and the flag otherwise.
absl::Status CheckProtectedMode(const Config& config);

}  // namespace sparsed::server
