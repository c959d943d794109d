// Placeholder until the pruning modes land.
#include "sparsed/prune.h"

namespace sparsed {

absl::Status CheckPrune(const TensorDesc&, const PruneOptions&) {
  return absl::UnimplementedError("prune is not implemented yet");
}

absl::StatusOr<Tensor> Prune(const Tensor&, const PruneOptions&) {
  return absl::UnimplementedError("prune is not implemented yet");
}

}  // namespace sparsed
