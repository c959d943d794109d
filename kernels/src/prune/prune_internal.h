// Shared pieces of the pruning modes: row-major access to a canonical dense,
// COO or CSR host matrix of any value dtype, exact magnitudes, the ranking
// order, and the target count.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/half.h"
#include "sparsed/prune.h"
#include "sparsed/tensor.h"

namespace sparsed::prune_internal {

// Most scalar values an N:M or BSR result may store.
inline constexpr int64_t kMaxStoredValues = int64_t{1} << 31;

// |value| of element e of a values array, exactly (16-bit types widen to
// float without rounding).
inline float AbsValueAt(const std::byte* values, DType dtype, int64_t e) {
  if (dtype == DType::kF32) {
    float f;
    std::memcpy(&f, values + e * 4, 4);
    return std::fabs(f);
  }
  uint16_t h;
  std::memcpy(&h, values + e * 2, 2);
  return std::fabs(dtype == DType::kF16 ? HalfToFloat(h) : Bf16ToFloat(h));
}

// Copies the bits of element `from` of `src` to element `to` of `dst`.
inline void CopyValue(std::byte* dst, int64_t to, const std::byte* src, int64_t from,
                      int64_t size) {
  if (size == 4) {
    std::memcpy(dst + to * 4, src + from * 4, 4);
  } else {
    std::memcpy(dst + to * 2, src + from * 2, 2);
  }
}

// Row-major access to the entries of a canonical host matrix: dense (every
// position is an entry), COO or CSR with index type I. Entry numbers increase
// with the row-major position in all three, which is what the tie-breaking
// rule ranks by.
template <class I>
class RowEntries {
 public:
  explicit RowEntries(const Tensor& t)
      : rows_(t.desc().rows()),
        cols_(t.desc().cols()),
        dense_(t.format() == Format::kDense),
        dtype_(t.desc().dtype),
        value_size_(SizeOf(t.desc().dtype)),
        values_(t.component("values")->as<std::byte>()) {
    if (dense_) return;
    col_idx_ = t.data<I>("col_idx");
    start_.assign(rows_ + 1, 0);
    if (t.format() == Format::kCsr) {
      std::span<const I> rp = t.data<I>("row_ptr");
      for (int64_t r = 0; r <= rows_; ++r) start_[r] = rp[r];
    } else {  // COO, sorted row-major
      std::span<const I> ri = t.data<I>("row_idx");
      for (const I r : ri) ++start_[r + 1];
      for (int64_t r = 0; r < rows_; ++r) start_[r + 1] += start_[r];
    }
  }

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool dense() const { return dense_; }
  DType dtype() const { return dtype_; }
  int64_t value_size() const { return value_size_; }
  const std::byte* values() const { return values_; }

  // Entries of row r are the numbers [begin(r), end(r)).
  int64_t begin(int64_t r) const { return dense_ ? r * cols_ : start_[r]; }
  int64_t end(int64_t r) const { return dense_ ? (r + 1) * cols_ : start_[r + 1]; }
  // Column of entry e, which lies in row r.
  int64_t col(int64_t r, int64_t e) const {
    return dense_ ? e - r * cols_ : static_cast<int64_t>(col_idx_[e]);
  }
  // Entries in all.
  int64_t entries() const { return dense_ ? rows_ * cols_ : start_[rows_]; }
  float abs(int64_t e) const { return AbsValueAt(values_, dtype_, e); }

 private:
  int64_t rows_, cols_;
  bool dense_;
  DType dtype_;
  int64_t value_size_;
  const std::byte* values_;
  std::span<const I> col_idx_;
  std::vector<int64_t> start_;  // sparse: row starts
};

// A candidate for keeping: its magnitude (|w| or a block's squared norm) and
// its row-major position (entry number or block number).
struct Ranked {
  double key;
  int64_t pos;
};
// The ranking order: larger key first, then the smaller position.
inline bool Outranks(const Ranked& a, const Ranked& b) {
  return a.key > b.key || (a.key == b.key && a.pos < b.pos);
}

// How many of `total` positions a target sparsity keeps:
// total - round(sparsity * total), within [0, total].
int64_t KeepCount(int64_t total, double sparsity);

// Index dtype of a result described by `result`: the input's when the input
// is sparse and that dtype can index the result, otherwise the narrowest.
DType ResultIndexType(const TensorDesc& input, TensorDesc result);

// The modes. `t` is a validated canonical dense (2-D), COO or CSR host
// tensor; options have passed CheckPrune.
absl::StatusOr<Tensor> PruneMagnitude(const Tensor& t, const PruneOptions& options);
absl::StatusOr<Tensor> PruneNm(const Tensor& t, const PruneOptions& options);
absl::StatusOr<Tensor> PruneBlock(const Tensor& t, const PruneOptions& options);

}  // namespace sparsed::prune_internal
