// The cache key of one compiled kernel (internal to the kernels library).
#pragma once

#include <string>
#include <vector>

namespace sparsed::jit {

// Everything that determines the cubin NVRTC makes and whether this host may
// load it.
struct JitKeyParts {
  std::string source;
  std::vector<std::string> options;  // the complete NVRTC option list, in order
  std::string arch;                  // "sm_90"
  std::string nvrtc_version;         // "13.0"
  int driver_version = 0;            // cuDriverGetVersion, 0 where there is no driver
};

// Lower-case hex SHA-256 of the parts, each length-prefixed (and the option
// list prefixed by its count), after a format tag: no two different part
// lists hash the same bytes, e.g. options {"a b"} vs {"a", "b"}.
std::string JitKey(const JitKeyParts& parts);

}  // namespace sparsed::jit
