// Visits the non-zero entries of a host tensor of any format, reading the
// format's own arrays (nothing is converted or densified). Stored zeros, BSR
// zero fill (padding of edge blocks included) and N:M zero slots are skipped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor.h"

namespace sparsed::inspect_internal {

// True when element e of a values array is not ±0 (NaN counts as non-zero).
inline bool NonzeroAt(const std::byte* values, DType dtype, int64_t e) {
  if (dtype == DType::kF32) {
    float f;
    std::memcpy(&f, values + e * 4, 4);
    return f != 0.0f;
  }
  uint16_t h;
  std::memcpy(&h, values + e * 2, 2);
  return (h & 0x7fffu) != 0;  // f16 and bf16 alike: all bits but the sign clear is zero
}

// Indices are range-checked as they are read for the formats whose content
// validation lives elsewhere (CSC, BSR, N:M), so a malformed tensor gives
// INVALID_ARGUMENT instead of an out-of-bounds read. Dense, COO and CSR must
// have passed ValidateTensor.
template <class I, class F>
absl::Status ForEachNonzeroTyped(const Tensor& t, F&& f) {
  const TensorDesc& d = t.desc();
  const int64_t rows = d.rows(), cols = d.cols(), nnz = d.nnz;
  const std::byte* v = t.component("values")->as<std::byte>();
  const auto nonzero = [&](int64_t e) { return NonzeroAt(v, d.dtype, e); };
  const auto bad = [](std::string_view name, int64_t i, int64_t value, std::string_view why) {
    return absl::InvalidArgumentError(StrCat("tensor.", name, "[", i, "] = ", value, " ", why));
  };
  // Pointer arrays: start at 0, never decrease, end at `total`.
  const auto check_ptr = [&](std::string_view name, std::span<const I> p,
                             int64_t total) -> absl::Status {
    for (size_t i = 0; i < p.size(); ++i) {
      const int64_t x = p[i];
      const int64_t lo = i == 0 ? 0 : static_cast<int64_t>(p[i - 1]);
      if (x < lo || x > total || (i == 0 && x != 0) || (i + 1 == p.size() && x != total)) {
        return bad(name, static_cast<int64_t>(i), x, "breaks the pointer array");
      }
    }
    return absl::OkStatus();
  };
  switch (d.format) {
    case Format::kDense:
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          if (nonzero(r * cols + c)) f(r, c);
        }
      }
      break;
    case Format::kCoo: {
      std::span<const I> ri = t.data<I>("row_idx"), ci = t.data<I>("col_idx");
      for (int64_t e = 0; e < nnz; ++e) {
        if (nonzero(e)) f(static_cast<int64_t>(ri[e]), static_cast<int64_t>(ci[e]));
      }
      break;
    }
    case Format::kCsr: {
      std::span<const I> rp = t.data<I>("row_ptr"), ci = t.data<I>("col_idx");
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t e = rp[r]; e < rp[r + 1]; ++e) {
          if (nonzero(e)) f(r, static_cast<int64_t>(ci[e]));
        }
      }
      break;
    }
    case Format::kCsc: {
      std::span<const I> cp = t.data<I>("col_ptr"), ri = t.data<I>("row_idx");
      RETURN_IF_ERROR(check_ptr("col_ptr", cp, nnz));
      for (int64_t c = 0; c < cols; ++c) {
        for (int64_t e = cp[c]; e < cp[c + 1]; ++e) {
          const int64_t r = ri[e];
          if (r < 0 || r >= rows) return bad("row_idx", e, r, "is outside [0, rows)");
          if (nonzero(e)) f(r, c);
        }
      }
      break;
    }
    case Format::kBsr: {
      const int64_t R = d.block_rows, C = d.block_cols;
      std::span<const I> bp = t.data<I>("block_row_ptr"), bci = t.data<I>("block_col_idx");
      RETURN_IF_ERROR(check_ptr("block_row_ptr", bp, nnz));
      for (int64_t br = 0; br < d.block_row_count(); ++br) {
        for (int64_t k = bp[br]; k < bp[br + 1]; ++k) {
          const int64_t bc = bci[k];
          if (bc < 0 || bc >= d.block_col_count()) {
            return bad("block_col_idx", k, bc, "is outside [0, block columns)");
          }
          for (int64_t i = 0; i < R && br * R + i < rows; ++i) {
            for (int64_t j = 0; j < C && bc * C + j < cols; ++j) {
              if (nonzero((k * R + i) * C + j)) f(br * R + i, bc * C + j);
            }
          }
        }
      }
      break;
    }
    case Format::kNm: {
      const int64_t n = d.nm_n, m = d.nm_m, groups = d.nm_groups();
      const int64_t words_per_row = (groups + 7) / 8;
      std::span<const int32_t> meta = t.data<int32_t>("meta");
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          for (int64_t s = 0; s < n; ++s) {
            const int64_t slot = (r * groups + g) * n + s;
            int64_t pos;
            if (d.nm_packed_2_4()) {
              const uint32_t word = static_cast<uint32_t>(meta[r * words_per_row + g / 8]);
              pos = (word >> (4 * (g % 8) + 2 * s)) & 3u;
            } else {
              pos = meta[slot];
              if (pos < 0 || pos >= m) return bad("meta", slot, pos, "is outside [0, m)");
            }
            if (nonzero(slot)) f(r, g * m + pos);
          }
        }
      }
      break;
    }
  }
  return absl::OkStatus();
}

// A valid host tensor: `t` itself, or a host copy (in `copy`) of a device
// tensor; ValidateTensor has passed.
absl::StatusOr<const Tensor*> HostTensor(const Tensor& t, std::optional<Tensor>& copy);

template <class F>
absl::Status ForEachNonzero(const Tensor& t, F&& f) {
  return VisitIndexType(t.desc().index_dtype,
                        [&](auto i) { return ForEachNonzeroTyped<decltype(i)>(t, f); });
}

}  // namespace sparsed::inspect_internal
