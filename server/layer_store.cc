#include "server/layer_store.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "sparsed/str_cat.h"

namespace sparsed::server {

std::string LayerStore::NewId() {
  // Random, as tensor ids: not guessable, not reused across restarts.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  while (true) {
    char buf[19];
    std::snprintf(buf, sizeof(buf), "l-%016llx", static_cast<unsigned long long>(rng()));
    if (!by_id_.contains(buf)) return buf;
  }
}

absl::Status LayerStore::CheckNameFree(const std::string& name) const {
  if (name.empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  if (auto it = id_by_name_.find(name); it != id_by_name_.end()) {
    return absl::AlreadyExistsError(
        StrCat("name '", name, "' is already used by layer ", it->second));
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerPtr> LayerStore::Insert(train::SparseLinear layer, std::string name) {
  std::lock_guard lock(mu_);
  if (!name.empty()) {
    if (auto it = id_by_name_.find(name); it != id_by_name_.end()) {
      return absl::AlreadyExistsError(
          StrCat("name '", name, "' is already used by layer ", it->second));
    }
  }
  auto entry = std::make_shared<StoredLayer>(NewId(), std::move(name), std::move(layer));
  entry->created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  if (!entry->name.empty()) id_by_name_[entry->name] = entry->id;
  const uint64_t seq = next_seq_++;
  id_by_seq_[seq] = entry->id;
  seq_by_id_[entry->id] = seq;
  by_id_[entry->id] = entry;
  return entry;
}

absl::StatusOr<LayerPtr> LayerStore::FindById(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return absl::NotFoundError(StrCat("no layer with id '", id, "'"));
  return it->second;
}

absl::StatusOr<LayerPtr> LayerStore::FindByName(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = id_by_name_.find(name);
  if (it == id_by_name_.end()) return absl::NotFoundError(StrCat("no layer named '", name, "'"));
  return by_id_.at(it->second);
}

absl::StatusOr<LayerPtr> LayerStore::EraseById(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return absl::NotFoundError(StrCat("no layer with id '", id, "'"));
  LayerPtr entry = it->second;
  by_id_.erase(it);
  if (!entry->name.empty()) id_by_name_.erase(entry->name);
  id_by_seq_.erase(seq_by_id_.at(id));
  seq_by_id_.erase(id);
  return entry;
}

std::vector<LayerPtr> LayerStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<LayerPtr> out;
  out.reserve(id_by_seq_.size());
  for (const auto& [seq, id] : id_by_seq_) out.push_back(by_id_.at(id));
  return out;
}

int64_t LayerStore::size() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(by_id_.size());
}

}  // namespace sparsed::server
