#include "sparsed/tune_db.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "atomic_file.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "src/io/file_util.h"
#include "tune_json.h"

namespace sparsed {
namespace {

using tune::internal::ParseTuneJson;
using tune::internal::TuneEntriesToJson;
using tune::internal::ValidateTuneEntry;
using tune::internal::WriteFileAtomically;

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ToJson(const std::map<std::string, TuneEntry>& entries) {
  std::vector<const TuneEntry*> list;
  list.reserve(entries.size());
  for (const auto& [key, e] : entries) list.push_back(&e);
  return TuneEntriesToJson(list);
}

}  // namespace

TuneDb::TuneDb(Passkey, std::string path) : path_(std::move(path)) {}

absl::StatusOr<std::unique_ptr<TuneDb>> TuneDb::Open(std::string path) {
  auto db = std::make_unique<TuneDb>(Passkey{}, std::move(path));
  if (db->path_.empty()) return db;

  std::error_code ec;
  if (!std::filesystem::exists(db->path_, ec) && !ec) return db;  // a fresh database
  absl::StatusOr<std::string> text = io::internal::ReadFileBytes(db->path_);
  absl::StatusOr<std::vector<TuneEntry>> entries =
      text.ok() ? ParseTuneJson(*text) : absl::StatusOr<std::vector<TuneEntry>>(text.status());
  if (entries.ok()) {
    for (TuneEntry& e : *entries) {
      std::string key = e.key;
      db->entries_.insert_or_assign(std::move(key), std::move(e));
    }
    return db;
  }

  // Unreadable or corrupt: keep it for a post-mortem and start empty.
  const std::string aside = db->path_ + ".corrupt";
  if (std::rename(db->path_.c_str(), aside.c_str()) != 0) {
    const int err = errno;
    return absl::Status(
        absl::ErrnoToStatusCode(err),
        StrCat("tune database '", db->path_, "' is unusable (", entries.status().message(),
               ") and cannot be moved aside to '", aside, "': ", std::strerror(err)));
  }
  db->warning_ = StrCat("'", db->path_, "' was unusable (", entries.status().message(),
                        "); moved aside to '", aside, "', starting empty");
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
  RETURN_IF_ERROR(ValidateTuneEntry(entry));
  if (entry.created_unix_ms == 0) entry.created_unix_ms = NowUnixMs();
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!entries_.contains(entry.key) && static_cast<int64_t>(entries_.size()) >= kMaxEntries) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(), [](auto& a, auto& b) {
        return a.second.created_unix_ms < b.second.created_unix_ms;
      });
      entries_.erase(oldest);
    }
    std::string key = entry.key;
    entries_.insert_or_assign(std::move(key), std::move(entry));
    generation = ChangedLocked();
  }
  return Persist(generation);
}

std::vector<TuneEntry> TuneDb::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TuneEntry> out;
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) out.push_back(e);
  return out;
}

std::string TuneDb::ExportJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ToJson(entries_);
}

absl::StatusOr<int> TuneDb::ImportJson(const std::string& text) {
  ASSIGN_OR_RETURN(std::vector<TuneEntry> entries, ParseTuneJson(text));
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t after = static_cast<int64_t>(entries_.size());
    std::set<std::string> fresh;
    for (const TuneEntry& e : entries) {
      if (!entries_.contains(e.key) && fresh.insert(e.key).second) ++after;
    }
    if (after > kMaxEntries) {
      return absl::ResourceExhaustedError(StrCat("the import would leave ", after,
                                                 " entries in the tune database (at most ",
                                                 kMaxEntries, "); nothing imported"));
    }
    for (TuneEntry& e : entries) {
      std::string key = e.key;
      entries_.insert_or_assign(std::move(key), std::move(e));
    }
    generation = ChangedLocked();
  }
  RETURN_IF_ERROR(Persist(generation));
  return static_cast<int>(entries.size());
}

absl::StatusOr<int> TuneDb::Clear() {
  int removed;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(mu_);
    removed = static_cast<int>(entries_.size());
    entries_.clear();
    generation = ChangedLocked();
  }
  RETURN_IF_ERROR(Persist(generation));
  return removed;
}

int64_t TuneDb::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(entries_.size());
}

absl::Status TuneDb::Persist(uint64_t generation) {
  if (path_.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> save_lock(save_mu_);
  // A save that started after our change already wrote it out.
  if (saved_generation_ >= generation) return absl::OkStatus();
  std::string text;
  uint64_t snapshot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    text = ToJson(entries_);
    snapshot = generation_;
  }
  absl::Status s = WriteFileAtomically(path_, text);
  if (!s.ok()) {
    // Never INVALID_ARGUMENT (errno EINVAL): that code means "bad input" to callers.
    const absl::StatusCode code =
        s.code() == absl::StatusCode::kInvalidArgument ? absl::StatusCode::kInternal : s.code();
    return absl::Status(code, StrCat("saving the tune database: ", s.message()));
  }
  saved_generation_ = snapshot;
  return absl::OkStatus();
}

}  // namespace sparsed
