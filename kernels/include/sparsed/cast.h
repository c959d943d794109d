// Value-type casts of host tensors (f32 <-> f16 <-> bf16). Index arrays are
// copied unchanged. Rounding is to nearest even.
#pragma once

#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

// A host copy of `t` whose values have dtype `to` (a plain copy when equal).
absl::StatusOr<Tensor> CastValues(const Tensor& t, DType to);

// Runs `op` on an f32 view of `t`: directly when `t` is f32, otherwise on an
// upcast copy, with the tensor result cast back to t's dtype. Lets the host
// algorithms written for f32 serve 16-bit tensors too.
template <class Op>
absl::StatusOr<Tensor> ViaF32(const Tensor& t, Op&& op) {
  if (t.desc().dtype == DType::kF32) return op(t);
  const DType original = t.desc().dtype;
  absl::StatusOr<Tensor> up = CastValues(t, DType::kF32);
  if (!up.ok()) return up.status();
  absl::StatusOr<Tensor> r = op(*up);
  if (!r.ok()) return r.status();
  return CastValues(*r, original);
}

}  // namespace sparsed
