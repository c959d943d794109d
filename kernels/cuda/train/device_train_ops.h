// The training primitives of train_ops.h on the device (the CUDA backend's
// Sddmm, DenseMatmul, ...). Arguments must have passed their Check* function
// and lie on ctx's device; work is queued on ctx.stream and results are
// complete once the stream is synchronised (TopK synchronises itself to read
// its answer back). With `poison`, new outputs are filled with NaN first, so
// that a kernel leaving an element unwritten shows in tests.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "exec_context.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"

namespace sparsed::cuda {

absl::StatusOr<Tensor> DeviceSddmm(const SddmmArgs& args, bool poison, const ExecContext& ctx,
                                   Workspace& ws);
absl::StatusOr<Tensor> DeviceDenseMatmul(const DenseMatmulArgs& args, bool poison,
                                         const ExecContext& ctx);
absl::Status DeviceOptimizerUpdate(const OptimizerUpdateArgs& args, const ExecContext& ctx);
absl::StatusOr<TopKResult> DeviceTopK(const Tensor& scores, int64_t k, TopKOrder order,
                                      const ExecContext& ctx, Workspace& ws);
absl::Status DeviceAxpby(float a, const Tensor& x, float b, Tensor& y, const ExecContext& ctx);
absl::StatusOr<Tensor> DeviceReluBackward(const Tensor& dy, const Tensor& y, bool poison,
                                          const ExecContext& ctx);
absl::StatusOr<Tensor> DeviceColumnSums(const Tensor& x, bool poison, const ExecContext& ctx,
                                        Workspace& ws);
absl::Status DeviceGrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin,
                                const ExecContext& ctx, Workspace& ws);
absl::StatusOr<Tensor> DeviceGatherOrZero(const Tensor& src, const std::vector<int64_t>& index,
                                          bool poison, const ExecContext& ctx, Workspace& ws);

}  // namespace sparsed::cuda
