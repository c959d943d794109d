// Block pruning: rank the R x C blocks (edge blocks padded with zeros) by
// Frobenius norm and keep the largest to a target block sparsity; the result
// is BSR storing exactly the kept blocks. Blocks of norm 0 are never kept.
// For a sparse input only blocks holding entries are ever materialised, so
// work and memory are O(nnz log nnz) plus the result.
#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "prune_internal.h"
#include "sparsed/cancel.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::prune_internal {
namespace {

// Squared norms of the non-empty blocks, in block row-major order (positions
// br * block_col_count + bc). Every block's squares are summed in row-major
// order within the block, so a dense and a sparse copy of one matrix give
// bit-identical norms (the zeros a dense matrix adds change nothing).
template <class I>
std::vector<Ranked> DenseBlockNorms(const RowEntries<I>& m, int64_t R, int64_t C,
                                    int64_t block_cols) {
  std::vector<Ranked> out;
  std::vector<double> acc(block_cols);
  for (int64_t r0 = 0; r0 < m.rows(); r0 += R) {
    if (r0 % (R << 12) == 0 && CancelRequested()) break;  // the caller returns CancelStatus()
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t r = r0; r < std::min(m.rows(), r0 + R); ++r) {
      const int64_t row = m.begin(r);
      for (int64_t bc = 0; bc < block_cols; ++bc) {
        double sum = acc[bc];
        for (int64_t c = bc * C; c < std::min(m.cols(), (bc + 1) * C); ++c) {
          const double a = m.abs(row + c);
          sum += a * a;  // exact: a float squared fits a double
        }
        acc[bc] = sum;
      }
    }
    for (int64_t bc = 0; bc < block_cols; ++bc) {
      if (acc[bc] > 0.0) out.push_back({acc[bc], r0 / R * block_cols + bc});
    }
  }
  return out;
}

template <class I>
std::vector<Ranked> SparseBlockNorms(const RowEntries<I>& m, int64_t R, int64_t C,
                                     int64_t block_cols) {
  std::vector<Ranked> out;
  std::vector<std::pair<int64_t, int64_t>> entries;  // (block column, entry)
  for (int64_t r0 = 0; r0 < m.rows(); r0 += R) {
    if (r0 % (R << 16) == 0 && CancelRequested()) break;  // the caller returns CancelStatus()
    entries.clear();
    for (int64_t r = r0; r < std::min(m.rows(), r0 + R); ++r) {
      for (int64_t e = m.begin(r); e < m.end(r); ++e) entries.push_back({m.col(r, e) / C, e});
    }
    // By block column, then entry number, i.e. row-major within each block.
    std::sort(entries.begin(), entries.end());
    for (size_t i = 0; i < entries.size();) {
      const int64_t bc = entries[i].first;
      double sum = 0.0;
      for (; i < entries.size() && entries[i].first == bc; ++i) {
        const double a = m.abs(entries[i].second);
        sum += a * a;
      }
      if (sum > 0.0) out.push_back({sum, r0 / R * block_cols + bc});
    }
  }
  return out;
}

// Copies the entries that fall in kept blocks into the zero-filled values.
template <class I, class J>
void WriteBlocks(const RowEntries<I>& m, int64_t R, int64_t C, const std::vector<Ranked>& kept,
                 int64_t block_cols, Tensor& out) {
  std::span<J> block_row_ptr = out.data<J>("block_row_ptr");
  std::span<J> block_col_idx = out.data<J>("block_col_idx");
  std::byte* values = out.component("values")->as<std::byte>();
  const int64_t block_rows = out.desc().block_row_count();
  std::memset(values, 0, out.component("values")->size());
  // kept is sorted by position, so block rows come out in order.
  std::vector<int64_t> start(block_rows + 1, 0);
  for (size_t k = 0; k < kept.size(); ++k) {
    ++start[kept[k].pos / block_cols + 1];
    block_col_idx[k] = static_cast<J>(kept[k].pos % block_cols);
  }
  for (int64_t br = 0; br < block_rows; ++br) start[br + 1] += start[br];
  for (int64_t br = 0; br <= block_rows; ++br) block_row_ptr[br] = static_cast<J>(start[br]);
  for (int64_t r = 0; r < m.rows(); ++r) {
    if ((r & 0xffff) == 0 && CancelRequested()) return;  // the caller returns CancelStatus()
    const int64_t br = r / R, in_r = r % R;
    const int64_t first = start[br], last = start[br + 1];
    if (first == last) continue;
    int64_t k = first;  // entries ascend by column, so kept blocks are walked once
    for (int64_t e = m.begin(r); e < m.end(r); ++e) {
      const int64_t c = m.col(r, e), bc = c / C;
      while (k < last && kept[k].pos % block_cols < bc) ++k;
      if (k == last) break;
      if (kept[k].pos % block_cols == bc) {
        CopyValue(values, (k * R + in_r) * C + c % C, m.values(), e, m.value_size());
      }
    }
  }
}

template <class I>
absl::StatusOr<Tensor> PruneBlockTyped(const Tensor& t, const PruneOptions& options) {
  const RowEntries<I> m(t);
  const int64_t R = options.block_rows, C = options.block_cols;
  TensorDesc desc{Format::kBsr, t.desc().dtype, DType::kI32, {m.rows(), m.cols()}, 0};
  desc.block_rows = R;
  desc.block_cols = C;
  const int64_t block_cols = desc.block_col_count();
  std::vector<Ranked> kept =
      m.dense() ? DenseBlockNorms(m, R, C, block_cols) : SparseBlockNorms(m, R, C, block_cols);
  RETURN_IF_ERROR(CancelStatus());
  const int64_t keep = KeepCount(desc.block_row_count() * block_cols, options.sparsity);
  if (static_cast<int64_t>(kept.size()) > keep) {
    if (keep > 0) std::nth_element(kept.begin(), kept.begin() + (keep - 1), kept.end(), Outranks);
    kept.resize(keep);
  }
  std::sort(kept.begin(), kept.end(),
            [](const Ranked& a, const Ranked& b) { return a.pos < b.pos; });
  desc.nnz = static_cast<int64_t>(kept.size());
  if (desc.nnz > kMaxStoredValues / (R * C)) {
    return absl::InvalidArgumentError(StrCat("tensor.shape = [", absl::StrJoin(desc.shape, ", "),
                                             "] pruned to block = [", R, ", ", C, "] keeps ",
                                             desc.nnz, " blocks, more than 2^31 stored values"));
  }
  desc.index_dtype = ResultIndexType(t.desc(), desc);
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(desc));
  VisitIndexType(desc.index_dtype,
                 [&](auto j) { WriteBlocks<I, decltype(j)>(m, R, C, kept, block_cols, out); });
  RETURN_IF_ERROR(CancelStatus());  // stopped early: incomplete
  return out;
}

}  // namespace

absl::StatusOr<Tensor> PruneBlock(const Tensor& t, const PruneOptions& options) {
  return VisitIndexType(t.desc().index_dtype,
                        [&](auto i) { return PruneBlockTyped<decltype(i)>(t, options); });
}

}  // namespace sparsed::prune_internal
