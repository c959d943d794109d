// CPU training primitives (internal to the CPU backend; see train_ops.h for
// what each computes). Each validates with its Check* function and refuses
// tensors that are not on the host before allocating anything. Products and
// sums accumulate in double and optimizer formulas run in double; results are
// stored as f32. `threads` is the backend's thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"

namespace sparsed::cpu {

absl::StatusOr<Tensor> Sddmm(const SddmmArgs& args, int threads);
absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& args, int threads);
absl::Status OptimizerUpdate(const OptimizerUpdateArgs& args, int threads);
absl::StatusOr<TopKResult> TopK(const Tensor& scores, int64_t k, TopKOrder order);
// y = a·x + b·y; with b == 0 y is not read (BLAS convention: NaN or
// uninitialised memory in y does not leak into the result).
absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y, int threads);
absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y, int threads);
absl::StatusOr<Tensor> ColumnSums(const Tensor& x, int threads);
absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin, int threads);
absl::StatusOr<Tensor> GatherOrZero(const Tensor& src, const std::vector<int64_t>& index);

}  // namespace sparsed::cpu
