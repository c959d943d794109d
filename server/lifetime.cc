#include "server/lifetime.h"

#include <charconv>
#include <chrono>
#include <string_view>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

// The value of metadata `key`, or "" when absent.
std::string_view Metadata(const grpc::ServerContextBase& rpc, std::string_view key) {
  const auto& md = rpc.client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string_view(it->second.data(), it->second.size());
}

}  // namespace

int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<CallLifetime> LifetimeOfCall(const grpc::ServerContextBase& rpc,
                                            const SessionTable& sessions,
                                            const std::string& tenant) {
  CallLifetime out;
  if (std::string_view id = Metadata(rpc, "sparsed-session"); !id.empty()) {
    if (id.size() > 64) {
      return absl::InvalidArgumentError(
          StrCat("metadata sparsed-session is ", id.size(), " bytes long; ids are 18"));
    }
    out.session_id = std::string(id);
    RETURN_IF_ERROR(sessions.Check(tenant, out.session_id));
  }
  if (std::string_view mode = Metadata(rpc, "sparsed-lifetime"); !mode.empty()) {
    if (mode == "session") {
      out.mode = CallLifetime::Mode::kSession;
    } else if (mode == "persistent") {
      out.mode = CallLifetime::Mode::kPersistent;
    } else {
      return absl::InvalidArgumentError(StrCat("metadata sparsed-lifetime = '", mode.substr(0, 64),
                                               "' is not one of session, persistent"));
    }
    if (out.mode == CallLifetime::Mode::kSession && out.session_id.empty()) {
      return absl::InvalidArgumentError(
          "metadata sparsed-lifetime = 'session' needs sparsed-session (open one with "
          "Sessions.Open)");
    }
  }
  if (std::string_view ttl = Metadata(rpc, "sparsed-ttl-seconds"); !ttl.empty()) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(ttl.data(), ttl.data() + ttl.size(), seconds);
    if (ec != std::errc() || end != ttl.data() + ttl.size() || seconds < 1 ||
        seconds > kMaxTtlSeconds) {
      return absl::InvalidArgumentError(
          StrCat("metadata sparsed-ttl-seconds = '", ttl.substr(0, 64),
                 "' is not a whole number of seconds in [1, ", kMaxTtlSeconds, "]"));
    }
    out.ttl_ms = seconds * 1000;
  }
  return out;
}

Lifetime ResolveLifetime(const CallLifetime& call, const std::string& name, int64_t now_unix_ms) {
  Lifetime life;
  const bool in_session =
      !call.session_id.empty() && (call.mode == CallLifetime::Mode::kSession ||
                                   (call.mode == CallLifetime::Mode::kDefault && name.empty()));
  if (in_session) life.session_id = call.session_id;
  if (call.ttl_ms > 0) {
    life.ttl_ms = call.ttl_ms;
    life.expires_unix_ms = now_unix_ms + call.ttl_ms;  // until the store inserts it
  }
  return life;
}

}  // namespace sparsed::server
