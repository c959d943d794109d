// N:M pruning: in every group of m consecutive entries of a row keep the n of
// largest |w| (ties: the smaller position), giving an N:M tensor. The result
// stores rows * (cols / m) * n slots whatever the input's sparsity, so the
// work is O(rows * cols); CheckPrune caps the result at 2^31 values.
#include <algorithm>
#include <cstring>
#include <numeric>

#include "prune_internal.h"
#include "sparsed/status.h"

namespace sparsed::prune_internal {
namespace {

template <class I>
absl::StatusOr<Tensor> PruneNmTyped(const Tensor& t, const PruneOptions& options) {
  const RowEntries<I> m(t);
  const int n = options.nm_n, group = options.nm_m;
  const int64_t rows = m.rows(), cols = m.cols(), groups = cols / group;
  TensorDesc desc{Format::kNm, t.desc().dtype, DType::kI32, {rows, cols}, rows * groups * n};
  desc.nm_n = n;
  desc.nm_m = group;
  desc.index_dtype = ResultIndexType(t.desc(), desc);
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(desc));
  std::byte* values = out.component("values")->as<std::byte>();
  std::span<int32_t> meta = out.data<int32_t>("meta");
  const bool packed = desc.nm_packed_2_4();
  const int64_t words_per_row = (groups + 7) / 8;
  // Packed 2:4 words are built by OR-ing nibbles; unused nibbles stay 0.
  if (packed) std::fill(meta.begin(), meta.end(), 0);

  // One group at a time: |w| and entry number of each position (-1: not
  // stored), so that memory stays O(m) however wide the rows are.
  float key[32];
  int64_t source[32];
  int order[32];
  for (int64_t r = 0; r < rows; ++r) {
    int64_t e = m.begin(r);
    const int64_t row_end = m.end(r);
    for (int64_t g = 0; g < groups; ++g) {
      std::fill(key, key + group, 0.0f);
      std::fill(source, source + group, int64_t{-1});
      for (; e < row_end && m.col(r, e) < (g + 1) * group; ++e) {
        const int64_t p = m.col(r, e) - g * group;
        key[p] = m.abs(e);
        source[p] = e;
      }
      const float* k = key;
      std::iota(order, order + group, 0);
      std::partial_sort(order, order + n, order + group,
                        [k](int a, int b) { return k[a] > k[b] || (k[a] == k[b] && a < b); });
      std::sort(order, order + n);
      const int64_t slot0 = (r * groups + g) * n;
      for (int s = 0; s < n; ++s) {
        const int64_t src = source[order[s]];
        if (src >= 0) {
          CopyValue(values, slot0 + s, m.values(), src, m.value_size());
        } else {
          std::memset(values + (slot0 + s) * m.value_size(), 0, m.value_size());
        }
        if (!packed) meta[slot0 + s] = order[s];
      }
      if (packed) {
        // Nibble of group g: first kept position in the low 2 bits.
        const uint32_t nibble =
            static_cast<uint32_t>(order[0]) | (static_cast<uint32_t>(order[1]) << 2);
        int32_t& word = meta[r * words_per_row + g / 8];
        word = static_cast<int32_t>(static_cast<uint32_t>(word) | (nibble << (4 * (g % 8))));
      }
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<Tensor> PruneNm(const Tensor& t, const PruneOptions& options) {
  return VisitIndexType(t.desc().index_dtype,
                        [&](auto i) { return PruneNmTyped<decltype(i)>(t, options); });
}

}  // namespace sparsed::prune_internal
