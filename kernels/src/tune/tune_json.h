// The JSON form of the tune database (internal to the kernels library):
//   {"version": 1, "entries": [{"key": "...", "variant": "...",
//     "timings_ms": {"candidate": 0.12, ...}, "created_unix_ms": 1700000000000}, ...]}
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tune_db.h"

namespace sparsed::tune::internal {

inline constexpr int kTuneJsonVersion = 1;

// Pretty-printed JSON of `entries`, in the order given.
std::string TuneEntriesToJson(const std::vector<const TuneEntry*>& entries);

// Parses and validates the whole document. INVALID_ARGUMENT with the reason:
// not JSON (with line and column), wrong version, or the first bad entry as
// "entry N: field ..." (N counts from 0). created_unix_ms is optional (0).
absl::StatusOr<std::vector<TuneEntry>> ParseTuneJson(const std::string& text);

// Bounds on what one entry may hold (issue 17: imports were unbounded, and
// past 75 MB the database could no longer be exported or listed).
inline constexpr size_t kMaxTuneKeyBytes = 1024;
inline constexpr size_t kMaxTuneVariantBytes = 128;
inline constexpr size_t kMaxTuneCandidates = 64;

// Checks one entry: key and variant non-empty and within their byte limits,
// at most kMaxTuneCandidates candidates with non-empty names of at most
// kMaxTuneVariantBytes, timings finite and non-negative, created_unix_ms
// non-negative. The message names the field ("key must be a non-empty string").
absl::Status ValidateTuneEntry(const TuneEntry& entry);

}  // namespace sparsed::tune::internal
