#include "server/tensor_store.h"

#include <chrono>
#include <unordered_map>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A TTL counts from the insert: the same clock reading as created_unix_ms.
void StartLifetime(StoredTensor& t) {
  if (t.lifetime.ttl_ms > 0) t.lifetime.expires_unix_ms = t.created_unix_ms + t.lifetime.ttl_ms;
}

}  // namespace

void TensorStore::SetTenantLimits(int64_t max_tensors, int64_t max_bytes, TenantQuotas* refusals) {
  std::lock_guard lock(mu_);
  max_tensors_ = max_tensors;
  max_bytes_ = max_bytes;
  refusals_ = refusals;
}

absl::Status TensorStore::CheckRoom(const std::string& tenant, int64_t bytes) const {
  std::lock_guard lock(mu_);
  return CheckRoomLocked(tenant, 1, bytes);
}

absl::Status TensorStore::CheckRoomLocked(const std::string& tenant, int64_t tensors,
                                          int64_t bytes) const {
  if (tenant.empty()) return absl::OkStatus();
  const auto it = held_.find(tenant);
  const auto [count, used] = it == held_.end() ? std::pair<int64_t, int64_t>{0, 0} : it->second;
  const char* quota = nullptr;
  double limit = 0;
  std::string detail;
  if (max_tensors_ > 0 && count + tensors > max_tensors_) {
    quota = "tenant_max_tensors";
    limit = static_cast<double>(max_tensors_);
    detail = StrCat("it holds ", count, " tensors and would hold ", count + tensors);
  } else if (max_bytes_ > 0 && used + bytes > max_bytes_) {
    quota = "tenant_max_bytes";
    limit = static_cast<double>(max_bytes_);
    detail = StrCat("it holds ", used, " bytes of tensors and this needs ", bytes, " more");
  }
  if (quota == nullptr) return absl::OkStatus();
  if (refusals_ != nullptr) refusals_->CountRefusal(tenant, quota);
  return QuotaExceeded(tenant, quota, limit, detail);
}

std::map<std::string, std::pair<int64_t, int64_t>> TensorStore::TenantUsage() const {
  std::lock_guard lock(mu_);
  return held_;
}

void TensorStore::Account(const StoredTensor& t, int sign) {
  if (!t.lifetime.session_id.empty() || t.lifetime.expires_unix_ms != 0) mortal_ += sign;
  if (t.tenant.empty()) return;
  auto& [count, bytes] = held_[t.tenant];
  count += sign;
  bytes += sign * t.tensor.bytes();
  if (count == 0) held_.erase(t.tenant);
}

absl::Status TensorStore::CheckNameFree(const std::string& tenant, const std::string& name) const {
  std::lock_guard lock(mu_);
  return index_.CheckNameFree(tenant, name);
}

absl::StatusOr<TensorPtr> TensorStore::Insert(const std::string& tenant, Tensor tensor,
                                              std::string name,
                                              std::map<std::string, std::string> labels,
                                              Lifetime lifetime) {
  auto entry = std::make_shared<StoredTensor>();
  entry->lifetime = std::move(lifetime);
  entry->tensor = std::move(tensor);
  entry->name = std::move(name);
  entry->tenant = tenant;
  entry->labels = std::move(labels);
  entry->created_unix_ms = NowUnixMs();
  StartLifetime(*entry);
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(index_.CheckNameFree(entry->tenant, entry->name));
  RETURN_IF_ERROR(CheckRoomLocked(entry->tenant, 1, entry->tensor.bytes()));
  entry->id = index_.NewId();
  Account(*entry, +1);
  index_.Add(entry);
  return TensorPtr(std::move(entry));
}

absl::StatusOr<std::vector<TensorPtr>> TensorStore::InsertAll(std::vector<NewTensor> tensors) {
  const int64_t now = NowUnixMs();
  std::lock_guard lock(mu_);
  std::map<std::pair<std::string, std::string>, size_t> batch_names;  // (tenant, name)
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::string& name = tensors[i].name;
    if (name.empty()) continue;
    RETURN_IF_ERROR(index_.CheckNameFree(tensors[i].tenant, name));
    if (auto [it, fresh] = batch_names.emplace(std::pair(tensors[i].tenant, name), i); !fresh) {
      return absl::AlreadyExistsError(StrCat("name '", name, "' is given to tensors ", it->second,
                                             " and ", i, " of the same batch"));
    }
  }
  std::map<std::string, std::pair<int64_t, int64_t>> per_tenant;  // (tensors, bytes)
  for (const NewTensor& t : tensors) {
    per_tenant[t.tenant].first += 1;
    per_tenant[t.tenant].second += t.tensor.bytes();
  }
  for (const auto& [tenant, need] : per_tenant) {
    RETURN_IF_ERROR(CheckRoomLocked(tenant, need.first, need.second));
  }
  std::vector<TensorPtr> out;
  out.reserve(tensors.size());
  for (NewTensor& t : tensors) {
    auto entry = std::make_shared<StoredTensor>();
    entry->tensor = std::move(t.tensor);
    entry->name = std::move(t.name);
    entry->labels = std::move(t.labels);
    entry->tenant = std::move(t.tenant);
    entry->lifetime = std::move(t.lifetime);
    entry->created_unix_ms = now;
    StartLifetime(*entry);
    entry->id = index_.NewId();
    Account(*entry, +1);
    index_.Add(entry);
    out.push_back(std::move(entry));
  }
  return out;
}

absl::StatusOr<TensorPtr> TensorStore::FindById(const std::string& tenant,
                                                const std::string& id) const {
  std::lock_guard lock(mu_);
  return index_.FindById(tenant, id);
}

absl::StatusOr<TensorPtr> TensorStore::FindByName(const std::string& tenant,
                                                  const std::string& name) const {
  std::lock_guard lock(mu_);
  return index_.FindByName(tenant, name);
}

absl::StatusOr<TensorPtr> TensorStore::EraseById(const std::string& tenant, const std::string& id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(TensorPtr erased, index_.EraseById(tenant, id));
  Account(*erased, -1);
  return erased;
}

std::vector<TensorStore::Released> TensorStore::ReleaseEnded(
    int64_t now_unix_ms, const std::function<bool(const std::string&)>& session_open) {
  std::lock_guard lock(mu_);
  std::vector<Released> out;
  if (mortal_ == 0) return out;
  for (const TensorPtr& t : index_.InCreationOrder()) {
    const Lifetime& life = t->lifetime;
    const char* reason = nullptr;
    if (life.expires_unix_ms != 0 && life.expires_unix_ms <= now_unix_ms) {
      reason = "ttl";
    } else if (!life.session_id.empty() && !session_open(life.session_id)) {
      reason = "session";
    }
    if (reason == nullptr) continue;
    absl::StatusOr<TensorPtr> erased = index_.EraseById(t->tenant, t->id);
    if (!erased.ok()) continue;  // cannot happen: found under the same lock
    Account(**erased, -1);
    out.push_back({*std::move(erased), reason});
  }
  return out;
}

int64_t TensorStore::mortal() const {
  std::lock_guard lock(mu_);
  return mortal_;
}

std::vector<TensorPtr> TensorStore::List(const std::string& tenant,
                                         const std::string& name_prefix) const {
  std::lock_guard lock(mu_);
  std::vector<TensorPtr> out = index_.InCreationOrder();
  std::erase_if(out, [&](const TensorPtr& t) {
    return t->tenant != tenant || !t->name.starts_with(name_prefix);
  });
  return out;
}

std::vector<TensorPtr> TensorStore::ListAll() const {
  std::lock_guard lock(mu_);
  return index_.InCreationOrder();
}

int64_t TensorStore::size() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

std::vector<HeldUsage> TensorStore::Usage() const { return UsageOf(nullptr); }

std::vector<HeldUsage> TensorStore::Usage(const std::string& tenant) const {
  return UsageOf(&tenant);
}

std::vector<HeldUsage> TensorStore::UsageOf(const std::string* tenant) const {
  std::lock_guard lock(mu_);
  std::map<std::string, HeldUsage> per;
  for (const auto& [id, t] : index_.by_id()) {
    if (tenant != nullptr && t->tenant != *tenant) continue;
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
