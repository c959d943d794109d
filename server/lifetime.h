// What a call asks for the lifetime of the tensors it creates, read from its
// metadata (docs/API.md, "Lifetimes"):
//   sparsed-session: s-...           the caller's open session (Sessions.Open)
//   sparsed-lifetime: session|persistent
//                                    session: every tensor the call creates
//                                    belongs to the session; persistent: none
//                                    does. Default: unnamed ones do.
//   sparsed-ttl-seconds: N           released N seconds after creation
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "server/sessions.h"
#include "server/tensor_store.h"

namespace sparsed::server {

struct CallLifetime {
  enum class Mode { kDefault, kSession, kPersistent };
  std::string session_id;  // "" when the call names no session
  Mode mode = Mode::kDefault;
  int64_t ttl_ms = 0;  // 0 = no expiry
};

int64_t UnixNowMs();

// The longest TTL a call may ask for (a year).
inline constexpr int64_t kMaxTtlSeconds = 366LL * 24 * 3600;

// Parses the three metadata entries. INVALID_ARGUMENT naming the entry and
// value for a malformed one, or `sparsed-lifetime: session` without a
// session; NOT_FOUND when the session is not an open session of `tenant`.
absl::StatusOr<CallLifetime> LifetimeOfCall(const grpc::ServerContextBase& rpc,
                                            const SessionTable& sessions,
                                            const std::string& tenant);

// The lifetime of a tensor named `name` (may be "") created by such a call
// at `now_unix_ms` (default: now).
Lifetime ResolveLifetime(const CallLifetime& call, const std::string& name,
                         int64_t now_unix_ms = UnixNowMs());

}  // namespace sparsed::server
