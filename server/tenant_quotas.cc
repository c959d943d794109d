#include "server/tenant_quotas.h"

#include <algorithm>

#include "sparsed/str_cat.h"

namespace sparsed::server {

absl::Status QuotaExceeded(const std::string& tenant, const std::string& quota, double limit,
                           const std::string& detail) {
  return absl::ResourceExhaustedError(
      StrCat("tenant '", tenant, "' is over its quota ", quota, " = ", limit, ": ", detail));
}

absl::Status TenantQuotas::AdmitRequest(const std::string& tenant, Clock::time_point now) {
  const double rate = limits_.max_requests_per_second;
  if (tenant.empty() || rate <= 0) return absl::OkStatus();
  const double capacity = std::max(1.0, rate);
  std::lock_guard lock(mu_);
  Bucket& b = buckets_[tenant];
  if (!b.started) {
    b = Bucket{capacity, now, true};
  } else if (now > b.last) {
    b.tokens =
        std::min(capacity, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return absl::OkStatus();
  }
  ++refusals_[{tenant, "tenant_max_requests_per_second"}];
  return QuotaExceeded(tenant, "tenant_max_requests_per_second", rate,
                       "too many calls; retry later");
}

absl::Status TenantQuotas::Admit(const std::string& tenant, int max, const char* quota,
                                 const char* what, std::map<std::string, int>* counts, Slot* slot) {
  if (tenant.empty() || max <= 0) return absl::OkStatus();
  std::lock_guard lock(mu_);
  int& running = (*counts)[tenant];
  if (running >= max) {
    ++refusals_[{tenant, quota}];
    return QuotaExceeded(tenant, quota, max,
                         StrCat(running, " ", what, " are running; retry later"));
  }
  ++running;
  *slot = Slot(this, counts, tenant);
  return absl::OkStatus();
}

absl::Status TenantQuotas::AdmitCompute(const std::string& tenant, Slot* slot) {
  return Admit(tenant, limits_.max_concurrent_compute, "tenant_max_concurrent_compute",
               "compute calls", &computing_, slot);
}

absl::Status TenantQuotas::AdmitCall(const std::string& tenant, Slot* slot) {
  return Admit(tenant, limits_.max_concurrent_calls, "tenant_max_concurrent_calls", "calls",
               &calling_, slot);
}

TenantQuotas::Slot& TenantQuotas::Slot::operator=(Slot&& o) noexcept {
  if (this != &o) {
    Release();
    quotas_ = std::exchange(o.quotas_, nullptr);
    counts_ = o.counts_;
    tenant_ = std::move(o.tenant_);
  }
  return *this;
}

TenantQuotas::Slot::~Slot() { Release(); }

void TenantQuotas::Slot::Release() {
  if (quotas_ == nullptr) return;
  std::lock_guard lock(quotas_->mu_);
  --(*counts_)[tenant_];
  quotas_ = nullptr;
}

void TenantQuotas::CountRefusal(const std::string& tenant, const std::string& quota) {
  std::lock_guard lock(mu_);
  ++refusals_[{tenant, quota}];
}

std::map<std::pair<std::string, std::string>, int64_t> TenantQuotas::Refusals() const {
  std::lock_guard lock(mu_);
  return refusals_;
}

std::map<std::string, int> TenantQuotas::OpenCalls() const {
  std::lock_guard lock(mu_);
  return calling_;
}

}  // namespace sparsed::server
