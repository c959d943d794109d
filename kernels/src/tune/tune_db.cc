// Placeholder: the implementation lands with the tune database work.
#include "sparsed/tune_db.h"

namespace sparsed {
absl::StatusOr<std::unique_ptr<TuneDb>> TuneDb::Open(std::string path) {
  auto db = std::unique_ptr<TuneDb>(new TuneDb());
  db->path_ = std::move(path);
  return db;
}
std::optional<TuneEntry> TuneDb::Lookup(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    misses_.fetch_add(1);
    return std::nullopt;
  }
  hits_.fetch_add(1);
  return it->second;
}
absl::Status TuneDb::Record(TuneEntry entry) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_[entry.key] = std::move(entry);
  return absl::OkStatus();
}
std::vector<TuneEntry> TuneDb::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TuneEntry> out;
  for (const auto& [k, e] : entries_) out.push_back(e);
  return out;
}
std::string TuneDb::ExportJson() const { return "{}"; }
absl::StatusOr<int> TuneDb::ImportJson(const std::string&) {
  return absl::UnimplementedError("ImportJson");
}
absl::StatusOr<int> TuneDb::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  const int n = static_cast<int>(entries_.size());
  entries_.clear();
  return n;
}
int64_t TuneDb::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(entries_.size());
}
absl::Status TuneDb::SaveLocked() const { return absl::OkStatus(); }
}  // namespace sparsed
