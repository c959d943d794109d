// NumPy .npy (format versions 1.0, 2.0, 3.0) reading and writing.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed::io {

// Reads a 1-D or 2-D array of '<f2', '<f4', '<f8', '<i4', '<i8' (and
// '|b1'/'|u1'), C or Fortran order, into a dense row-major f32 tensor — or,
// with `keep_f16`, an f16 tensor for '<f2' input (exact either way). Values
// that f32 cannot hold exactly are rounded as a static_cast would. Errors
// name `source`.
absl::StatusOr<Tensor> ParseNpy(std::string_view bytes, std::string_view source = "<input>",
                                bool keep_f16 = false);
absl::StatusOr<Tensor> ReadNpy(const std::string& path, bool keep_f16 = false);

// Writes a dense f32 tensor as '<f4', an f16 one as '<f2', C order (version
// 1.0). NumPy has no bfloat16: a bf16 tensor is INVALID_ARGUMENT (widen it
// to f32 first, which is exact).
absl::Status WriteNpy(const Tensor& t, const std::string& path);
absl::StatusOr<std::string> EncodeNpy(const Tensor& t);

}  // namespace sparsed::io
