// Conversions, transposes and pruning of tensors on the device (the CUDA
// backend's Convert / Transpose / Prune). Work is queued on ctx.stream; the
// result tensor is complete once the stream is synchronised. Semantics are
// those of convert.h and prune.h, bit for bit.
#pragma once

#include "absl/status/statusor.h"
#include "exec_context.h"
#include "sparsed/convert.h"
#include "sparsed/prune.h"
#include "sparsed/tensor.h"

namespace sparsed::cuda {

absl::StatusOr<Tensor> DeviceConvert(const Tensor& t, Format to, const ConvertOptions& options,
                                     const ExecContext& ctx, Workspace& ws);
absl::StatusOr<Tensor> DeviceTranspose(const Tensor& t, const ExecContext& ctx, Workspace& ws);
absl::StatusOr<Tensor> DevicePrune(const Tensor& t, const PruneOptions& options,
                                   const ExecContext& ctx, Workspace& ws);

}  // namespace sparsed::cuda
