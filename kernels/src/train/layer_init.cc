// Initial parameters of a SparseLinear, generated on the host from the seed.
// Only mt19937_64's bit stream (fixed by the standard) and plain double
// arithmetic are used, so a seed gives the same layer on every platform (the
// std distributions are implementation-defined).
#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_set>
#include <vector>

#include "layer_internal.h"
#include "sparsed/buffer.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::train {
namespace {

// Dense-then-prune holds every weight on the host once (8 bytes each).
constexpr int64_t kMaxDensePruneWeights = int64_t{1} << 30;
// Random patterns keeping less than 1/this of the positions are sampled by
// Floyd's algorithm rather than by walking every position.
constexpr int64_t kSelectionSamplingRatio = 16;

// Uniform in [0, 1) from the top 53 bits of one draw.
double Uniform01(std::mt19937_64& gen) { return static_cast<double>(gen() >> 11) * 0x1.0p-53; }

// Uniform in [-bound, bound), rounded to float.
float UniformSymmetric(std::mt19937_64& gen, double bound) {
  return static_cast<float>(bound * (2.0 * Uniform01(gen) - 1.0));
}

// Weights kept at sparsity s of `total`.
int64_t KeptCount(double sparsity, int64_t total) {
  return total - std::llround(sparsity * static_cast<double>(total));
}

// U(-1/sqrt(in), 1/sqrt(in)) for every position in row-major order, then the
// `keep` largest |w| (ties: the earlier position) form the pattern.
void DensePrune(const LayerConfig& c, std::mt19937_64& gen, HostInit& init) {
  const int64_t total = c.out_features * c.in_features;
  const int64_t keep = KeptCount(c.sparsity, total);
  const double bound = 1.0 / std::sqrt(static_cast<double>(c.in_features));
  std::vector<float> dense(total);
  for (float& w : dense) w = UniformSymmetric(gen, bound);
  // The keep-th largest magnitude, then how many entries equal to it to keep.
  float threshold = 0.0f;
  int64_t at_threshold = 0;
  if (keep > 0) {
    std::vector<float> mags(total);
    for (int64_t i = 0; i < total; ++i) mags[i] = std::fabs(dense[i]);
    std::nth_element(mags.begin(), mags.begin() + (keep - 1), mags.end(), std::greater<float>());
    threshold = mags[keep - 1];
    int64_t above = 0;
    for (float m : mags) above += m > threshold;
    at_threshold = keep - above;
  }
  init.pattern.row_ptr.assign(c.out_features + 1, 0);
  init.pattern.col_idx.reserve(keep);
  init.values.reserve(keep);
  for (int64_t r = 0; r < c.out_features && keep > 0; ++r) {
    for (int64_t j = 0; j < c.in_features; ++j) {
      const float w = dense[r * c.in_features + j];
      const float m = std::fabs(w);
      bool take = m > threshold;
      if (m == threshold && at_threshold > 0) {
        take = true;
        --at_threshold;
      }
      if (!take) continue;
      init.pattern.col_idx.push_back(j);
      init.values.push_back(w);
    }
    init.pattern.row_ptr[r + 1] = init.pattern.nnz();
  }
}

// A uniformly random pattern of exactly `keep` positions by selection
// sampling (Knuth's algorithm S: position i is taken with probability
// needed / remaining), each taken weight U(-b, b) with b = 1/sqrt(in·(1-s))
// drawn right after its selection.
//
// That walks every position, so a very sparse pattern of a huge layer (10^6 x
// 10^6 at 0.999999: 10^12 steps, hours) takes Floyd's algorithm instead: the
// same uniform distribution over patterns in O(keep log keep), whatever the
// layer's size (issue 17: work proportional to what is kept).
void RandomPatternSparse(const LayerConfig& c, std::mt19937_64& gen, HostInit& init) {
  const int64_t total = c.out_features * c.in_features;
  const int64_t keep = KeptCount(c.sparsity, total);
  const double bound = 1.0 / std::sqrt(static_cast<double>(c.in_features) * (1.0 - c.sparsity));
  // Floyd: for j = total-keep .. total-1, take a uniform t in [0, j]; add t,
  // or j when t is already taken. Every keep-subset is equally likely.
  std::unordered_set<int64_t> taken;
  taken.reserve(static_cast<size_t>(keep) * 2);
  std::vector<int64_t> positions;
  positions.reserve(keep);
  for (int64_t j = total - keep; j < total; ++j) {
    int64_t t = static_cast<int64_t>(Uniform01(gen) * static_cast<double>(j + 1));
    t = std::min(t, j);  // guards the rounding of the product
    const int64_t pick = taken.insert(t).second ? t : j;
    if (pick == j) taken.insert(j);
    positions.push_back(pick);
  }
  std::sort(positions.begin(), positions.end());
  init.pattern.row_ptr.assign(c.out_features + 1, 0);
  init.pattern.col_idx.reserve(keep);
  init.values.reserve(keep);
  for (const int64_t pos : positions) {
    const int64_t r = pos / c.in_features;
    init.pattern.col_idx.push_back(pos % c.in_features);
    init.values.push_back(UniformSymmetric(gen, bound));
    ++init.pattern.row_ptr[r + 1];
  }
  for (int64_t r = 0; r < c.out_features; ++r) {
    init.pattern.row_ptr[r + 1] += init.pattern.row_ptr[r];
  }
}

void RandomPattern(const LayerConfig& c, std::mt19937_64& gen, HostInit& init) {
  const int64_t total = c.out_features * c.in_features;
  const int64_t keep = KeptCount(c.sparsity, total);
  // Selection sampling costs `total` steps: fine while that is within a small
  // multiple of what is kept.
  if (keep < total / kSelectionSamplingRatio) {
    RandomPatternSparse(c, gen, init);
    return;
  }
  const double bound = 1.0 / std::sqrt(static_cast<double>(c.in_features) * (1.0 - c.sparsity));
  init.pattern.row_ptr.assign(c.out_features + 1, 0);
  init.pattern.col_idx.reserve(keep);
  init.values.reserve(keep);
  int64_t needed = keep;
  for (int64_t r = 0; r < c.out_features; ++r) {
    for (int64_t j = 0; j < c.in_features && needed > 0; ++j) {
      const int64_t remaining = total - (r * c.in_features + j);
      // needed == remaining takes the rest whatever the rounding of the product.
      if (needed < remaining &&
          static_cast<double>(remaining) * Uniform01(gen) >= static_cast<double>(needed)) {
        continue;
      }
      init.pattern.col_idx.push_back(j);
      init.values.push_back(UniformSymmetric(gen, bound));
      --needed;
    }
    init.pattern.row_ptr[r + 1] = init.pattern.nnz();
  }
}

// An n:m pattern, group by group along each row. dense_prune: the group's m
// weights U(-1/sqrt(in), 1/sqrt(in)) in order, the n largest |w| kept (ties:
// the earlier position). random_pattern: n of the m positions uniformly
// (a partial Fisher-Yates shuffle), each U(-b, b) with b = 1/sqrt(in·n/m).
void NmPattern(const LayerConfig& c, std::mt19937_64& gen, HostInit& init) {
  const int n = c.nm_n, m = c.nm_m;
  const int64_t groups = c.in_features / m;
  const bool prune = c.init == InitKind::kDensePrune;
  const double bound = prune ? 1.0 / std::sqrt(static_cast<double>(c.in_features))
                             : 1.0 / std::sqrt(static_cast<double>(c.in_features) * n / m);
  init.pattern.row_ptr.assign(c.out_features + 1, 0);
  init.pattern.col_idx.reserve(c.out_features * groups * n);
  init.values.reserve(c.out_features * groups * n);
  std::vector<float> w(m);
  std::vector<int> order(m);
  for (int64_t r = 0; r < c.out_features; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      for (int p = 0; p < m; ++p) order[p] = p;
      if (prune) {
        for (float& x : w) x = UniformSymmetric(gen, bound);
        std::stable_sort(order.begin(), order.end(),
                         [&](int a, int b) { return std::fabs(w[a]) > std::fabs(w[b]); });
      } else {
        for (int k = 0; k < n; ++k) {
          const int pick = k + static_cast<int>(Uniform01(gen) * (m - k));
          std::swap(order[k], order[std::min(pick, m - 1)]);
        }
      }
      std::sort(order.begin(), order.begin() + n);
      for (int k = 0; k < n; ++k) {
        init.pattern.col_idx.push_back(g * m + order[k]);
        init.values.push_back(prune ? w[order[k]] : UniformSymmetric(gen, bound));
      }
    }
    init.pattern.row_ptr[r + 1] = init.pattern.nnz();
  }
}

}  // namespace

absl::StatusOr<HostInit> InitLayer(const LayerConfig& c) {
  RETURN_IF_ERROR(CheckLayerConfig(c));
  const int64_t total = c.out_features * c.in_features;
  const bool nm = c.format == Format::kNm;
  if (c.init == InitKind::kDensePrune && !nm && total > kMaxDensePruneWeights) {
    return absl::InvalidArgumentError(
        StrCat("init = dense_prune needs all in_features * out_features = ", total,
               " weights on the host (at most ", kMaxDensePruneWeights, "); use random_pattern"));
  }
  // The layer is built on the host first. Refuse what cannot fit there up
  // front: with overcommit a huge reservation "succeeds" and the process is
  // killed later when the pages are touched.
  const int64_t keep = KeptCount(c.sparsity, total);
  const int64_t host_bytes =
      keep * int64_t{sizeof(float) + sizeof(int64_t)} +
      (c.out_features + 1) * int64_t{sizeof(int64_t)} +
      (c.init == InitKind::kDensePrune && !nm ? total * int64_t{2 * sizeof(float)} : 0) +
      // Floyd's sampling: the positions and a hash set of them (about 48 bytes a node).
      (c.init == InitKind::kRandomPattern && !nm && keep < total / kSelectionSamplingRatio
           ? keep * int64_t{sizeof(int64_t) + 48}
           : 0);
  const int64_t physical = HostMemoryBytes();
  if (physical > 0 && host_bytes > physical / 2) {
    return absl::ResourceExhaustedError(
        StrCat("a layer of ", c.out_features, " x ", c.in_features, " at sparsity ", c.sparsity,
               " (", keep, " weights) needs ", host_bytes,
               " bytes of host memory to initialise, more than half of the machine's ", physical));
  }
  // Counted against the host's memory limit while it is built (issue 17: a
  // 52-byte request could take GBs past --memory-limit-bytes).
  ASSIGN_OR_RETURN(ScratchReservation scratch,
                   ScratchReservation::Take(
                       host_bytes, Device::Cpu(),
                       StrCat("initialising a layer of ", c.out_features, " x ", c.in_features)));
  HostInit init;
  init.pattern.rows = c.out_features;
  init.pattern.cols = c.in_features;
  std::mt19937_64 gen(c.seed);
  if (nm) {
    NmPattern(c, gen, init);
  } else if (c.init == InitKind::kDensePrune) {
    DensePrune(c, gen, init);
  } else {
    RandomPattern(c, gen, init);
  }
  // PyTorch's nn.Linear bias: U(-1/sqrt(in), 1/sqrt(in)), drawn after the weights.
  if (c.bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(c.in_features));
    init.bias.resize(c.out_features);
    for (float& b : init.bias) b = UniformSymmetric(gen, bound);
  }
  return init;
}

}  // namespace sparsed::train
