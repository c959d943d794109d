#include "server/tensor_store.h"

#include <chrono>
#include <cstdio>
#include <random>

#include "sparsed/str_cat.h"

namespace sparsed::server {

std::string TensorStore::NewId() {
  // Random ids so that handles are not guessable or reused across restarts.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  while (true) {
    char buf[19];
    std::snprintf(buf, sizeof(buf), "t-%016llx", static_cast<unsigned long long>(rng()));
    if (!by_id_.contains(buf)) return buf;
  }
}

absl::Status TensorStore::CheckNameFree(const std::string& name) const {
  if (name.empty()) return absl::OkStatus();
  std::lock_guard lock(mu_);
  if (auto it = id_by_name_.find(name); it != id_by_name_.end()) {
    return absl::AlreadyExistsError(
        StrCat("name '", name, "' is already used by tensor ", it->second));
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorPtr> TensorStore::Insert(Tensor tensor, std::string name,
                                              std::map<std::string, std::string> labels) {
  auto entry = std::make_shared<StoredTensor>();
  entry->tensor = std::move(tensor);
  entry->name = std::move(name);
  entry->labels = std::move(labels);
  entry->created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  std::lock_guard lock(mu_);
  if (!entry->name.empty()) {
    if (auto it = id_by_name_.find(entry->name); it != id_by_name_.end()) {
      return absl::AlreadyExistsError(
          StrCat("name '", entry->name, "' is already used by tensor ", it->second));
    }
  }
  return AddLocked(std::move(entry));
}

TensorPtr TensorStore::AddLocked(std::shared_ptr<StoredTensor> entry) {
  entry->id = NewId();
  if (!entry->name.empty()) id_by_name_[entry->name] = entry->id;
  const uint64_t seq = next_seq_++;
  id_by_seq_[seq] = entry->id;
  seq_by_id_[entry->id] = seq;
  by_id_[entry->id] = entry;
  return entry;
}

absl::StatusOr<std::vector<TensorPtr>> TensorStore::InsertAll(std::vector<NewTensor> tensors) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::lock_guard lock(mu_);
  std::unordered_map<std::string, size_t> batch_names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& name = tensors[i].name;
    if (name.empty()) continue;
    if (auto it = id_by_name_.find(name); it != id_by_name_.end()) {
      return absl::AlreadyExistsError(
          StrCat("name '", name, "' is already used by tensor ", it->second));
    }
    if (auto [it, fresh] = batch_names.emplace(name, i); !fresh) {
      return absl::AlreadyExistsError(StrCat("name '", name, "' is given to tensors ", it->second,
                                             " and ", i, " of the same batch"));
    }
  }
  std::vector<TensorPtr> out;
  out.reserve(tensors.size());
  for (NewTensor& t : tensors) {
    auto entry = std::make_shared<StoredTensor>();
    entry->tensor = std::move(t.tensor);
    entry->name = std::move(t.name);
    entry->labels = std::move(t.labels);
    entry->created_unix_ms = now;
    out.push_back(AddLocked(std::move(entry)));
  }
  return out;
}

absl::StatusOr<TensorPtr> TensorStore::FindById(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return absl::NotFoundError(StrCat("no tensor with id '", id, "'"));
  return it->second;
}

absl::StatusOr<TensorPtr> TensorStore::FindByName(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = id_by_name_.find(name);
  if (it == id_by_name_.end()) {
    return absl::NotFoundError(StrCat("no tensor named '", name, "'"));
  }
  return by_id_.at(it->second);
}

absl::StatusOr<TensorPtr> TensorStore::EraseById(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return absl::NotFoundError(StrCat("no tensor with id '", id, "'"));
  TensorPtr entry = it->second;
  by_id_.erase(it);
  if (!entry->name.empty()) id_by_name_.erase(entry->name);
  id_by_seq_.erase(seq_by_id_.at(id));
  seq_by_id_.erase(id);
  return entry;
}

std::vector<TensorPtr> TensorStore::List(const std::string& name_prefix) const {
  std::lock_guard lock(mu_);
  std::vector<TensorPtr> out;
  for (const auto& [seq, id] : id_by_seq_) {
    const TensorPtr& t = by_id_.at(id);
    if (name_prefix.empty() || t->name.rfind(name_prefix, 0) == 0) out.push_back(t);
  }
  return out;
}

int64_t TensorStore::size() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(by_id_.size());
}

std::vector<HeldUsage> TensorStore::Usage() const {
  std::lock_guard lock(mu_);
  std::map<std::string, HeldUsage> per;
  for (const auto& [id, t] : by_id_) {
    HeldUsage& u = per[t->tensor.device().ToString()];
    u.tensors++;
    u.bytes += t->tensor.bytes();
  }
  std::vector<HeldUsage> out;
  for (auto& [dev, u] : per) {
    u.device = dev;
    out.push_back(u);
  }
  return out;
}

}  // namespace sparsed::server
