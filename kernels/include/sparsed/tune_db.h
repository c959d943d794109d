// The tune database: for each tuning key, which kernel variant won and how
// long every candidate took. Persisted as JSON at a path (normally
// <data-dir>/tune.json), rewritten atomically (temporary file, fsync, rename)
// on every change, so a crash never leaves a half-written file. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparsed {

struct TuneEntry {
  std::string key;                           // TuneKey::ToString(): stable, human-readable
  std::string variant;                       // the winner
  std::map<std::string, double> timings_ms;  // every candidate timed (median)
  int64_t created_unix_ms = 0;
};

class TuneDb {
 public:
  // Loads `path` (a missing file is an empty database). An unreadable or
  // corrupt file is moved aside to `path + ".corrupt"` and the database starts
  // empty, with the reason in `warning()`. An empty path keeps the database in
  // memory only.
  static absl::StatusOr<std::unique_ptr<TuneDb>> Open(std::string path);

  // The entry for `key`, counting a hit or a miss.
  std::optional<TuneEntry> Lookup(const std::string& key);
  // Inserts or replaces an entry and persists the database.
  absl::Status Record(TuneEntry entry);
  // Entries ordered by key.
  std::vector<TuneEntry> List() const;
  // {"version": 1, "entries": [{key, variant, timings_ms, created_unix_ms}, ...]}
  std::string ExportJson() const;
  // Merges entries from ExportJson() text (same key: the imported one wins)
  // and persists. INVALID_ARGUMENT naming the offending entry when malformed;
  // nothing is imported then. Returns the number of entries imported.
  absl::StatusOr<int> ImportJson(const std::string& text);
  // Removes every entry and persists. Returns how many were removed.
  absl::StatusOr<int> Clear();

  const std::string& path() const { return path_; }
  const std::string& warning() const { return warning_; }
  int64_t size() const;

  // Counters for /metrics.
  int64_t hits() const { return hits_.load(); }
  int64_t misses() const { return misses_.load(); }
  int64_t trials() const { return trials_.load(); }
  // The tuner reports each candidate timing it runs.
  void AddTrials(int64_t n) { trials_.fetch_add(n); }

 private:
  absl::Status SaveLocked() const;

  std::string path_;
  std::string warning_;
  mutable std::mutex mu_;
  std::map<std::string, TuneEntry> entries_;
  std::atomic<int64_t> hits_{0}, misses_{0}, trials_{0};
};

}  // namespace sparsed
