// Writing 8-bit grayscale PNG files (libpng's simplified API).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"

namespace sparsed::client::cli {

// Writes `pixels` (height rows of width bytes, 0 = black, 255 = white) to
// `path`. INVALID_ARGUMENT for an empty or mis-sized image; the OS or libpng
// error otherwise, naming the path.
absl::Status WriteGrayPng(const std::string& path, int64_t width, int64_t height,
                          std::span<const uint8_t> pixels);

}  // namespace sparsed::client::cli
