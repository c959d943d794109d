// Saving the daemon's tensors and training layers to checkpoints and
// restoring them (layers: server/layer_checkpoint.h), shared by the
// Checkpoints service, --restore, the periodic and the exit checkpoint.
// Files: <data_dir>/checkpoints/NAME.safetensors (see sparsed/checkpoint.h)
// for tenant "" (no authentication), <data_dir>/checkpoints/tenants/TENANT/
// NAME.safetensors for each tenant: a tenant saves, restores, lists and
// deletes only its own. The daemon's own checkpoints (checkpoint_every,
// checkpoint_on_exit, --restore) cover every tenant: one file of that name per
// tenant, each written atomically.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/service_context.h"
#include "server/tensor_store.h"
#include "sparsed/checkpoint.h"

namespace sparsed::server {

// The top folder (tenant "").
std::string CheckpointDir(const Config& config);
// The folder of `tenant`'s checkpoints.
std::string CheckpointDir(const Config& config, const std::string& tenant);
// Tenants that have a checkpoint folder, sorted.
std::vector<std::string> TenantsWithCheckpoints(const Config& config);
// INVALID_ARGUMENT (naming `field`) for a bad name.
absl::StatusOr<std::string> CheckpointPath(const Config& config, const std::string& tenant,
                                           const std::string& name,
                                           std::string_view field = "name");

struct SavedCheckpoint {
  int64_t tensors = 0;
  int64_t layers = 0;
  int64_t bytes = 0;
};

// Writes `tensors` (each once, in the order given; all of `tenant`) to
// `tenant`'s checkpoint `name`. Saves are serialised by ctx.checkpoint_mu.
absl::StatusOr<SavedCheckpoint> SaveTensors(ServiceContext& ctx, const std::string& tenant,
                                            const std::string& name,
                                            const std::vector<TensorPtr>& tensors);
// Every tensor of `tenant`, in creation order, then each of its layers (each
// exported under its own mutex, so each is saved between two of its calls).
absl::StatusOr<SavedCheckpoint> SaveAll(ServiceContext& ctx, const std::string& tenant,
                                        const std::string& name);
// The daemon's checkpoint: SaveAll for every tenant that holds something or
// already has a checkpoint `name` (so that a tenant that deleted everything
// gets an empty one instead of keeping stale data). Totals over tenants; the
// first failure is returned after trying every tenant.
absl::StatusOr<SavedCheckpoint> SaveEveryTenant(ServiceContext& ctx, const std::string& name);

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
// Everything goes to `tenant`.
absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(ServiceContext& ctx, const std::string& tenant,
                                                     const std::string& name);
// --restore: each tenant's checkpoint `name` into that tenant. NOT_FOUND when
// no tenant has one; otherwise the first failure (the daemon does not start).
absl::StatusOr<RestoredCheckpoint> RestoreEveryTenant(ServiceContext& ctx, const std::string& name);

// Removes `tenant`'s checkpoint `name`; NOT_FOUND when there is none.
absl::Status DeleteCheckpoint(ServiceContext& ctx, const std::string& tenant,
                              const std::string& name);

// `tenant`'s checkpoints (none when its folder does not exist).
absl::StatusOr<std::vector<checkpoint::Summary>> ListCheckpoints(const ServiceContext& ctx,
                                                                 const std::string& tenant);

}  // namespace sparsed::server
