// Drives an Op from several clients, each on its own connection, for a
// warm-up and then a measured stretch cut into windows: closed loop (each
// client sends its next request when the last one answered) or open loop at
// a fixed total rate (latency counted from each request's scheduled start,
// so a slow server shows as queueing, not as fewer requests).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "load_ops.h"
#include "load_stats.h"
#include "sparsed/client/client.h"

namespace sparsed::load {

struct RunOptions {
  std::string address;
  client::ConnectOptions connect;
  int clients = 1;
  double rate = 0;  // requests per second, all clients together; 0: closed loop
  double warmup_seconds = 1;
  double window_seconds = 2;
  int windows = 3;
};

struct RunResult {
  Summary total;                 // every measured window together
  std::vector<Summary> windows;  // one per window, for stability
  // Largest relative difference of a window's throughput from the median
  // window's (perf_analyzer calls a run stable below about 10%).
  double throughput_spread = 0;
  std::string first_error;  // the first failed request's status ("" when none failed)
};

// INVALID_ARGUMENT for bad options; the connect error of a client;
// otherwise the run (errors of single requests are counted, not returned).
absl::StatusOr<RunResult> RunLoad(Op& op, const RunOptions& options);

}  // namespace sparsed::load
