// The autotuner for CSR SpMM: the shared tuner (tuner.h) over the CSR
// variants, with CSR's tuning key.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "csr_spmm.h"
#include "sparsed/tune_db.h"
#include "spmm/tuner.h"

namespace sparsed::cuda {

// "<device>|spmm|csr|<dtype>|m2^a|k2^b|n<bucket>[u]|avg2^c|cv<d>|<version>":
// shape buckets (powers of two; 'u' when n is not a multiple of the vector
// width), average row length bucket (sparsity), row-length spread bucket.
std::string CsrSpmmTuneKey(const std::string& device_desc, const CsrSpmmProblem& p);

class CsrSpmmTuner {
 public:
  // `db` is not owned and must outlive the tuner. `forced` names a variant to
  // use instead (empty: tune).
  CsrSpmmTuner(TuneDb* db, std::string device_desc, std::string forced, int arch = 90)
      : tuner_(db, std::move(forced), arch), device_desc_(std::move(device_desc)) {}

  // Computes p (into p.c), choosing the variant as described above.
  absl::StatusOr<TuneOutcome> Run(const CsrSpmmProblem& p, const ExecContext& ctx,
                                  Workspace& ws) const {
    return tuner_.Run(p, CsrSpmmTuneKey(device_desc_, p), CsrSpmmVariants(), ctx, ws);
  }

  using Candidate = Tuner<CsrSpmmProblem>::Candidate;
  // Times prepared candidates on p in `rounds` interleaved rounds after a
  // warm-up round: median milliseconds per candidate, +infinity for one that
  // failed to run.
  static std::vector<double> TimeInterleaved(const std::vector<Candidate>& candidates,
                                             const CsrSpmmProblem& p, const ExecContext& ctx,
                                             int rounds);
  static absl::StatusOr<double> Time(const CsrSpmmVariant& variant, const CsrSpmmProblem& p,
                                     Plan* plan, const ExecContext& ctx, int runs) {
    return Tuner<CsrSpmmProblem>::Time(variant, p, plan, ctx, runs);
  }

 private:
  Tuner<CsrSpmmProblem> tuner_;
  std::string device_desc_;
};

}  // namespace sparsed::cuda
