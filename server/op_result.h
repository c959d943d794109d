// Handing an op's result to the client as it asked (shared by the Compute,
// Training and TrainingOps services).
#pragma once

#include <chrono>

#include "absl/status/status.h"
#include "server/service_context.h"
#include "sparsed/tensor.h"
#include "sparsed/v1/compute.pb.h"

namespace sparsed::server {

double MillisecondsSince(std::chrono::steady_clock::time_point start);

// A new held tensor (output.name and labels checked; ALREADY_EXISTS for a
// taken name) or inline (RESOURCE_EXHAUSTED when larger than a response may
// carry), into `response`.
absl::Status DeliverResult(ServiceContext& ctx, const Caller& caller, Tensor result,
                           const v1::Output& output, v1::OpResult* response);

}  // namespace sparsed::server
