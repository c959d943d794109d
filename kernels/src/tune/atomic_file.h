// Crash-safe whole-file replacement (internal to the kernels library).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sparsed::tune::internal {

// Replaces `path` with `bytes` so that readers (and a crash at any moment)
// see either the old or the new file, never a partial one: writes
// `path.tmp.<pid>` in the same directory, fsyncs it, renames it over `path`
// and fsyncs the directory. Creates the parent directory if missing. Errors
// name the path and carry the errno text (code mapped from errno).
absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace sparsed::tune::internal
