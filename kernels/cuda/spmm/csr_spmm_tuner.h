// The autotuner for CSR SpMM: the first time a tuning key is seen it times
// every supporting variant on the real operands (CUDA events, median of 9
// interleaved rounds after a warm-up round), stores the winner in the tune database, and from
// then on runs the stored winner.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "csr_spmm.h"
#include "sparsed/tune_db.h"

namespace sparsed::cuda {

// "<device>|spmm|csr|<dtype>|m2^a|k2^b|n<bucket>[u]|avg2^c|cv<d>|<version>":
// shape buckets (powers of two; 'u' when n is not a multiple of the vector
// width), average row length bucket (sparsity), row-length spread bucket.
std::string CsrSpmmTuneKey(const std::string& device_desc, const CsrSpmmProblem& p);

struct TuneOutcome {
  std::string variant;  // what ran
  bool tuned = false;   // timed candidates during this call
};

class CsrSpmmTuner {
 public:
  // `db` is not owned and must outlive the tuner. `forced` names a variant to
  // use instead (empty: tune).
  CsrSpmmTuner(TuneDb* db, std::string device_desc, std::string forced)
      : db_(db), device_desc_(std::move(device_desc)), forced_(std::move(forced)) {}

  // Computes p (into p.c), choosing the variant as described above.
  absl::StatusOr<TuneOutcome> Run(const CsrSpmmProblem& p, const ExecContext& ctx, Workspace& ws);

  using Candidate = std::pair<const CsrSpmmVariant*, Plan*>;
  // Times prepared candidates on p in `rounds` interleaved rounds (each runs
  // every candidate once) after a warm-up round: median milliseconds per
  // candidate, +infinity for one that failed to run.
  static std::vector<double> TimeInterleaved(const std::vector<Candidate>& candidates,
                                             const CsrSpmmProblem& p, const ExecContext& ctx,
                                             int rounds);

  // Times `variant` on p: median milliseconds of `runs` runs after a warm-up.
  static absl::StatusOr<double> Time(const CsrSpmmVariant& variant, const CsrSpmmProblem& p,
                                     Plan* plan, const ExecContext& ctx, int runs);

 private:
  TuneDb* db_;
  std::string device_desc_;
  std::string forced_;
};

}  // namespace sparsed::cuda
