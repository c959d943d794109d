// Latency samples of one measurement window and the summary the load tool
// prints: throughput, percentiles, errors, the server's own compute time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparsed::load {

struct Sample {
  double latency_us = 0;    // client-side, from the request's (scheduled) start
  double server_ms = -1;    // the server's compute time from the response; -1: none
  bool ok = true;
};

// The q-quantile (0 <= q <= 1) of `sorted` by the nearest-rank method: the
// smallest value with at least q of the samples at or below it. 0 when empty.
double Quantile(const std::vector<double>& sorted, double q);

struct Summary {
  int64_t requests = 0, errors = 0;
  double seconds = 0;             // the window's length
  double throughput = 0;          // successful requests per second
  double p50_us = 0, p90_us = 0, p99_us = 0, max_us = 0;  // of successful requests
  double server_p50_us = -1;      // of the server's compute time; -1: not reported
};

Summary Summarize(const std::vector<Sample>& samples, double seconds);

}  // namespace sparsed::load
