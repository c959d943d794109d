// Placeholder until inspection lands.
#include "sparsed/inspect.h"

namespace sparsed {

absl::StatusOr<TensorStats> Inspect(const Tensor&) {
  return absl::UnimplementedError("inspect is not implemented yet");
}

absl::StatusOr<SpyGrid> Spy(const Tensor&, int64_t, int64_t) {
  return absl::UnimplementedError("spy is not implemented yet");
}

}  // namespace sparsed
