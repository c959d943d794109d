#include "server/sessions.h"

#include <cstdio>
#include <random>
#include <utility>

#include "sparsed/str_cat.h"

namespace sparsed::server {

absl::StatusOr<std::string> SessionTable::Open(const std::string& tenant,
                                               std::function<void()> end_stream,
                                               Clock::time_point now) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::lock_guard lock(mu_);
  int& held = open_per_tenant_[tenant];
  if (held >= kMaxPerTenant) {
    return absl::ResourceExhaustedError(StrCat("tenant '", tenant, "' holds ", held,
                                               " open sessions, the most allowed (", kMaxPerTenant,
                                               "); close some first"));
  }
  std::string id;
  do {
    char hex[17];
    std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(rng()));
    id = StrCat("s-", hex);
  } while (open_.contains(id));
  open_[id] = Session{tenant, now, std::move(end_stream)};
  ++held;
  return id;
}

bool SessionTable::Touch(const std::string& id, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = open_.find(id);
  if (it == open_.end()) return false;
  it->second.last_heard = now;
  return true;
}

void SessionTable::Close(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = open_.find(id);
  if (it == open_.end()) return;
  if (--open_per_tenant_[it->second.tenant] == 0) open_per_tenant_.erase(it->second.tenant);
  open_.erase(it);
}

absl::Status SessionTable::Check(const std::string& tenant, const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = open_.find(id);
  if (it == open_.end() || it->second.tenant != tenant) {
    return absl::NotFoundError(
        StrCat("no open session '", id,
               "' (a session ends when its stream closes or its lease lapses; open another)"));
  }
  return absl::OkStatus();
}

bool SessionTable::IsOpen(const std::string& id) const {
  std::lock_guard lock(mu_);
  return open_.contains(id);
}

int SessionTable::LapseIdle(Clock::time_point now) {
  std::lock_guard lock(mu_);
  int ended = 0;
  for (auto it = open_.begin(); it != open_.end();) {
    if (now - it->second.last_heard <= lease_) {
      ++it;
      continue;
    }
    if (it->second.end_stream) it->second.end_stream();
    if (--open_per_tenant_[it->second.tenant] == 0) open_per_tenant_.erase(it->second.tenant);
    it = open_.erase(it);
    ++ended;
  }
  lapsed_total_ += ended;
  return ended;
}

void SessionTable::EndAll() {
  std::lock_guard lock(mu_);
  for (auto& [id, session] : open_) {
    if (session.end_stream) session.end_stream();
  }
  open_.clear();
  open_per_tenant_.clear();
}

int64_t SessionTable::open() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(open_.size());
}

int64_t SessionTable::lapsed_total() const {
  std::lock_guard lock(mu_);
  return lapsed_total_;
}

}  // namespace sparsed::server
