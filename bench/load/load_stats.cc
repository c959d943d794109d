#include "load_stats.h"

#include <algorithm>
#include <cmath>

namespace sparsed::load {

double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(sorted.size()));
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

Summary Summarize(const std::vector<Sample>& samples, double seconds) {
  Summary s;
  s.seconds = seconds;
  std::vector<double> latency, server;
  for (const Sample& x : samples) {
    ++s.requests;
    if (!x.ok) {
      ++s.errors;
      continue;
    }
    latency.push_back(x.latency_us);
    if (x.server_ms >= 0) server.push_back(x.server_ms * 1000);
  }
  std::sort(latency.begin(), latency.end());
  std::sort(server.begin(), server.end());
  s.throughput = seconds > 0 ? static_cast<double>(latency.size()) / seconds : 0;
  s.p50_us = Quantile(latency, 0.50);
  s.p90_us = Quantile(latency, 0.90);
  s.p99_us = Quantile(latency, 0.99);
  s.max_us = latency.empty() ? 0 : latency.back();
  if (!server.empty()) s.server_p50_us = Quantile(server, 0.50);
  return s;
}

}  // namespace sparsed::load
