#include "csr_spmm_tuner.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

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

}  // namespace

std::string CsrSpmmTuneKey(const std::string& device_desc, const CsrSpmmProblem& p) {
  const bool aligned = p.n % (16 / SizeOf(p.type)) == 0;
  return StrCat(device_desc, "|spmm|csr|", ValueTypeName(p.type), "|m2^", Log2Bucket(p.m), "|k2^",
                Log2Bucket(p.k), "|n",
                std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(p.n, 1))), aligned ? "" : "u",
                "|avg2^", Log2Bucket(p.stats.mean), "|cv", SpreadBucket(p.stats), "|",
                kCsrSpmmVariantSetVersion);
}

std::vector<double> CsrSpmmTuner::TimeInterleaved(const std::vector<Candidate>& candidates,
                                                  const CsrSpmmProblem& p, const ExecContext& ctx,
                                                  int rounds) {
  const size_t n = candidates.size();
  std::vector<std::vector<float>> samples(n);
  std::vector<bool> failed(n, false), active(n, true);
  Tuner<CsrSpmmProblem>::TimeRounds(candidates, p, ctx, rounds, true, active, samples, failed);
  std::vector<double> out(n, std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < n; ++i) {
    if (!failed[i] && !samples[i].empty()) out[i] = tuner_internal::Median(samples[i]);
  }
  return out;
}

}  // namespace sparsed::cuda
