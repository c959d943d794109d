// The gradual pruning and RigL schedules (pure functions of the step).
#include <cmath>
#include <numbers>

#include "sparsed/training.h"

namespace sparsed::train {

double GradualSparsity(const GradualPruning& p, int64_t t) {
  if (t < p.start_step) return p.initial_sparsity;
  const double span = static_cast<double>(p.interval) * static_cast<double>(p.count);
  if (span <= 0 || static_cast<double>(t - p.start_step) >= span) return p.final_sparsity;
  const double progress = 1.0 - static_cast<double>(t - p.start_step) / span;
  return p.final_sparsity +
         (p.initial_sparsity - p.final_sparsity) * progress * progress * progress;
}

double RiglDropFraction(const RiglConfig& r, int64_t t) {
  if (r.end_step <= 0 || t >= r.end_step) return 0.0;
  const double phase = std::numbers::pi * static_cast<double>(t) / static_cast<double>(r.end_step);
  return r.alpha / 2.0 * (1.0 + std::cos(phase));
}

}  // namespace sparsed::train
