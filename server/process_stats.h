// Process-level statistics from /proc, for the sparsed_process_* metrics.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"

namespace sparsed::server {

struct ProcessStats {
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // Unix time the process started
};

// Reads /proc/self/statm, /proc/self/stat and /proc/stat.
absl::StatusOr<ProcessStats> ReadProcessStats();

// Parsers, split out so they can be tested on fixed text.
// /proc/self/statm: "size resident ..." in pages.
absl::Status ParseStatm(std::string_view statm, long page_size, ProcessStats& stats);
// /proc/self/stat: utime, stime and starttime (clock ticks, the latter since
// boot); `boot_time` is the Unix time of boot (btime in /proc/stat).
absl::Status ParseStat(std::string_view stat, long clock_ticks, double boot_time,
                       ProcessStats& stats);
// The "btime" line of /proc/stat.
absl::StatusOr<double> ParseBootTime(std::string_view proc_stat);

}  // namespace sparsed::server
