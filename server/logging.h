// spdlog set-up: level and plain or JSON lines on stderr.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace sparsed::server {

// level: trace|debug|info|warn|error|critical|off. json: one JSON object per
// line ({"ts":..., "level":..., "msg":...}) with the message escaped.
absl::Status SetUpLogging(const std::string& level, bool json);

// Escapes a string for inclusion inside JSON double quotes.
std::string JsonEscape(std::string_view text);

}  // namespace sparsed::server
