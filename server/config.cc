#include "server/config.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "sparsed/checkpoint.h"
#include "sparsed/device.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

using Setter = std::function<absl::Status(Config&, const std::string&)>;

absl::Status Bad(const std::string& source, const std::string& key, const std::string& value,
                 const std::string& why) {
  return absl::InvalidArgumentError(StrCat(source, ": ", key, " = '", value, "' ", why));
}

template <class T>
bool ParseNumber(const std::string& text, T& out) {
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && p == end && !text.empty();
}

// The JSON type a key takes in the config file.
enum class Kind { kString, kNumber, kBool };

struct KeyDef {
  ConfigKey key;
  Kind kind;
  std::function<absl::Status(Config&, const std::string&, const std::string&)> set;
};

KeyDef StringKey(std::string name, std::string help, std::string Config::*field) {
  return {{name, "", "", std::move(help)},
          Kind::kString,
          [field](Config& c, const std::string& v, const std::string&) {
            c.*field = v;
            return absl::OkStatus();
          }};
}

template <class T>
KeyDef NumberKey(std::string name, std::string help, T Config::*field, T min,
                 T max = std::numeric_limits<T>::max()) {
  return {{name, "", "", std::move(help)},
          Kind::kNumber,
          [name, field, min, max](Config& c, const std::string& v, const std::string& source) {
            T parsed{};
            if (!ParseNumber(v, parsed)) return Bad(source, name, v, "is not a number");
            if (parsed < min) return Bad(source, name, v, StrCat("is below the minimum ", min));
            if (parsed > max) return Bad(source, name, v, StrCat("is above the maximum ", max));
            c.*field = parsed;
            return absl::OkStatus();
          }};
}

KeyDef BoolKey(std::string name, std::string help, bool Config::*field) {
  return {{name, "", "", std::move(help), /*boolean=*/true},
          Kind::kBool,
          [name, field](Config& c, const std::string& v, const std::string& source) {
            if (v == "true" || v == "1" || v == "yes" || v == "on") {
              c.*field = true;
            } else if (v == "false" || v == "0" || v == "no" || v == "off") {
              c.*field = false;
            } else {
              return Bad(source, name, v, "is not a boolean (true/false)");
            }
            return absl::OkStatus();
          }};
}

const std::vector<KeyDef>& Defs() {
  static const std::vector<KeyDef> defs = [] {
    std::vector<KeyDef> d = {
        StringKey("listen", "gRPC listen address host:port (port 0 picks a free one)",
                  &Config::listen),
        StringKey("metrics_listen", "Prometheus /metrics listen address host:port (empty disables)",
                  &Config::metrics_listen),
        StringKey("data_dir", "directory for the tune database, checkpoints and caches",
                  &Config::data_dir),
        StringKey("device", "compute device: auto, cpu or cuda:N", &Config::device),
        StringKey("log_level", "trace, debug, info, warn, error, critical or off",
                  &Config::log_level),
        BoolKey("log_json", "log one JSON object per line", &Config::log_json),
        NumberKey<int64_t>("max_message_bytes", "largest gRPC message in either direction",
                           &Config::max_message_bytes, 1 << 20,
                           std::numeric_limits<int>::max()),  // gRPC takes an int
        NumberKey<int64_t>("memory_limit_bytes",
                           "bytes of tensors and request scratch per device (-1 = 90% of the "
                           "device's memory, the container's limit for host memory; 0 = "
                           "unlimited)",
                           &Config::memory_limit_bytes, -1),
        NumberKey<int>("cpu_threads", "CPU backend threads (0 = all cores)", &Config::cpu_threads,
                       0),
        NumberKey<int>("grpc_max_threads",
                       "threads that serve gRPC calls at once; beyond them new calls are refused "
                       "with RESOURCE_EXHAUSTED instead of each taking a thread",
                       &Config::grpc_max_threads, 4),
        NumberKey<int>("max_streams_per_connection",
                       "calls one client connection may have open at once (HTTP/2 streams)",
                       &Config::max_streams_per_connection, 1),
        NumberKey<int>("max_inflight_compute",
                       "compute calls run at once; more are refused with RESOURCE_EXHAUSTED",
                       &Config::max_inflight_compute, 1),
        NumberKey<double>("shutdown_grace_seconds",
                          "how long in-flight calls may run after SIGTERM/SIGINT",
                          &Config::shutdown_grace_seconds, 0.0),
        NumberKey<double>("upload_idle_timeout_seconds",
                          "cancel an upload whose client sends nothing for this long, freeing "
                          "its memory and thread (0 = never)",
                          &Config::upload_idle_timeout_seconds, 0.0),
        NumberKey<double>("session_lease_seconds",
                          "a client session (Sessions.Open) that sends no ping for this long "
                          "ends, releasing its tensors and shared-memory regions",
                          &Config::session_lease_seconds, 1.0, 86400.0),
        StringKey("shared_memory",
                  "transfers through POSIX shared memory of clients on the same host: auto (on "
                  "unless authentication is on), on, off. On lets any caller make the daemon "
                  "read or write shared-memory objects its user can open",
                  &Config::shared_memory),
        StringKey("announce_file",
                  "write the bound addresses here as JSON once serving (for scripts and tests)",
                  &Config::announce_file),
        NumberKey<int>("cuda_streams", "CUDA backend: requests computing at once on the GPU",
                       &Config::cuda_streams, 1, 1024),
        NumberKey<int>("cuda_max_queued",
                       "CUDA backend: requests waiting for a stream; more get RESOURCE_EXHAUSTED",
                       &Config::cuda_max_queued, 0),
        StringKey("spmm_variant",
                  "CUDA backend: run this SpMM kernel variant instead of tuning (debugging, "
                  "benchmarks; empty = tune)",
                  &Config::spmm_variant),
        NumberKey<int64_t>("kernel_cache_bytes",
                           "CUDA backend: bytes of JIT-compiled kernels kept on disk in "
                           "<data_dir>/kernels, least recently used evicted first (0 = no cap)",
                           &Config::kernel_cache_bytes, 0),
        BoolKey("bsr_tensor_cores",
                "CUDA backend: let the autotuner choose the JIT tensor-core BSR kernels "
                "(off: tested on a GPU, not yet benchmarked, and each specialisation compiles "
                "on first use; a forced spmm_variant runs them regardless)",
                &Config::bsr_tensor_cores),
        StringKey("restore",
                  "start with the tensors of this checkpoint (<data_dir>/checkpoints/NAME"
                  ".safetensors); the daemon exits with the error if it cannot be restored",
                  &Config::restore),
        NumberKey<double>("checkpoint_every",
                          "seconds between periodic saves of every tensor to checkpoint_name "
                          "(0 = off)",
                          &Config::checkpoint_every, 0.0),
        StringKey("checkpoint_name",
                  "checkpoint written by checkpoint_every and checkpoint_on_exit",
                  &Config::checkpoint_name),
        StringKey("listen_socket_mode",
                  "file mode of the socket when listen is unix:/path (octal, e.g. 0660 to let "
                  "the socket's group connect)",
                  &Config::listen_socket_mode),
        StringKey("auth_tokens",
                  "token file: lines 'SHA256-OF-TOKEN TENANT ROLE' (role user or admin), reread "
                  "on SIGHUP; set, every call needs 'authorization: Bearer TOKEN' and each tenant "
                  "sees only its own tensors, layers and checkpoints",
                  &Config::auth_tokens),
        NumberKey<int64_t>("tenant_max_bytes",
                           "bytes of tensors each authenticated tenant may hold (0 = unlimited)",
                           &Config::tenant_max_bytes, 0),
        NumberKey<int64_t>("tenant_max_tensors",
                           "tensors each authenticated tenant may hold (0 = unlimited)",
                           &Config::tenant_max_tensors, 0),
        NumberKey<int>("tenant_max_concurrent_compute",
                       "compute calls each authenticated tenant may run at once (0 = unlimited)",
                       &Config::tenant_max_concurrent_compute, 0),
        NumberKey<int>("tenant_max_concurrent_calls",
                       "calls of any kind (uploads included) each authenticated tenant may have "
                       "open at once (0 = unlimited)",
                       &Config::tenant_max_concurrent_calls, 0),
        NumberKey<double>("tenant_max_requests_per_second",
                          "calls per second each authenticated tenant may make, bursts of one "
                          "second's worth (0 = unlimited)",
                          &Config::tenant_max_requests_per_second, 0.0),
        NumberKey<int64_t>("tenant_max_checkpoint_bytes",
                           "bytes of checkpoint files each authenticated tenant may keep "
                           "(0 = unlimited)",
                           &Config::tenant_max_checkpoint_bytes, 0),
        NumberKey<double>("max_request_work",
                          "largest estimated cost of one request in scalar operations; more is "
                          "refused before it runs (-1 = 1e11 on the CPU backend, 1e14 on a GPU; "
                          "0 = no limit)",
                          &Config::max_request_work, -1.0),
        NumberKey<int64_t>("checkpoint_max_bytes",
                           "bytes of checkpoint files of all tenants together (0 = unlimited)",
                           &Config::checkpoint_max_bytes, 0),
        BoolKey("insecure",
                "serve a gRPC listen address other than loopback although no authentication is "
                "configured: every client that can reach it may read, change and delete every "
                "tensor (protected mode refuses to start otherwise)",
                &Config::insecure),
        BoolKey("reflection", "offer gRPC server reflection (service discovery for grpcurl etc.)",
                &Config::reflection),
        StringKey("tls_cert",
                  "PEM certificate chain of the gRPC listener; with tls_key, gRPC is served "
                  "over TLS (empty with tls_key empty = plaintext)",
                  &Config::tls_cert),
        StringKey("tls_key", "PEM private key of tls_cert", &Config::tls_key),
        StringKey("tls_client_ca",
                  "PEM CA bundle: mutual TLS, every client must present a certificate signed "
                  "by one of these CAs (needs tls_cert and tls_key)",
                  &Config::tls_client_ca),
        BoolKey("checkpoint_on_exit",
                "on SIGTERM/SIGINT, save every tensor to checkpoint_name once calls have stopped",
                &Config::checkpoint_on_exit),
    };
    for (KeyDef& k : d) {
      std::string env = "SPARSED_", flag = "--";
      for (char ch : k.key.json) {
        env += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        flag += ch == '_' ? '-' : ch;
      }
      k.key.env = env;
      k.key.flag = flag;
    }
    return d;
  }();
  return defs;
}

}  // namespace

const std::vector<ConfigKey>& ConfigKeys() {
  static const std::vector<ConfigKey> keys = [] {
    std::vector<ConfigKey> k;
    for (const KeyDef& d : Defs()) k.push_back(d.key);
    return k;
  }();
  return keys;
}

absl::Status SetConfigValue(Config& config, const std::string& key, const std::string& value,
                            const std::string& source) {
  for (const KeyDef& d : Defs()) {
    if (d.key.json == key) return d.set(config, value, source);
  }
  return absl::InvalidArgumentError(StrCat(source, ": unknown configuration key '", key, "'"));
}

absl::Status ApplyConfigJson(Config& config, const std::string& json_text,
                             const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false,
                                           /*ignore_comments=*/true);
  if (j.is_discarded()) {
    return absl::InvalidArgumentError(StrCat(source, ": not valid JSON"));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(StrCat(source, ": the top level must be a JSON object"));
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    const KeyDef* def = nullptr;
    for (const KeyDef& d : Defs()) {
      if (d.key.json == it.key()) def = &d;
    }
    if (def == nullptr) {
      return absl::InvalidArgumentError(
          StrCat(source, ": unknown configuration key '", it.key(), "'"));
    }
    // Each key takes one JSON type; numbers keep their exact text.
    // Strings are accepted for every key (parsed like environment values).
    std::string text;
    if (it->is_string()) {
      text = it->get<std::string>();
    } else if (def->kind == Kind::kBool && it->is_boolean()) {
      text = it->get<bool>() ? "true" : "false";
    } else if (def->kind == Kind::kNumber && it->is_number_float()) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.17g", it->get<double>());  // 4.0 -> "4"
      text = buf;
    } else if (def->kind == Kind::kNumber && it->is_number()) {
      text = it->dump();
    } else {
      static constexpr const char* kKindNames[] = {"a string", "a number", "a boolean"};
      return absl::InvalidArgumentError(StrCat(source, ": ", it.key(), " = ", it->dump(),
                                               " must be ",
                                               kKindNames[static_cast<int>(def->kind)]));
    }
    RETURN_IF_ERROR(def->set(config, text, source));
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigFile(Config& config, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(StrCat("config file '", path, "' cannot be opened"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ApplyConfigJson(config, ss.str(), path);
}

absl::Status ApplyConfigEnv(Config& config, const std::function<const char*(const char*)>& getenv) {
  for (const KeyDef& d : Defs()) {
    const char* v = getenv ? getenv(d.key.env.c_str()) : std::getenv(d.key.env.c_str());
    if (v != nullptr) RETURN_IF_ERROR(d.set(config, v, StrCat("environment ", d.key.env)));
  }
  return absl::OkStatus();
}

absl::Status ApplyConfigFlags(Config& config, const std::map<std::string, std::string>& flags) {
  for (const auto& [key, value] : flags) {
    std::string flag = "--" + key;
    for (char& ch : flag) ch = ch == '_' ? '-' : ch;
    RETURN_IF_ERROR(SetConfigValue(config, key, value, StrCat("flag ", flag)));
  }
  return absl::OkStatus();
}

int64_t EffectiveMemoryLimit(int64_t configured, int64_t total_bytes) {
  if (configured >= 0) return configured;
  return total_bytes > 0 ? total_bytes / 10 * 9 : 0;
}

bool AuthenticationConfigured(const Config& config) {
  return !config.auth_tokens.empty() || !config.tls_client_ca.empty();
}

bool IsLoopbackHost(const std::string& host) {
  std::string h = host;
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

std::optional<std::string> UnixSocketPath(const std::string& listen) {
  if (!listen.starts_with("unix:")) return std::nullopt;
  return listen.substr(5);
}

absl::Status CheckProtectedMode(const Config& config) {
  // A Unix socket is reached from this machine only (its file mode says by whom).
  if (UnixSocketPath(config.listen).has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto hp, SplitHostPort(config.listen));
  if (IsLoopbackHost(hp.first) || config.insecure || AuthenticationConfigured(config)) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(StrCat(
      "listen = '", config.listen,
      "' accepts connections from other machines, and no authentication is configured, so any "
      "client that can reach it could read, change and delete every tensor; listen on "
      "127.0.0.1, or pass --insecure (SPARSED_INSECURE=true) to serve it anyway"));
}

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(StrCat("address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  if (!ParseNumber(address.substr(colon + 1), port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        StrCat("address '", address, "' has no valid port (0-65535)"));
  }
  return std::make_pair(host, port);
}

absl::Status CheckConfig(const Config& c) {
  if (const std::optional<std::string> path = UnixSocketPath(c.listen)) {
    if (path->empty() || path->front() != '/' || path->size() > 100) {
      return absl::InvalidArgumentError(
          StrCat("listen = '", c.listen,
                 "': a Unix socket needs an absolute path of at most 100 "
                 "bytes (unix:/run/sparsed/sparsed.sock)"));
    }
  } else {
    RETURN_IF_ERROR(SplitHostPort(c.listen).status());
  }
  if (c.listen_socket_mode.size() != 4 || c.listen_socket_mode[0] != '0' ||
      c.listen_socket_mode.find_first_not_of("01234567") != std::string::npos) {
    return absl::InvalidArgumentError(StrCat("listen_socket_mode = '", c.listen_socket_mode,
                                             "' is not an octal file mode like 0660"));
  }
  if (!c.metrics_listen.empty()) RETURN_IF_ERROR(SplitHostPort(c.metrics_listen).status());
  if (c.device != "auto" && !ParseDevice(c.device).ok()) {
    return absl::InvalidArgumentError(
        StrCat("device = '", c.device, "' is not one of auto, cpu, cuda:N"));
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  bool level_ok = false;
  for (const char* l : kLevels) level_ok |= c.log_level == l;
  if (!level_ok) {
    return absl::InvalidArgumentError(
        StrCat("log_level = '", c.log_level,
               "' is not one of trace, debug, info, warn, error, critical, off"));
  }
  if (c.shared_memory != "auto" && c.shared_memory != "on" && c.shared_memory != "off") {
    return absl::InvalidArgumentError(
        StrCat("shared_memory = '", c.shared_memory, "' is not one of auto, on, off"));
  }
  if (c.data_dir.empty()) return absl::InvalidArgumentError("data_dir must not be empty");
  RETURN_IF_ERROR(checkpoint::CheckName(c.checkpoint_name, "checkpoint_name"));
  if (!c.restore.empty()) RETURN_IF_ERROR(checkpoint::CheckName(c.restore, "restore"));
  return absl::OkStatus();
}

}  // namespace sparsed::server
