// Whole-file reads and writes shared by the io readers/writers (internal).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparsed::io::internal {

// The bytes of `path`. NOT_FOUND when it does not exist; other failures map
// from errno and name the path.
absl::StatusOr<std::string> ReadFileBytes(const std::string& path);

// Replaces `path` with `bytes`.
absl::Status WriteFileBytes(const std::string& path, std::string_view bytes);

}  // namespace sparsed::io::internal
