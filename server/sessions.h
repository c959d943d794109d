// Client sessions (Sessions.Open, proto/sparsed/v1/sessions.proto): which are
// open, whose, and when each was last heard from. A session ends when its
// stream ends or its lease lapses; what it owned is then released by the
// lifetime sweeper (server/lifetime_sweeper.h), which checks IsOpen.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"

namespace sparsed::server {

class SessionTable {
 public:
  using Clock = std::chrono::steady_clock;
  // Sessions one tenant may hold open at once.
  static constexpr int kMaxPerTenant = 1024;

  explicit SessionTable(std::chrono::milliseconds lease) : lease_(lease) {}
  std::chrono::milliseconds lease() const { return lease_; }

  // Opens a session of `tenant` and returns its id ("s-" + 16 hex digits).
  // `end_stream` is called (under the table's lock, so it must not call back
  // into the table) if the lease lapses, to end the session's stream.
  // RESOURCE_EXHAUSTED past kMaxPerTenant.
  absl::StatusOr<std::string> Open(const std::string& tenant, std::function<void()> end_stream,
                                   Clock::time_point now = Clock::now());
  // Renews the lease; false when the session is no longer open.
  bool Touch(const std::string& id, Clock::time_point now = Clock::now());
  // Ends the session (idempotent). After it returns, its `end_stream` is
  // never called.
  void Close(const std::string& id);

  // NOT_FOUND unless `id` names an open session of `tenant` (another
  // tenant's session reads exactly like an unknown one).
  absl::Status Check(const std::string& tenant, const std::string& id) const;
  bool IsOpen(const std::string& id) const;

  // Ends every session not heard from for longer than the lease at `now`
  // and calls its end_stream. Returns how many ended.
  int LapseIdle(Clock::time_point now = Clock::now());

  // Ends every session, calling each end_stream (shutdown).
  void EndAll();

  int64_t open() const;
  int64_t lapsed_total() const;

 private:
  struct Session {
    std::string tenant;
    Clock::time_point last_heard;
    std::function<void()> end_stream;
  };
  const std::chrono::milliseconds lease_;
  mutable std::mutex mu_;
  std::map<std::string, Session> open_;         // guarded by mu_
  std::map<std::string, int> open_per_tenant_;  // guarded by mu_
  int64_t lapsed_total_ = 0;                    // guarded by mu_
};

}  // namespace sparsed::server
