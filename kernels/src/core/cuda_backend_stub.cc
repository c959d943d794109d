// Without the CUDA part compiled in there is no CUDA backend.
#ifndef SPARSED_HAVE_CUDA
#include "sparsed/backend.h"

namespace sparsed {
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions&) {
  return absl::FailedPreconditionError("this build of sparsed has no CUDA support");
}
std::vector<std::string> CudaSpmmVariantNames(Format) { return {}; }
std::vector<std::string> CudaDenseGatherConfigNames() { return {}; }
}  // namespace sparsed
#endif
