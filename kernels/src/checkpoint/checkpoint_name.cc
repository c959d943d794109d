#include <string_view>

#include "sparsed/checkpoint.h"
#include "sparsed/str_cat.h"

namespace sparsed::checkpoint {

absl::Status CheckName(std::string_view name, std::string_view field) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        StrCat(field, ": a checkpoint name has 1 to 128 characters, got ", name.size()));
  }
  if (name.front() == '.') {
    return absl::InvalidArgumentError(
        StrCat(field, ": a checkpoint name may not start with '.': '", name, "'"));
  }
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          StrCat(field, ": a checkpoint name has only [A-Za-z0-9._-], got '", name, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed::checkpoint
