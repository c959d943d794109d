// Magnitude pruning: keep the largest |w| of the whole matrix (or of every
// row) to a target sparsity; the result is CSR holding the kept non-zeros.
// Work and memory are O(stored entries), never O(rows * cols) for a sparse
// input: only non-zero entries are candidates, and nth_element finds the last
// kept one (the cutoff) without sorting.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "prune_internal.h"
#include "sparsed/status.h"

namespace sparsed::prune_internal {
namespace {

// The last kept candidate in ranking order: a non-zero entry is kept when it
// does not rank below it.
struct Cutoff {
  double key = 0.0;  // the default keeps every non-zero entry
  int64_t pos = std::numeric_limits<int64_t>::max();
  bool Keeps(double k, int64_t p) const { return k > key || (k == key && p <= pos); }
};

// Picks the cutoff that keeps `keep` of the candidates (all when fewer).
// Reorders `candidates`.
Cutoff SelectCutoff(std::vector<Ranked>& candidates, int64_t keep) {
  if (static_cast<int64_t>(candidates.size()) <= keep) return {};
  if (keep == 0) return {std::numeric_limits<double>::infinity(), -1};
  std::nth_element(candidates.begin(), candidates.begin() + (keep - 1), candidates.end(), Outranks);
  return {candidates[keep - 1].key, candidates[keep - 1].pos};
}

template <class I>
void AddRowCandidates(const RowEntries<I>& m, int64_t r, std::vector<Ranked>& out) {
  for (int64_t e = m.begin(r); e < m.end(r); ++e) {
    const float a = m.abs(e);
    if (a > 0.0f) out.push_back({a, e});  // already-zero entries are pruned first
  }
}

// Cutoffs: one for the whole matrix, or one per row.
template <class I>
std::vector<Cutoff> SelectCutoffs(const RowEntries<I>& m, const PruneOptions& options) {
  std::vector<Ranked> candidates;
  if (!options.per_row) {
    int64_t nonzeros = 0;  // sized exactly: a dense input may be mostly zeros
    for (int64_t e = 0; e < m.entries(); ++e) nonzeros += m.abs(e) > 0.0f;
    candidates.reserve(nonzeros);
    for (int64_t r = 0; r < m.rows(); ++r) AddRowCandidates(m, r, candidates);
    return {SelectCutoff(candidates, KeepCount(m.rows() * m.cols(), options.sparsity))};
  }
  const int64_t keep = KeepCount(m.cols(), options.sparsity);
  std::vector<Cutoff> cutoffs(m.rows());
  for (int64_t r = 0; r < m.rows(); ++r) {
    candidates.clear();
    AddRowCandidates(m, r, candidates);
    cutoffs[r] = SelectCutoff(candidates, keep);
  }
  return cutoffs;
}

template <class I, class J>
void WriteKept(const RowEntries<I>& m, const std::vector<Cutoff>& cutoffs,
               const std::vector<int64_t>& row_start, Tensor& out) {
  std::span<J> row_ptr = out.data<J>("row_ptr");
  std::span<J> col_idx = out.data<J>("col_idx");
  std::byte* values = out.component("values")->as<std::byte>();
  for (int64_t r = 0; r <= m.rows(); ++r) row_ptr[r] = static_cast<J>(row_start[r]);
  int64_t k = 0;
  for (int64_t r = 0; r < m.rows(); ++r) {
    const Cutoff& cut = cutoffs.size() == 1 ? cutoffs[0] : cutoffs[r];
    for (int64_t e = m.begin(r); e < m.end(r); ++e) {
      const float a = m.abs(e);
      if (a > 0.0f && cut.Keeps(a, e)) {
        col_idx[k] = static_cast<J>(m.col(r, e));
        CopyValue(values, k++, m.values(), e, m.value_size());
      }
    }
  }
}

template <class I>
absl::StatusOr<Tensor> PruneMagnitudeTyped(const Tensor& t, const PruneOptions& options) {
  const RowEntries<I> m(t);
  const std::vector<Cutoff> cutoffs = SelectCutoffs(m, options);
  std::vector<int64_t> row_start(m.rows() + 1, 0);
  for (int64_t r = 0; r < m.rows(); ++r) {
    const Cutoff& cut = cutoffs.size() == 1 ? cutoffs[0] : cutoffs[r];
    int64_t count = 0;
    for (int64_t e = m.begin(r); e < m.end(r); ++e) {
      const float a = m.abs(e);
      count += a > 0.0f && cut.Keeps(a, e);
    }
    row_start[r + 1] = row_start[r] + count;
  }
  TensorDesc desc{
      Format::kCsr, t.desc().dtype, DType::kI32, {m.rows(), m.cols()}, row_start[m.rows()]};
  desc.index_dtype = ResultIndexType(t.desc(), desc);
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(desc));
  VisitIndexType(desc.index_dtype,
                 [&](auto j) { WriteKept<I, decltype(j)>(m, cutoffs, row_start, out); });
  return out;
}

}  // namespace

absl::StatusOr<Tensor> PruneMagnitude(const Tensor& t, const PruneOptions& options) {
  return VisitIndexType(t.desc().index_dtype,
                        [&](auto i) { return PruneMagnitudeTyped<decltype(i)>(t, options); });
}

}  // namespace sparsed::prune_internal
