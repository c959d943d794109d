// Per-tenant quotas (issue 17) on what a tenant may do at once: calls per
// second (a token bucket per tenant) and compute calls running at once. The
// quotas on what a tenant holds are enforced where it is held: tensors and
// bytes by TensorStore, checkpoint bytes by server/checkpoints.cc. Tenant ""
// (a daemon without authentication) has no quotas. Exceeding one is
// RESOURCE_EXHAUSTED naming the quota, its value and the tenant; every
// refusal is counted by (tenant, quota) for /metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace sparsed::server {

struct TenantLimits {
  int64_t max_bytes = 0;               // tenant_max_bytes (0 = unlimited)
  int64_t max_tensors = 0;             // tenant_max_tensors
  int max_concurrent_compute = 0;      // tenant_max_concurrent_compute
  double max_requests_per_second = 0;  // tenant_max_requests_per_second
  int64_t max_checkpoint_bytes = 0;    // tenant_max_checkpoint_bytes
  int max_concurrent_calls = 0;        // tenant_max_concurrent_calls
};

class TenantQuotas {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TenantQuotas(TenantLimits limits = {}) : limits_(limits) {}
  const TenantLimits& limits() const { return limits_; }

  // One call of `tenant` at `now`: RESOURCE_EXHAUSTED once the bucket
  // (capacity max(1, rate), refilled at rate per second) is empty.
  absl::Status AdmitRequest(const std::string& tenant, Clock::time_point now = Clock::now());

  // One of `tenant`'s slots (a compute call, or any call), held while it lives.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& o) noexcept
        : quotas_(std::exchange(o.quotas_, nullptr)),
          counts_(o.counts_),
          tenant_(std::move(o.tenant_)) {}
    Slot& operator=(Slot&& o) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot();

   private:
    friend class TenantQuotas;
    void Release();
    Slot(TenantQuotas* q, std::map<std::string, int>* counts, std::string tenant)
        : quotas_(q), counts_(counts), tenant_(std::move(tenant)) {}
    TenantQuotas* quotas_ = nullptr;
    std::map<std::string, int>* counts_ = nullptr;
    std::string tenant_;
  };
  // RESOURCE_EXHAUSTED (nothing held) when `tenant` already runs
  // max_concurrent_compute calls; `slot` holds one otherwise.
  absl::Status AdmitCompute(const std::string& tenant, Slot* slot);
  // Any call of `tenant` (max_concurrent_calls): a tenant's stalled or slow
  // calls cannot take every serving thread from the others.
  absl::Status AdmitCall(const std::string& tenant, Slot* slot);

  // Counts a refusal by another component (store, checkpoints) for /metrics.
  void CountRefusal(const std::string& tenant, const std::string& quota);
  // (tenant, quota) -> refusals so far.
  std::map<std::pair<std::string, std::string>, int64_t> Refusals() const;
  // tenant -> calls holding a slot now (counted only where
  // max_concurrent_calls is set).
  std::map<std::string, int> OpenCalls() const;

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
    bool started = false;
  };

  const TenantLimits limits_;
  mutable std::mutex mu_;
  std::map<std::string, Bucket> buckets_;  // guarded by mu_
  absl::Status Admit(const std::string& tenant, int max, const char* quota, const char* what,
                     std::map<std::string, int>* counts, Slot* slot);

  std::map<std::string, int> computing_;                             // guarded by mu_
  std::map<std::string, int> calling_;                               // guarded by mu_
  std::map<std::pair<std::string, std::string>, int64_t> refusals_;  // guarded by mu_
};

// RESOURCE_EXHAUSTED: "tenant 'T' is over its quota QUOTA = LIMIT: DETAIL".
absl::Status QuotaExceeded(const std::string& tenant, const std::string& quota, double limit,
                           const std::string& detail);

}  // namespace sparsed::server
