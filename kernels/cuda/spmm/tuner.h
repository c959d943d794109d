// The autotuner shared by every op × format: the first time a tuning key is
// seen it prepares every supporting variant, times them on the real operands
// in interleaved rounds (CUDA events, median), stores the winner and all
// timings in the tune database, and from then on runs the stored winner.
//
// Near ties are timed longer: while the runner-up is within kTieMargin of the
// winner, more interleaved rounds are added for the candidates in contention
// (up to kMaxRounds), so that a pick is not decided by noise.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "cuda_check.h"
#include "sparsed/tune_db.h"
#include "spmm/variant.h"

namespace sparsed::cuda {

struct TuneOutcome {
  std::string variant;  // what ran
  bool tuned = false;   // timed candidates during this call
};

namespace tuner_internal {

// A RAII pair of CUDA events.
struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Events() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

inline int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline double Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace tuner_internal

template <class Problem>
class Tuner {
 public:
  using V = Variant<Problem>;
  using Candidate = std::pair<const V*, Plan*>;
  static constexpr int kRounds = 11;
  static constexpr int kMaxRounds = 41;
  static constexpr double kTieMargin = 0.05;

  // `db` is not owned and must outlive the tuner. `forced` names a variant to
  // use where it applies (empty: tune). `arch` is the device's compute
  // capability (major * 10 + minor).
  Tuner(TuneDb* db, std::string forced, int arch)
      : db_(db), forced_(std::move(forced)), arch_(arch) {}

  // Computes p with the variant stored for `key`, or tunes `variants` on it.
  absl::StatusOr<TuneOutcome> Run(const Problem& p, const std::string& key,
                                  const std::vector<const V*>& variants, const ExecContext& ctx,
                                  Workspace& ws) const {
    auto run = [&](const V& v) -> absl::StatusOr<TuneOutcome> {
      ASSIGN_OR_RETURN(Plan * plan, v.Prepare(p, ctx, ws));
      RETURN_IF_ERROR(v.Run(p, plan, ctx));
      return TuneOutcome{std::string(v.name()), false};
    };
    // A forced or stored variant that cannot take this problem here (e.g. a
    // library turned it down, a kernel failed to compile) falls through to
    // tuning rather than failing the request.
    auto fell_through = [](const absl::Status& s) {
      return s.code() == absl::StatusCode::kUnimplemented ||
             s.code() == absl::StatusCode::kInternal;
    };
    if (!forced_.empty()) {
      const V* v = FindVariant(variants, forced_);
      if (v != nullptr && Usable(*v, p)) {
        absl::StatusOr<TuneOutcome> r = run(*v);
        if (r.ok() || !fell_through(r.status())) return r;
      }
    }
    if (std::optional<TuneEntry> hit = db_->Lookup(key); hit.has_value()) {
      const V* v = FindVariant(variants, hit->variant);
      if (v != nullptr && Usable(*v, p)) {
        absl::StatusOr<TuneOutcome> r = run(*v);
        if (r.ok() || !fell_through(r.status())) return r;
      }
    }
    std::vector<Candidate> candidates;
    for (const V* v : variants) {
      if (!Usable(*v, p)) continue;
      absl::StatusOr<Plan*> plan = v->Prepare(p, ctx, ws);
      if (!plan.ok()) {
        spdlog::log(plan.status().code() == absl::StatusCode::kInternal ? spdlog::level::warn
                                                                         : spdlog::level::debug,
                    "tuning {}: {} skipped: {}", key, v->name(), plan.status().ToString());
        continue;
      }
      candidates.emplace_back(v, *plan);
    }
    const std::vector<double> ms = TimeUntilDecided(candidates, p, ctx);
    db_->AddTrials(static_cast<int64_t>(candidates.size()));
    TuneEntry entry;
    entry.key = key;
    entry.created_unix_ms = tuner_internal::NowMs();
    int winner = -1;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (!std::isfinite(ms[i])) {
        spdlog::debug("tuning {}: {} failed to run", key, candidates[i].first->name());
        continue;
      }
      entry.timings_ms[std::string(candidates[i].first->name())] = ms[i];
      if (winner < 0 || ms[i] < ms[winner]) winner = static_cast<int>(i);
    }
    if (winner < 0) {
      return absl::InternalError(StrCat("no variant could run the problem with key ", key));
    }
    entry.variant = std::string(candidates[winner].first->name());
    spdlog::info("tuned {}: {} ({:.4f} ms of {} candidates)", key, entry.variant, ms[winner],
                 entry.timings_ms.size());
    if (absl::Status s = db_->Record(std::move(entry)); !s.ok()) {
      spdlog::warn("tune database not saved: {}", s.ToString());
    }
    RETURN_IF_ERROR(candidates[winner].first->Run(p, candidates[winner].second, ctx));
    return TuneOutcome{std::string(candidates[winner].first->name()), true};
  }

  // Times prepared candidates on p in `rounds` interleaved rounds (each runs
  // every candidate still in `active` once) after a warm-up round, appending
  // to `samples`; a candidate that fails is marked failed.
  static void TimeRounds(const std::vector<Candidate>& candidates, const Problem& p,
                         const ExecContext& ctx, int rounds, bool warm_up,
                         const std::vector<bool>& active, std::vector<std::vector<float>>& samples,
                         std::vector<bool>& failed) {
    tuner_internal::Events ev;
    if (cudaEventCreate(&ev.start) != cudaSuccess || cudaEventCreate(&ev.stop) != cudaSuccess) {
      std::fill(failed.begin(), failed.end(), true);
      return;
    }
    for (int round = warm_up ? 0 : 1; round <= rounds; ++round) {
      for (size_t i = 0; i < candidates.size(); ++i) {
        if (failed[i] || !active[i]) continue;
        const auto& [variant, plan] = candidates[i];
        float t = 0;
        const bool ok = cudaEventRecord(ev.start, ctx.stream) == cudaSuccess &&
                        variant->Run(p, plan, ctx).ok() &&
                        cudaEventRecord(ev.stop, ctx.stream) == cudaSuccess &&
                        cudaEventSynchronize(ev.stop) == cudaSuccess &&
                        cudaEventElapsedTime(&t, ev.start, ev.stop) == cudaSuccess;
        if (!ok) {
          failed[i] = true;
        } else if (round > 0) {
          samples[i].push_back(t);
        }
      }
    }
  }

  // Median milliseconds per candidate (+infinity for one that failed) after
  // kRounds rounds, extended while the best two are within kTieMargin.
  static std::vector<double> TimeUntilDecided(const std::vector<Candidate>& candidates,
                                              const Problem& p, const ExecContext& ctx) {
    const size_t n = candidates.size();
    std::vector<std::vector<float>> samples(n);
    std::vector<bool> failed(n, false), active(n, true);
    TimeRounds(candidates, p, ctx, kRounds, true, active, samples, failed);
    auto medians = [&] {
      std::vector<double> out(n, std::numeric_limits<double>::infinity());
      for (size_t i = 0; i < n; ++i) {
        if (!failed[i] && !samples[i].empty()) out[i] = tuner_internal::Median(samples[i]);
      }
      return out;
    };
    std::vector<double> ms = medians();
    for (int total = kRounds; total < kMaxRounds; total += kRounds) {
      const double best = *std::min_element(ms.begin(), ms.end());
      if (!std::isfinite(best)) break;
      int close = 0;
      for (size_t i = 0; i < n; ++i) {
        active[i] = ms[i] <= best * (1 + 2 * kTieMargin);
        if (ms[i] <= best * (1 + kTieMargin)) ++close;
      }
      if (close < 2) break;
      TimeRounds(candidates, p, ctx, kRounds, false, active, samples, failed);
      ms = medians();
    }
    return ms;
  }

  // Times `variant` on p: median milliseconds of `runs` runs after a warm-up.
  static absl::StatusOr<double> Time(const V& variant, const Problem& p, Plan* plan,
                                     const ExecContext& ctx, int runs) {
    tuner_internal::Events ev;
    CUDA_RETURN_IF_ERROR(cudaEventCreate(&ev.start), "cudaEventCreate");
    CUDA_RETURN_IF_ERROR(cudaEventCreate(&ev.stop), "cudaEventCreate");
    RETURN_IF_ERROR(variant.Run(p, plan, ctx));  // warm-up
    std::vector<float> ms;
    for (int i = 0; i < runs; ++i) {
      CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.start, ctx.stream), "cudaEventRecord");
      RETURN_IF_ERROR(variant.Run(p, plan, ctx));
      CUDA_RETURN_IF_ERROR(cudaEventRecord(ev.stop, ctx.stream), "cudaEventRecord");
      CUDA_RETURN_IF_ERROR(cudaEventSynchronize(ev.stop), "cudaEventSynchronize");
      float t = 0;
      CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&t, ev.start, ev.stop), "cudaEventElapsedTime");
      ms.push_back(t);
    }
    return tuner_internal::Median(std::move(ms));
  }

 private:
  bool Usable(const V& v, const Problem& p) const {
    return v.min_arch() <= arch_ && v.Supports(p);
  }

  TuneDb* db_;
  std::string forced_;
  int arch_;
};

}  // namespace sparsed::cuda
