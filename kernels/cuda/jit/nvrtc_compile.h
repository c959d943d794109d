// NVRTC compilation of one generated kernel to a cubin (internal to the
// kernels library). Needs no GPU and no driver.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "jit/jit_cache.h"

namespace sparsed::cuda::jit {

// "13.0": the NVRTC this binary uses.
std::string NvrtcVersion();

// The options NVRTC gets for `source` on `arch`: the generator's, then
// "-std=c++17" unless they choose a standard, then
// "--gpu-architecture=<arch>" (a real architecture, so NVRTC makes a cubin).
// INVALID_ARGUMENT if the generator's options choose an architecture.
absl::StatusOr<std::vector<std::string>> NvrtcOptions(const KernelSource& source,
                                                      std::string_view arch);

// Compiles with exactly `options`; the cubin's bytes. A compile error is
// INTERNAL "compiling <what> failed: <NVRTC's log>".
absl::StatusOr<std::string> CompileToCubin(const KernelSource& source,
                                           const std::vector<std::string>& options,
                                           std::string_view what);

}  // namespace sparsed::cuda::jit
