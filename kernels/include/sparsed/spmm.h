// Sparse-dense matrix multiply with a fused epilogue:
//   C = epilogue(alpha * op(A) * op(B) + beta * C_in)
//   epilogue(x) = min(relu?(x + bias[col]), clamp_max)     (each step optional)
// Exactly one of A, B is sparse (COO, CSR, CSC, BSR or N:M); the other is
// dense row-major. op is identity or transpose. The result is dense row-major
// f32 unless out_dtype says otherwise. The CPU backend computes every sparse format (through CSR; BSR and N:M
// zero fill is skipped) with float64 accumulation; a backend that does not
// support a format returns UNIMPLEMENTED.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

struct Epilogue {
  const Tensor* bias = nullptr;  // dense, one value per output column
  bool relu = false;
  std::optional<float> clamp_max;
};

struct SpmmArgs {
  const Tensor* a = nullptr;
  const Tensor* b = nullptr;
  bool transpose_a = false;
  bool transpose_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;
  const Tensor* c = nullptr;  // dense f32 [m, n]; required when beta != 0
  Epilogue epilogue;
  // Dtype of the result: f32, f16 or bf16 (rounded to nearest even from the
  // f32 value after the epilogue). The API defaults it to the input dtype
  // when both operands are the same 16-bit dtype, else f32.
  DType out_dtype = DType::kF32;
};

// Checks operands (presence, formats, dtypes, shapes, bias length, C shape,
// finite alpha/beta/clamp) and returns the output shape {m, n}. Errors are
// INVALID_ARGUMENT naming the field: "a", "b", "c", "epilogue.bias", ...
absl::StatusOr<std::vector<int64_t>> CheckSpmm(const SpmmArgs& args);

}  // namespace sparsed
