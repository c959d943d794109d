// Checks of the Spmm, Convert, Prune and Inspect request fields against the source
// tensor's description, turning them into kernel options. Errors are
// INVALID_ARGUMENT naming the request field and value ("out_dtype", "to", "block", "n",
// "nm.m", "magnitude.sparsity", "spy_height", ...), so a client learns which
// part of its request is wrong before any kernel runs; what only the data can
// tell (e.g. a group with more than n non-zeros) is left to the kernels.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "sparsed/convert.h"
#include "sparsed/prune.h"
#include "sparsed/tensor.h"
#include "sparsed/v1/compute.pb.h"
#include "sparsed/v1/tensors.pb.h"

namespace sparsed::server {

// The result dtype of an Spmm request: out_dtype when set (F32, F16 or BF16,
// else INVALID_ARGUMENT naming out_dtype and the value); unset: `a` when both
// operands have the same 16-bit dtype, else f32.
absl::StatusOr<DType> SpmmOutDType(const v1::SpmmRequest& req, DType a, DType b);

// Largest spy grid side a client may ask for.
inline constexpr int32_t kMaxSpyCells = 1024;

absl::StatusOr<ConvertOptions> ConvertOptionsFrom(const v1::ConvertRequest& req,
                                                  const TensorDesc& source);

absl::StatusOr<PruneOptions> PruneOptionsFrom(const v1::PruneRequest& req,
                                              const TensorDesc& source);

// spy_height and spy_width: both 0 (no grid) or both in [1, kMaxSpyCells].
absl::Status CheckSpyRequest(const v1::InspectRequest& req);

}  // namespace sparsed::server
