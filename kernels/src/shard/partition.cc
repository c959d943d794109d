// PartitionRowPtr: contiguous row ranges minimising the largest range's nnz.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "shard_internal.h"
#include "sparsed/shard.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using shard_internal::Invalid;

// floor(total * i / n) without overflow (n <= kMaxShards, i <= n).
int64_t Share(int64_t total, int64_t i, int64_t n) { return total / n * i + total % n * i / n; }

class Partitioner {
 public:
  explicit Partitioner(std::span<const int64_t> row_ptr)
      : rp_(row_ptr), rows_(static_cast<int64_t>(row_ptr.size()) - 1) {}

  // The largest r with rp[r] <= rp[from] + cap (>= from + 1 while from < rows
  // and the row at `from` holds at most cap entries).
  int64_t ForwardReach(int64_t from, int64_t cap) const {
    const auto it = std::upper_bound(rp_.begin() + from, rp_.end(), rp_[from] + cap);
    return (it - rp_.begin()) - 1;
  }
  // The smallest r with rp[to] - rp[r] <= cap.
  int64_t BackwardReach(int64_t to, int64_t cap) const {
    const auto it = std::lower_bound(rp_.begin(), rp_.begin() + to + 1, rp_[to] - cap);
    return it - rp_.begin();
  }

  // Whether all rows fit in `parts` ranges of at most cap entries each
  // (cap >= the longest row).
  bool Fits(int64_t cap, int parts) const {
    int64_t pos = 0;
    for (int used = 0; used < parts && pos < rows_; ++used) pos = ForwardReach(pos, cap);
    return pos >= rows_;
  }

  std::vector<RowRange> Split(int shards) const {
    std::vector<RowRange> ranges;
    ranges.reserve(shards);
    if (rows_ == 0) {
      ranges.assign(shards, RowRange{0, 0});
      return ranges;
    }
    const int64_t total = rp_[rows_];
    int64_t longest = 0;
    for (int64_t r = 0; r < rows_; ++r) longest = std::max(longest, rp_[r + 1] - rp_[r]);
    // The smallest feasible cap, by bisection (Fits is monotone in cap).
    int64_t lo = std::max(longest, (total + shards - 1) / shards), hi = std::max(lo, total);
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (Fits(mid, shards)) {
        hi = mid;
      } else {
        lo = mid;
        ++lo;
      }
    }
    const int64_t cap = lo;
    // first_start[k]: the smallest r such that rows [r, rows) fit in k ranges.
    std::vector<int64_t> first_start(shards + 1, 0);
    first_start[0] = rows_;
    for (int k = 1; k <= shards; ++k) {
      first_start[k] = first_start[k - 1] == 0 ? 0 : BackwardReach(first_start[k - 1], cap);
    }
    // Every end in [lo_end, hi_end] keeps this range within cap and leaves a
    // remainder the other ranges can hold; pick the one nearest an even share.
    int64_t begin = 0;
    for (int i = 0; i < shards; ++i) {
      int64_t end = rows_;
      if (i + 1 < shards) {
        const int64_t lo_end = std::max(begin, first_start[shards - i - 1]);
        const int64_t hi_end = std::max(lo_end, ForwardReach(begin, cap));
        end = Nearest(lo_end, hi_end, Share(total, i + 1, shards), Share(rows_, i + 1, shards));
      }
      ranges.push_back({begin, end});
      begin = end;
    }
    return ranges;
  }

 private:
  // The r in [lo, hi] minimising |rp[r] - nnz_target|, then |r - row_target|,
  // then r.
  int64_t Nearest(int64_t lo, int64_t hi, int64_t nnz_target, int64_t row_target) const {
    const auto first = rp_.begin() + lo, last = rp_.begin() + hi + 1;
    const int64_t p = std::lower_bound(first, last, nnz_target) - rp_.begin();
    int64_t best = -1, best_nnz = 0, best_row = 0;
    for (const int64_t q : {p - 1, p}) {
      if (q < lo || q > hi) continue;
      // Rows with the same prefix as q form a run; the run's row nearest the
      // row target.
      const int64_t v = rp_[q];
      const int64_t run_lo = std::lower_bound(first, last, v) - rp_.begin();
      const int64_t run_hi = (std::upper_bound(first, last, v) - rp_.begin()) - 1;
      const int64_t r = std::clamp(row_target, run_lo, run_hi);
      const int64_t dn = v > nnz_target ? v - nnz_target : nnz_target - v;
      const int64_t dr = r > row_target ? r - row_target : row_target - r;
      if (best < 0 || dn < best_nnz || (dn == best_nnz && dr < best_row)) {
        best = r;
        best_nnz = dn;
        best_row = dr;
      }
    }
    return best;
  }

  std::span<const int64_t> rp_;
  int64_t rows_;
};

}  // namespace

absl::StatusOr<std::vector<RowRange>> PartitionRowPtr(std::span<const int64_t> row_ptr,
                                                      int shards) {
  RETURN_IF_ERROR(shard_internal::CheckShardCount(shards, "shards"));
  if (row_ptr.empty()) return Invalid("row_ptr is empty: it needs rows + 1 entries");
  if (row_ptr[0] != 0) return Invalid(StrCat("row_ptr[0] = ", row_ptr[0], " must be 0"));
  for (size_t r = 1; r < row_ptr.size(); ++r) {
    if (row_ptr[r] < row_ptr[r - 1]) {
      return Invalid(StrCat("row_ptr[", r, "] = ", row_ptr[r], " is less than row_ptr[", r - 1,
                            "] = ", row_ptr[r - 1], " (it must not decrease)"));
    }
  }
  return Partitioner(row_ptr).Split(shards);
}

}  // namespace sparsed
