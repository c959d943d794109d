// Names and bookkeeping of run-time compiled (JIT) kernels, shared by the
// backends, the daemon's Admin API and sparsectl. No CUDA here: the compiler
// and loader live in kernels/cuda/jit/, the on-disk store in src/jit/.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sparsed {

// One specialisation of a kernel source template: which generator and its
// parameters (block shape, dtype, tile shape, epilogue, ...), all as text so
// that a spec travels through JSON, the API and the cache index unchanged.
struct KernelSpec {
  std::string kernel;                         // generator name, e.g. "bsr_spmm_tc"
  std::map<std::string, std::string> params;  // ordered: one canonical string
  // "kernel(k1=v1,k2=v2)" with keys in order; the identity of the spec.
  std::string ToString() const;
  bool operator==(const KernelSpec&) const = default;
};

// A list of specs as JSON: {"kernels": [{"kernel": NAME, "params": {K: V}}]}
// (parameter values may be JSON strings or numbers; numbers become their
// decimal text). INVALID_ARGUMENT naming the entry index and field.
absl::StatusOr<std::vector<KernelSpec>> ParseKernelSpecs(std::string_view json);
std::string KernelSpecsToJson(const std::vector<KernelSpec>& specs);

// One compiled kernel held by a cache.
struct KernelCacheEntry {
  std::string key;   // hex hash of (source, options, arch, NVRTC and driver versions)
  std::string spec;  // KernelSpec::ToString()
  std::string arch;  // "sm_90"
  int64_t bytes = 0;  // cubin size on disk
  int64_t last_used_unix_ms = 0;
};

struct KernelCacheStats {
  int64_t hits = 0;      // found compiled (memory or disk)
  int64_t misses = 0;    // had to compile
  int64_t compiles = 0;  // compilations that succeeded
  int64_t compile_errors = 0;
  int64_t entries = 0;
  int64_t bytes_on_disk = 0;
  int64_t max_bytes = 0;  // the size cap (0: none)
};

}  // namespace sparsed
