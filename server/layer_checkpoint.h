// Training layers in checkpoints. A layer is saved as ordinary checkpoint
// entries named "layer/<layer name, or id without one>/<role>", role one of
// "weight" (CSR), "bias" (dense) and the optimizer state arrays
// ("weight.state1", "bias.state2", ...), each labelled
//   sparsed.layer       the layer's id when saved (groups the entries)
//   sparsed.layer.name  its name ("" without one)
//   sparsed.layer.role  the role
// and the weight entry also with
//   sparsed.layer.config  LayerConfigToJson
//   sparsed.layer.step    the optimizer steps taken
// Restore takes these entries out of the checkpoint and rebuilds the layers
// from them, rather than adding them as tensors.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/layer_store.h"
#include "sparsed/checkpoint.h"
#include "sparsed/training.h"

namespace sparsed::server {

inline constexpr char kLayerLabel[] = "sparsed.layer";
inline constexpr char kLayerNameLabel[] = "sparsed.layer.name";
inline constexpr char kLayerRoleLabel[] = "sparsed.layer.role";
inline constexpr char kLayerConfigLabel[] = "sparsed.layer.config";
inline constexpr char kLayerStepLabel[] = "sparsed.layer.step";

// A layer's state copied to the host (under its mutex), ready to be saved.
struct ExportedLayer {
  std::string id;
  std::string name;
  train::LayerState state;
};

absl::StatusOr<ExportedLayer> ExportLayer(StoredLayer& layer);

// Appends the entries of `layer` (pointing at its tensors: keep it alive and
// unchanged until the save is done).
void AppendLayerEntries(const ExportedLayer& layer, std::vector<checkpoint::EntryRef>* refs);

// A layer as read from a checkpoint.
struct SavedLayer {
  std::string saved_id;
  std::string name;
  train::LayerState state;  // tensors on the host
};

// Moves the layer entries (those labelled sparsed.layer) out of `entries`
// and rebuilds each layer's state, in the order the layers first appear.
// INVALID_ARGUMENT naming the checkpoint `source`, the layer and the entry
// for a missing or duplicate role, an unknown role, a bad config or step.
absl::StatusOr<std::vector<SavedLayer>> TakeLayers(std::vector<checkpoint::Entry>& entries,
                                                   const std::string& source);

}  // namespace sparsed::server
