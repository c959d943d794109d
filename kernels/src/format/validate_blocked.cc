// Content validation of BSR and N:M tensors.
#include <span>

#include "absl/strings/str_cat.h"
#include "compressed_check.h"
#include "host_csr.h"
#include "nm_meta.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "validate_formats.h"

namespace sparsed::format {
namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

std::string Hex32(int32_t w) {
  return absl::StrCat("0x", absl::Hex(static_cast<uint32_t>(w), absl::kZeroPad8));
}

template <class I>
absl::Status CheckBsrOf(const Tensor& t, std::string_view field) {
  const TensorDesc& d = t.desc();
  const int64_t R = d.block_rows, C = d.block_cols, rows = d.rows(), cols = d.cols();
  const int64_t brc = d.block_row_count(), bcc = d.block_col_count();
  std::span<const I> bp = t.data<I>("block_row_ptr");
  std::span<const I> bc = t.data<I>("block_col_idx");
  // Block columns are always sorted: there is no canonicalisation for BSR.
  RETURN_IF_ERROR(CheckCompressed<I>(bp, bc, brc, bcc, d.nnz, /*sorted=*/true, kBsrNames, field));
  // Edge blocks reach past the matrix; kernels multiply the padding, so it
  // must hold zeros.
  const bool ragged_rows = rows % R != 0, ragged_cols = cols % C != 0;
  if (!ragged_rows && !ragged_cols) return absl::OkStatus();
  const int64_t es = SizeOf(d.dtype);
  const void* v = t.component("values")->data();
  for (int64_t br = 0; br < brc; ++br) {
    const bool last_row = br == brc - 1;
    for (int64_t blk = bp[br]; blk < bp[br + 1]; ++blk) {
      const bool last_col = bc[blk] == bcc - 1;
      if (!(ragged_rows && last_row) && !(ragged_cols && last_col)) continue;
      for (int64_t i = 0; i < R; ++i) {
        for (int64_t j = 0; j < C; ++j) {
          const int64_t r = br * R + i, c = bc[blk] * C + j;
          if (r < rows && c < cols) continue;
          const int64_t pos = (blk * R + i) * C + j;
          const uint32_t bits = LoadBits(v, es, pos);
          if (IsZeroBits(es, bits)) continue;
          return Invalid(StrCat(field, ".values[", pos, "] = ", BitsToFloat(d.dtype, bits),
                                " is zero padding of block ", blk, " (block row ", br,
                                ", block col ", int64_t{bc[blk]}, ") at row ", r, ", col ", c,
                                ", outside the [", rows, ", ", cols, "] matrix, and must be 0"));
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPacked24(const Tensor& t, std::string_view field) {
  const TensorDesc& d = t.desc();
  const int64_t rows = d.rows(), groups = d.nm_groups(), words = PackedWordsPerRow(groups);
  const NmMeta meta(t);
  std::span<const int32_t> raw = t.data<int32_t>("meta");
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const uint32_t nib = meta.Nibble(r, g);
      const uint32_t first = nib & 3u, second = nib >> 2;
      if (first < second) continue;
      const int64_t w = meta.WordIndex(r, g), bit = 4 * (g % 8);
      return Invalid(
          StrCat(field, ".meta[", w, "] = ", Hex32(raw[w]), " (row ", r, "): group ", g, " (bits ",
                 bit, "..", bit + 3, ") = ", nib, " keeps positions ", first, " and ", second,
                 first == second ? "; the two positions must differ"
                                 : "; the first (low 2 bits) must be less than the second"));
    }
    if (groups % 8 != 0) {
      const int64_t w = r * words + words - 1, used_bits = 4 * (groups % 8);
      const uint32_t unused = static_cast<uint32_t>(raw[w]) >> used_bits;
      if (unused != 0) {
        return Invalid(StrCat(field, ".meta[", w, "] = ", Hex32(raw[w]), " (row ", r,
                              ", last word): bits ", used_bits, "..31 are unused (", groups,
                              " groups per row) and must be 0"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckPositions(const Tensor& t, std::string_view field) {
  const TensorDesc& d = t.desc();
  const int64_t groups = d.nm_groups(), n = d.nm_n, m = d.nm_m;
  std::span<const int32_t> meta = t.data<int32_t>("meta");
  for (int64_t i = 0; i < d.nnz; ++i) {
    const int64_t p = meta[i], s = i % n, g = (i / n) % groups, r = i / n / groups;
    if (p < 0 || p >= m) {
      return Invalid(StrCat(field, ".meta[", i, "] = ", p, " is outside [0, m = ", m, ") (row ", r,
                            ", group ", g, ", slot ", s, ")"));
    }
    if (s > 0 && p <= meta[i - 1]) {
      return Invalid(StrCat(field, ".meta[", i, "] = ", p, " is not greater than meta[", i - 1,
                            "] = ", meta[i - 1], " (row ", r, ", group ", g,
                            "; positions must be strictly increasing within a group)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckBsrContent(const Tensor& t, std::string_view field) {
  return VisitIndexType(t.desc().index_dtype,
                        [&](auto tag) { return CheckBsrOf<decltype(tag)>(t, field); });
}

absl::Status CheckNmContent(const Tensor& t, std::string_view field) {
  return t.desc().nm_packed_2_4() ? CheckPacked24(t, field) : CheckPositions(t, field);
}

}  // namespace sparsed::format
