// The bookkeeping shared by the daemon's stores of held objects (tensors,
// layers): random handles, unique optional names, creation order. Not
// thread-safe: each store guards its index with its own mutex.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

// Ptr is a shared_ptr to an entry with `id`, `name` and `tenant` string
// members. Names are unique per tenant; an entry of another tenant is
// reported exactly like one that does not exist (NOT_FOUND), so that tenants
// learn nothing of each other's handles or names. Tenant "" is the one shared
// namespace of a daemon without authentication.
template <class Ptr>
class HandleIndex {
 public:
  // kind: "tensor", "layer" (for messages); id_prefix: "t-", "l-".
  HandleIndex(std::string_view kind, std::string_view id_prefix)
      : kind_(kind), id_prefix_(id_prefix) {}

  // A fresh id: the prefix and 16 random hex digits, so that handles are
  // neither guessable nor reused across restarts.
  std::string NewId() const {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    while (true) {
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(rng()));
      std::string id = id_prefix_ + hex;
      if (!by_id_.contains(id)) return id;
    }
  }

  // ALREADY_EXISTS if a non-empty `name` is taken in `tenant`.
  absl::Status CheckNameFree(const std::string& tenant, const std::string& name) const {
    if (name.empty()) return absl::OkStatus();
    if (auto it = id_by_name_.find(NameKey(tenant, name)); it != id_by_name_.end()) {
      return absl::AlreadyExistsError(
          StrCat("name '", name, "' is already used by ", kind_, " ", it->second));
    }
    return absl::OkStatus();
  }

  // Indexes `entry`, whose id comes from NewId and whose name is free.
  void Add(Ptr entry) {
    if (!entry->name.empty()) id_by_name_[NameKey(entry->tenant, entry->name)] = entry->id;
    const uint64_t seq = next_seq_++;
    id_by_seq_[seq] = entry->id;
    seq_by_id_[entry->id] = seq;
    by_id_[entry->id] = std::move(entry);
  }

  // NOT_FOUND naming the id or name (also for another tenant's entry).
  absl::StatusOr<Ptr> FindById(const std::string& tenant, const std::string& id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end() || it->second->tenant != tenant) {
      return absl::NotFoundError(StrCat("no ", kind_, " with id '", id, "'"));
    }
    return it->second;
  }
  absl::StatusOr<Ptr> FindByName(const std::string& tenant, const std::string& name) const {
    auto it = id_by_name_.find(NameKey(tenant, name));
    if (it == id_by_name_.end()) {
      return absl::NotFoundError(StrCat("no ", kind_, " named '", name, "'"));
    }
    return by_id_.at(it->second);
  }

  // Removes and returns the entry (NOT_FOUND as FindById).
  absl::StatusOr<Ptr> EraseById(const std::string& tenant, const std::string& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end() || it->second->tenant != tenant) {
      return absl::NotFoundError(StrCat("no ", kind_, " with id '", id, "'"));
    }
    Ptr entry = std::move(it->second);
    by_id_.erase(it);
    if (!entry->name.empty()) id_by_name_.erase(NameKey(entry->tenant, entry->name));
    id_by_seq_.erase(seq_by_id_.at(id));
    seq_by_id_.erase(id);
    return entry;
  }

  // Every entry, in creation order.
  std::vector<Ptr> InCreationOrder() const {
    std::vector<Ptr> out;
    out.reserve(id_by_seq_.size());
    for (const auto& [seq, id] : id_by_seq_) out.push_back(by_id_.at(id));
    return out;
  }
  const std::unordered_map<std::string, Ptr>& by_id() const { return by_id_; }
  int64_t size() const { return static_cast<int64_t>(by_id_.size()); }

 private:
  // Tenant names never contain NUL (server/auth.h), so the key is unambiguous.
  static std::string NameKey(const std::string& tenant, const std::string& name) {
    return StrCat(tenant, std::string_view("\0", 1), name);
  }

  std::string kind_;
  std::string id_prefix_;
  std::unordered_map<std::string, Ptr> by_id_;
  std::unordered_map<std::string, std::string> id_by_name_;  // NameKey -> id
  uint64_t next_seq_ = 0;
  std::map<uint64_t, std::string> id_by_seq_;  // creation order
  std::unordered_map<std::string, uint64_t> seq_by_id_;
};

}  // namespace sparsed::server
