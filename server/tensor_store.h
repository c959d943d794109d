// The daemon's tensors: id -> tensor with name, labels and creation time.
// Stored tensors are immutable; readers hold a shared_ptr, so a tensor deleted
// while an op reads it stays alive until that op finishes, then is freed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/handle_index.h"
#include "server/tenant_quotas.h"
#include "sparsed/tensor.h"

namespace sparsed::server {

// How long a stored tensor lives (docs/API.md, "Lifetimes"): until deleted,
// until its session ends, and/or until a wall-clock time.
struct Lifetime {
  std::string session_id;       // "" = belongs to no session
  int64_t expires_unix_ms = 0;  // 0 = never
  // A TTL (0: none). The store sets expires_unix_ms = created + ttl_ms when
  // it inserts the tensor, so that expiry and creation read one clock.
  int64_t ttl_ms = 0;
};

struct StoredTensor {
  std::string id;      // "t-" + 16 hex digits
  std::string name;    // optional, unique within the tenant
  std::string tenant;  // owner ("" without authentication); see handle_index.h
  std::map<std::string, std::string> labels;
  int64_t created_unix_ms = 0;
  Lifetime lifetime;
  Tensor tensor;
};

using TensorPtr = std::shared_ptr<const StoredTensor>;

struct HeldUsage {
  std::string device;
  int64_t tensors = 0;
  int64_t bytes = 0;
};

// Every lookup takes the caller's tenant: another tenant's tensor is
// NOT_FOUND, as if it did not exist, and names are unique per tenant.
class TensorStore {
 public:
  // Quotas of every tenant but "" (tenant_max_tensors, tenant_max_bytes):
  // an insert past one is RESOURCE_EXHAUSTED naming it, counted in
  // `refusals` (which must outlive the store). Set before serving.
  void SetTenantLimits(int64_t max_tensors, int64_t max_bytes, TenantQuotas* refusals);
  // RESOURCE_EXHAUSTED when `tenant` could not hold one more tensor of
  // `bytes` now (an early check for uploads; Insert checks again).
  absl::Status CheckRoom(const std::string& tenant, int64_t bytes) const;

  // Adds a tensor of `tenant` under a fresh id. ALREADY_EXISTS if `name` is
  // taken in that tenant.
  absl::StatusOr<TensorPtr> Insert(const std::string& tenant, Tensor tensor, std::string name,
                                   std::map<std::string, std::string> labels,
                                   Lifetime lifetime = {});
  struct NewTensor {
    Tensor tensor;
    std::string name;
    std::map<std::string, std::string> labels;
    std::string tenant;
    Lifetime lifetime;
  };
  // Adds all of `tensors` under fresh ids, or none: ALREADY_EXISTS naming the
  // first name that is taken or given twice. Checked and inserted under one
  // lock, so that no concurrent insert can make it fail half-way (restores).
  absl::StatusOr<std::vector<TensorPtr>> InsertAll(std::vector<NewTensor> tensors);
  // ALREADY_EXISTS if a non-empty `name` is taken now (an early check for
  // uploads; Insert checks again).
  absl::Status CheckNameFree(const std::string& tenant, const std::string& name) const;

  // NOT_FOUND naming the id or name.
  absl::StatusOr<TensorPtr> FindById(const std::string& tenant, const std::string& id) const;
  absl::StatusOr<TensorPtr> FindByName(const std::string& tenant, const std::string& name) const;

  // Removes and returns the entry (freed when its last reader lets go).
  absl::StatusOr<TensorPtr> EraseById(const std::string& tenant, const std::string& id);

  // Removes every tensor whose lifetime is over: expired at `now_unix_ms`, or
  // of a session for which `session_open` is false. Returns them (freed when
  // their last reader lets go) with the reason of each: "ttl" or "session".
  struct Released {
    TensorPtr tensor;
    const char* reason;
  };
  std::vector<Released> ReleaseEnded(int64_t now_unix_ms,
                                     const std::function<bool(const std::string&)>& session_open);
  // Tensors with a lifetime (a session or an expiry) held now.
  int64_t mortal() const;

  // The tenant's tensors whose name starts with `name_prefix` (all when
  // empty; unnamed tensors only then), ordered by creation.
  std::vector<TensorPtr> List(const std::string& tenant, const std::string& name_prefix) const;
  // Every tenant's tensors, ordered by creation (the daemon's own checkpoints).
  std::vector<TensorPtr> ListAll() const;

  int64_t size() const;
  // Held tensors and bytes per device: of every tenant, or of `tenant` only.
  std::vector<HeldUsage> Usage() const;
  std::vector<HeldUsage> Usage(const std::string& tenant) const;
  // Tensors and bytes held per tenant, tenant "" left out.
  std::map<std::string, std::pair<int64_t, int64_t>> TenantUsage() const;

 private:
  std::vector<HeldUsage> UsageOf(const std::string* tenant) const;  // nullptr: all
  // Quota check of `tensors` more tensors of `bytes` in all; mu_ held.
  absl::Status CheckRoomLocked(const std::string& tenant, int64_t tensors, int64_t bytes) const;
  void Account(const StoredTensor& t, int sign);  // mu_ held

  int64_t max_tensors_ = 0, max_bytes_ = 0;
  TenantQuotas* refusals_ = nullptr;
  std::map<std::string, std::pair<int64_t, int64_t>> held_;  // tenant -> (tensors, bytes); mu_
  int64_t mortal_ = 0;                                       // held tensors with a Lifetime; mu_

  mutable std::mutex mu_;
  HandleIndex<TensorPtr> index_{"tensor", "t-"};  // guarded by mu_
};

}  // namespace sparsed::server
