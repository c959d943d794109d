// The daemon's training layers: id -> SparseLinear with an optional unique
// name. Each layer has its own mutex: calls on one layer run one at a time
// (SparseLinear is not thread-safe, and Forward/Backward/Step change its
// state), calls on different layers run concurrently. Callers hold a
// shared_ptr, so a layer deleted while a call uses it lives until that call
// ends.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/handle_index.h"
#include "sparsed/training.h"

namespace sparsed::server {

struct StoredLayer {
  StoredLayer(std::string id, std::string name, std::string tenant, train::SparseLinear layer)
      : id(std::move(id)),
        name(std::move(name)),
        tenant(std::move(tenant)),
        layer(std::move(layer)) {}

  const std::string id;      // "l-" + 16 hex digits
  const std::string name;    // optional, unique among the tenant's layers
  const std::string tenant;  // owner ("" without authentication); see handle_index.h
  int64_t created_unix_ms = 0;
  std::mutex mu;              // held for every use of `layer`
  train::SparseLinear layer;  // guarded by mu
};

using LayerPtr = std::shared_ptr<StoredLayer>;

// Lookups take the caller's tenant, as TensorStore's do.
class LayerStore {
 public:
  // Adds a layer of `tenant` under a fresh id. ALREADY_EXISTS if `name` is
  // taken in that tenant.
  absl::StatusOr<LayerPtr> Insert(const std::string& tenant, train::SparseLinear layer,
                                  std::string name);
  // ALREADY_EXISTS if a non-empty `name` is taken now (Insert checks again).
  absl::Status CheckNameFree(const std::string& tenant, const std::string& name) const;

  // NOT_FOUND naming the id or name.
  absl::StatusOr<LayerPtr> FindById(const std::string& tenant, const std::string& id) const;
  absl::StatusOr<LayerPtr> FindByName(const std::string& tenant, const std::string& name) const;

  // Removes and returns the entry (freed when its last user lets go).
  absl::StatusOr<LayerPtr> EraseById(const std::string& tenant, const std::string& id);

  // The tenant's layers, in creation order.
  std::vector<LayerPtr> List(const std::string& tenant) const;
  // Every tenant's layers, in creation order (the daemon's own checkpoints).
  std::vector<LayerPtr> ListAll() const;
  int64_t size() const;

 private:
  mutable std::mutex mu_;
  HandleIndex<LayerPtr> index_{"layer", "l-"};  // guarded by mu_
};

}  // namespace sparsed::server
