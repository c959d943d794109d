// Admission control shared by every op that computes (Spmm, Convert,
// Transpose, Prune, Inspect): at most max_inflight_compute calls compute at
// once; the rest are told to come back rather than queued without bound.
#pragma once

#include "absl/status/status.h"
#include "server/service_context.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

class ComputeSlot {
 public:
  explicit ComputeSlot(ServiceContext& ctx) : ctx_(ctx) {
    admitted_ = ctx_.inflight_compute.fetch_add(1) < ctx_.config.max_inflight_compute;
  }
  ~ComputeSlot() { ctx_.inflight_compute.fetch_sub(1); }
  ComputeSlot(const ComputeSlot&) = delete;
  ComputeSlot& operator=(const ComputeSlot&) = delete;

  absl::Status status() const {
    if (admitted_) return absl::OkStatus();
    return absl::ResourceExhaustedError(
        StrCat("server busy: ", ctx_.config.max_inflight_compute,
               " compute calls are already running (max_inflight_compute); retry later"));
  }

 private:
  ServiceContext& ctx_;
  bool admitted_;
};

}  // namespace sparsed::server
