// The JIT cache's index file, <dir>/index.json (internal to the kernels
// library): {"version": 1, "entries": [{"key", "spec", "arch", "bytes",
// "last_used_unix_ms"}]}. It only carries what the cubin files cannot (the
// last uses); a lost or damaged index is rebuilt from the files.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/kernel_cache.h"

namespace sparsed::jit {

std::string KernelIndexToJson(const std::vector<KernelCacheEntry>& entries);
// INVALID_ARGUMENT naming the entry and field when the text is not an index.
absl::StatusOr<std::vector<KernelCacheEntry>> ParseKernelIndex(const std::string& text);

}  // namespace sparsed::jit
