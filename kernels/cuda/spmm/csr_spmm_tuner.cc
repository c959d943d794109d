#include "csr_spmm_tuner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "cuda_check.h"

namespace sparsed::cuda {
namespace {

int Log2Bucket(double x) { return x <= 1 ? 0 : static_cast<int>(std::ceil(std::log2(x))); }

// Coefficient of variation of row lengths: 0 regular, 1 mild, 2 skewed,
// 3 power-law-like.
int SpreadBucket(const RowStats& s) {
  if (s.mean <= 0) return 0;
  const double cv = s.stddev / s.mean;
  return cv < 0.25 ? 0 : cv < 1.0 ? 1 : cv < 4.0 ? 2 : 3;
}

// A variant's RAII pair of CUDA events.
struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Events() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string CsrSpmmTuneKey(const std::string& device_desc, const CsrSpmmProblem& p) {
  const bool aligned = p.n % (16 / SizeOf(p.type)) == 0;
  return StrCat(device_desc, "|spmm|csr|", ValueTypeName(p.type), "|m2^", Log2Bucket(p.m), "|k2^",
                Log2Bucket(p.k), "|n",
                std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(p.n, 1))), aligned ? "" : "u",
                "|avg2^", Log2Bucket(p.stats.mean), "|cv", SpreadBucket(p.stats), "|",
                kCsrSpmmVariantSetVersion);
}

absl::StatusOr<double> CsrSpmmTuner::Time(const CsrSpmmVariant& variant, const CsrSpmmProblem& p,
                                          Plan* plan, const ExecContext& ctx, int runs) {
  Events ev;
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
  std::sort(ms.begin(), ms.end());
  return static_cast<double>(ms[ms.size() / 2]);
}

std::vector<double> CsrSpmmTuner::TimeInterleaved(const std::vector<Candidate>& candidates,
                                                  const CsrSpmmProblem& p, const ExecContext& ctx,
                                                  int rounds) {
  const double kFailed = std::numeric_limits<double>::infinity();
  std::vector<std::vector<float>> ms(candidates.size());
  std::vector<bool> failed(candidates.size(), false);
  Events ev;
  if (cudaEventCreate(&ev.start) != cudaSuccess || cudaEventCreate(&ev.stop) != cudaSuccess) {
    return std::vector<double>(candidates.size(), kFailed);
  }
  // Round 0 warms up (module load, caches); the rest are timed.
  for (int round = 0; round <= rounds; ++round) {
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (failed[i]) continue;
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
        ms[i].push_back(t);
      }
    }
  }
  std::vector<double> out;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (failed[i] || ms[i].empty()) {
      out.push_back(kFailed);
      continue;
    }
    std::sort(ms[i].begin(), ms[i].end());
    out.push_back(ms[i][ms[i].size() / 2]);
  }
  return out;
}

absl::StatusOr<TuneOutcome> CsrSpmmTuner::Run(const CsrSpmmProblem& p, const ExecContext& ctx,
                                              Workspace& ws) {
  auto run = [&](const CsrSpmmVariant& v) -> absl::StatusOr<TuneOutcome> {
    ASSIGN_OR_RETURN(Plan * plan, v.Prepare(p, ctx, ws));
    RETURN_IF_ERROR(v.Run(p, plan, ctx));
    return TuneOutcome{std::string(v.name()), false};
  };
  if (!forced_.empty()) {
    // A forced variant that cannot take this problem (e.g. a wide-B kernel on
    // a narrow B) falls through to the tuned choice.
    const CsrSpmmVariant* v = FindCsrSpmmVariant(forced_);
    if (v != nullptr && v->Supports(p)) {
      absl::StatusOr<TuneOutcome> r = run(*v);
      if (r.ok() || r.status().code() != absl::StatusCode::kUnimplemented) return r;
    }
  }
  const std::string key = CsrSpmmTuneKey(device_desc_, p);
  if (std::optional<TuneEntry> hit = db_->Lookup(key); hit.has_value()) {
    const CsrSpmmVariant* v = FindCsrSpmmVariant(hit->variant);
    if (v != nullptr && v->Supports(p)) {
      absl::StatusOr<TuneOutcome> r = run(*v);
      // A stored winner that fails here (e.g. out of workspace memory) falls
      // back to tuning afresh rather than failing the request.
      if (r.ok() || r.status().code() != absl::StatusCode::kUnimplemented) return r;
    }
  }

  TuneEntry entry;
  entry.key = key;
  entry.created_unix_ms = NowMs();
  std::vector<Candidate> candidates;
  for (const CsrSpmmVariant* v : CsrSpmmVariants()) {
    if (!v->Supports(p)) continue;
    absl::StatusOr<Plan*> plan = v->Prepare(p, ctx, ws);
    if (!plan.ok()) {
      spdlog::debug("tuning {}: {} skipped: {}", key, v->name(), plan.status().ToString());
      continue;
    }
    candidates.emplace_back(v, *plan);
  }
  // Interleaved rounds: clock or thermal drift affects every candidate alike.
  constexpr int kRounds = 9;
  const std::vector<double> ms = TimeInterleaved(candidates, p, ctx, kRounds);
  db_->AddTrials(static_cast<int64_t>(candidates.size()));
  const CsrSpmmVariant* winner = nullptr;
  Plan* winner_plan = nullptr;
  double best = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (!std::isfinite(ms[i])) {
      spdlog::debug("tuning {}: {} failed to run", key, candidates[i].first->name());
      continue;
    }
    entry.timings_ms[std::string(candidates[i].first->name())] = ms[i];
    if (winner == nullptr || ms[i] < best) {
      best = ms[i];
      winner = candidates[i].first;
      winner_plan = candidates[i].second;
    }
  }
  if (winner == nullptr) {
    return absl::InternalError(StrCat("no spmm variant could run the problem with key ", key));
  }
  entry.variant = std::string(winner->name());
  spdlog::info("tuned {}: {} ({:.4f} ms of {} candidates)", key, entry.variant, best,
               entry.timings_ms.size());
  if (absl::Status s = db_->Record(std::move(entry)); !s.ok()) {
    spdlog::warn("tune database not saved: {}", s.ToString());
  }
  RETURN_IF_ERROR(winner->Run(p, winner_plan, ctx));
  return TuneOutcome{std::string(winner->name()), true};
}

}  // namespace sparsed::cuda
