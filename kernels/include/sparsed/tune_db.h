// The tune database: for each tuning key, which kernel variant won and how
// long every candidate took. Persisted as JSON at a path (normally
// <data-dir>/tune.json), rewritten atomically (temporary file in the same
// directory, fsync, rename, fsync of the directory) on every change, so a
// crash never leaves a half-written file. Thread-safe; lookups never wait for
// a file write.
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

  bool operator==(const TuneEntry&) const = default;
};

class TuneDb {
  struct Passkey {};

 public:
  // Loads `path` (a missing file is an empty database). An unreadable or
  // corrupt file (not JSON, or not the schema below) is moved aside to
  // `path + ".corrupt"` and the database starts empty, with the reason in
  // `warning()`; only when it cannot be moved aside does Open fail. An empty
  // path keeps the database in memory only.
  static absl::StatusOr<std::unique_ptr<TuneDb>> Open(std::string path);
  TuneDb(Passkey, std::string path);
  TuneDb(const TuneDb&) = delete;
  TuneDb& operator=(const TuneDb&) = delete;

  // The entry for `key`, counting a hit or a miss.
  std::optional<TuneEntry> Lookup(const std::string& key);
  // Inserts or replaces an entry and persists the database. A zero
  // created_unix_ms is set to now. INVALID_ARGUMENT for an empty key or
  // variant or a timing that is not a finite non-negative number.
  absl::Status Record(TuneEntry entry);
  // Entries ordered by key.
  std::vector<TuneEntry> List() const;
  // {"version": 1, "entries": [{key, variant, timings_ms, created_unix_ms}, ...]}
  // (entries ordered by key); the format of the file.
  std::string ExportJson() const;
  // At most this many entries are held: Record evicts the oldest (by
  // created_unix_ms) to make room; an import that would exceed it is
  // RESOURCE_EXHAUSTED and imports nothing.
  static constexpr int64_t kMaxEntries = 20000;

  // Merges entries from ExportJson() text (same key: the imported one wins)
  // and persists. INVALID_ARGUMENT naming the offending entry index and field
  // when malformed; nothing is imported then. Returns the number of entries
  // imported.
  absl::StatusOr<int> ImportJson(const std::string& text);
  // Removes every entry and persists. Returns how many were removed.
  absl::StatusOr<int> Clear();

  // When persisting fails (Record, ImportJson, Clear), the error names the
  // path and the errno text; the change stays in memory (this process keeps
  // using it) and the next successful save writes it out.

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
  // Bumps the generation after a change; call with mu_ held.
  uint64_t ChangedLocked() { return ++generation_; }
  // Writes the file unless a save of `generation` or later already succeeded.
  absl::Status Persist(uint64_t generation);

  const std::string path_;
  std::string warning_;
  mutable std::mutex mu_;  // guards entries_ and generation_
  std::map<std::string, TuneEntry> entries_;
  uint64_t generation_ = 0;
  std::mutex save_mu_;  // serializes file writes; guards saved_generation_
  uint64_t saved_generation_ = 0;
  std::atomic<int64_t> hits_{0}, misses_{0}, trials_{0};
};

}  // namespace sparsed
