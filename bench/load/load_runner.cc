#include "load_runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <thread>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::load {
namespace {

using Clock = std::chrono::steady_clock;

struct Timed {
  Clock::time_point start;
  Sample sample;
};

}  // namespace

absl::StatusOr<RunResult> RunLoad(Op& op, const RunOptions& o) {
  if (o.clients < 1 || o.clients > 4096) {
    return absl::InvalidArgumentError(StrCat("clients = ", o.clients, " must be in [1, 4096]"));
  }
  if (o.rate < 0 || o.warmup_seconds < 0 || o.window_seconds <= 0 || o.windows < 1) {
    return absl::InvalidArgumentError("rate, warm-up, window length and window count must be "
                                      "non-negative (window length and count positive)");
  }
  std::vector<std::unique_ptr<client::Client>> clients;
  client::ConnectOptions connect = o.connect;
  connect.own_connection = true;
  for (int i = 0; i < o.clients; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<client::Client> c, client::Client::Connect(o.address, connect));
    clients.push_back(std::move(c));
  }
  const auto begin = Clock::now();
  const auto measure_from =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_seconds));
  const auto window = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(o.window_seconds));
  const auto end = measure_from + window * o.windows;

  std::vector<std::vector<Timed>> per_client(static_cast<size_t>(o.clients));
  std::mutex error_mu;
  std::string first_error;  // guarded by error_mu
  std::vector<std::thread> threads;
  for (int i = 0; i < o.clients; ++i) {
    threads.emplace_back([&, i] {
      client::Client& c = *clients[static_cast<size_t>(i)];
      std::vector<Timed>& out = per_client[static_cast<size_t>(i)];
      // Open loop: client i sends at i/rate, i/rate + clients/rate, ...
      const Clock::duration interval =
          o.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(o.clients / o.rate))
                     : Clock::duration::zero();
      Clock::time_point next = begin + (o.rate > 0 ? interval * i / o.clients : Clock::duration::zero());
      while (true) {
        Clock::time_point start = Clock::now();
        if (o.rate > 0) {
          if (next > start) std::this_thread::sleep_until(next);
          start = next;
          next += interval;
        }
        if (start >= end) break;
        absl::StatusOr<double> server_ms = op.Run(c);
        const auto done = Clock::now();
        if (!server_ms.ok()) {
          std::lock_guard lock(error_mu);
          if (first_error.empty()) first_error = server_ms.status().ToString();
        }
        if (start >= measure_from) {
          Sample s;
          s.latency_us = std::chrono::duration<double, std::micro>(done - start).count();
          s.ok = server_ms.ok();
          s.server_ms = server_ms.ok() ? *server_ms : -1;
          out.push_back({start, s});
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  RunResult result;
  result.first_error = first_error;
  std::vector<std::vector<Sample>> by_window(static_cast<size_t>(o.windows));
  std::vector<Sample> all;
  for (const auto& samples : per_client) {
    for (const Timed& t : samples) {
      const auto k = static_cast<size_t>((t.start - measure_from) / window);
      if (k < by_window.size()) by_window[k].push_back(t.sample);
      all.push_back(t.sample);
    }
  }
  std::vector<double> rates;
  for (const auto& w : by_window) {
    result.windows.push_back(Summarize(w, o.window_seconds));
    rates.push_back(result.windows.back().throughput);
  }
  result.total = Summarize(all, o.window_seconds * o.windows);
  std::sort(rates.begin(), rates.end());
  const double median = rates[rates.size() / 2];
  for (double r : rates) {
    if (median > 0) result.throughput_spread = std::max(result.throughput_spread, std::abs(r - median) / median);
  }
  return result;
}

}  // namespace sparsed::load
