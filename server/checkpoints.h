// Saving the daemon's tensors and training layers to checkpoints and
// restoring them (layers: server/layer_checkpoint.h), shared by the
// Checkpoints service, --restore, the periodic and the exit checkpoint.
// Files: <data_dir>/checkpoints/NAME.safetensors (see sparsed/checkpoint.h).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/service_context.h"
#include "server/tensor_store.h"
#include "sparsed/checkpoint.h"

namespace sparsed::server {

std::string CheckpointDir(const Config& config);
// INVALID_ARGUMENT (naming `field`) for a bad name.
absl::StatusOr<std::string> CheckpointPath(const Config& config, const std::string& name,
                                           std::string_view field = "name");

struct SavedCheckpoint {
  int64_t tensors = 0;
  int64_t layers = 0;
  int64_t bytes = 0;
};

// Writes `tensors` (each once, in the order given) to checkpoint `name`.
// Saves are serialised by ctx.checkpoint_mu.
absl::StatusOr<SavedCheckpoint> SaveTensors(ServiceContext& ctx, const std::string& name,
                                            const std::vector<TensorPtr>& tensors);
// Every held tensor, in creation order, then every layer (each exported
// under its own mutex, so each is saved between two of its calls).
absl::StatusOr<SavedCheckpoint> SaveAll(ServiceContext& ctx, const std::string& name);

struct RestoredTensor {
  std::string saved_id;  // its id in the checkpoint
  TensorPtr tensor;      // as now held (new id)
};

struct RestoredLayer {
  std::string saved_id;  // its id when saved
  LayerPtr layer;        // as now held (new id)
};

struct RestoredCheckpoint {
  std::vector<RestoredTensor> tensors;
  std::vector<RestoredLayer> layers;
};

// Loads and verifies checkpoint `name`, then inserts all its tensors under new
// ids on the backend's device and recreates its layers there (new ids), or
// nothing: ALREADY_EXISTS naming the tensor or layer when a name is taken
// (checked up front, and again on insertion, where a clash undoes the
// insertions made so far).
absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(ServiceContext& ctx, const std::string& name);

// Removes checkpoint `name`; NOT_FOUND when there is none.
absl::Status DeleteCheckpoint(ServiceContext& ctx, const std::string& name);

// Checkpoints in the data directory (none when the directory does not exist).
absl::StatusOr<std::vector<checkpoint::Summary>> ListCheckpoints(const ServiceContext& ctx);

}  // namespace sparsed::server
