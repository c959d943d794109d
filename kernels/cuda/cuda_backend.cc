#include "sparsed/backend.h"

namespace sparsed {
absl::StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(const CudaBackendOptions&) {
  return absl::FailedPreconditionError("the CUDA backend is being built");
}
}  // namespace sparsed
