// The daemon's tensors: id -> tensor with name, labels and creation time.
// Stored tensors are immutable; readers hold a shared_ptr, so a tensor deleted
// while an op reads it stays alive until that op finishes, then is freed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/handle_index.h"
#include "sparsed/tensor.h"

namespace sparsed::server {

struct StoredTensor {
  std::string id;    // "t-" + 16 hex digits
  std::string name;  // optional, unique
  std::map<std::string, std::string> labels;
  int64_t created_unix_ms = 0;
  Tensor tensor;
};

using TensorPtr = std::shared_ptr<const StoredTensor>;

struct HeldUsage {
  std::string device;
  int64_t tensors = 0;
  int64_t bytes = 0;
};

class TensorStore {
 public:
  // Adds a tensor under a fresh id. ALREADY_EXISTS if `name` is taken.
  absl::StatusOr<TensorPtr> Insert(Tensor tensor, std::string name,
                                   std::map<std::string, std::string> labels);
  struct NewTensor {
    Tensor tensor;
    std::string name;
    std::map<std::string, std::string> labels;
  };
  // Adds all of `tensors` under fresh ids, or none: ALREADY_EXISTS naming the
  // first name that is taken or given twice. Checked and inserted under one
  // lock, so that no concurrent insert can make it fail half-way (restores).
  absl::StatusOr<std::vector<TensorPtr>> InsertAll(std::vector<NewTensor> tensors);
  // ALREADY_EXISTS if a non-empty `name` is taken now (an early check for
  // uploads; Insert checks again).
  absl::Status CheckNameFree(const std::string& name) const;

  // NOT_FOUND naming the id or name.
  absl::StatusOr<TensorPtr> FindById(const std::string& id) const;
  absl::StatusOr<TensorPtr> FindByName(const std::string& name) const;

  // Removes and returns the entry (freed when its last reader lets go).
  absl::StatusOr<TensorPtr> EraseById(const std::string& id);

  // Tensors whose name starts with `name_prefix` (all when empty; unnamed
  // tensors only then), ordered by creation.
  std::vector<TensorPtr> List(const std::string& name_prefix) const;

  int64_t size() const;
  std::vector<HeldUsage> Usage() const;

 private:
  mutable std::mutex mu_;
  HandleIndex<TensorPtr> index_{"tensor", "t-"};  // guarded by mu_
};

}  // namespace sparsed::server
