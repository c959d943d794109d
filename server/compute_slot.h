// Admission control shared by every op that computes (Spmm, Convert,
// Transpose, Prune, Inspect): at most max_inflight_compute calls compute at
// once, and at most tenant_max_concurrent_compute of one tenant; the rest are
// told to come back rather than queued without bound.
#pragma once

#include "absl/status/status.h"
#include "server/service_context.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

class ComputeSlot {
 public:
  ComputeSlot(ServiceContext& ctx, const Caller& caller) : ctx_(ctx) {
    admitted_ = ctx_.inflight_compute.fetch_add(1) < ctx_.config.max_inflight_compute;
    if (admitted_) tenant_status_ = ctx_.quotas->AdmitCompute(caller.tenant, &tenant_slot_);
  }
  ~ComputeSlot() { ctx_.inflight_compute.fetch_sub(1); }
  ComputeSlot(const ComputeSlot&) = delete;
  ComputeSlot& operator=(const ComputeSlot&) = delete;

  absl::Status status() const {
    if (admitted_) return tenant_status_;
    return absl::ResourceExhaustedError(
        StrCat("server busy: ", ctx_.config.max_inflight_compute,
               " compute calls are already running (max_inflight_compute); retry later"));
  }

 private:
  ServiceContext& ctx_;
  bool admitted_;
  absl::Status tenant_status_;
  TenantQuotas::Slot tenant_slot_;
};

}  // namespace sparsed::server
