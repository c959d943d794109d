// Per-format content checks behind ValidateTensor (validate.h states the
// rules). Each assumes the description and component sizes are checked.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "sparsed/tensor.h"

namespace sparsed::format {

absl::Status CheckBsrContent(const Tensor& t, std::string_view field);
absl::Status CheckNmContent(const Tensor& t, std::string_view field);

}  // namespace sparsed::format
