#include "server/layer_store.h"

#include <chrono>

#include "sparsed/status.h"

namespace sparsed::server {

absl::Status LayerStore::CheckNameFree(const std::string& tenant, const std::string& name) const {
  std::lock_guard lock(mu_);
  return index_.CheckNameFree(tenant, name);
}

absl::StatusOr<LayerPtr> LayerStore::Insert(const std::string& tenant, train::SparseLinear layer,
                                            std::string name) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(index_.CheckNameFree(tenant, name));
  auto entry =
      std::make_shared<StoredLayer>(index_.NewId(), std::move(name), tenant, std::move(layer));
  entry->created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  index_.Add(entry);
  return entry;
}

absl::StatusOr<LayerPtr> LayerStore::FindById(const std::string& tenant,
                                              const std::string& id) const {
  std::lock_guard lock(mu_);
  return index_.FindById(tenant, id);
}

absl::StatusOr<LayerPtr> LayerStore::FindByName(const std::string& tenant,
                                                const std::string& name) const {
  std::lock_guard lock(mu_);
  return index_.FindByName(tenant, name);
}

absl::StatusOr<LayerPtr> LayerStore::EraseById(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(mu_);
  return index_.EraseById(tenant, id);
}

std::vector<LayerPtr> LayerStore::List(const std::string& tenant) const {
  std::lock_guard lock(mu_);
  std::vector<LayerPtr> out = index_.InCreationOrder();
  std::erase_if(out, [&](const LayerPtr& l) { return l->tenant != tenant; });
  return out;
}

std::vector<LayerPtr> LayerStore::ListAll() const {
  std::lock_guard lock(mu_);
  return index_.InCreationOrder();
}

int64_t LayerStore::size() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace sparsed::server
