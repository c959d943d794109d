// Validation of a compressed index structure (pointers + indices), shared by
// CSR (row_ptr/col_idx), CSC (col_ptr/row_idx) and BSR
// (block_row_ptr/block_col_idx).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::format {

// The words error messages use for one compressed structure.
struct CompressedNames {
  std::string_view ptr;       // "row_ptr"
  std::string_view idx;       // "col_idx"
  std::string_view extent;    // "cols": what idx must stay below
  std::string_view major;     // "row": what one pointer range is
  std::string_view pointers;  // "row pointers"
  std::string_view minors;    // "columns"
  // Whether an upload may ask for the order to be fixed (CSR, CSC): the
  // error then says how.
  bool sortable = false;
};

inline constexpr CompressedNames kCsrNames{"row_ptr",      "col_idx", "cols", "row",
                                           "row pointers", "columns", true};
inline constexpr CompressedNames kCscNames{"col_ptr",         "row_idx", "rows", "column",
                                           "column pointers", "rows",    true};
inline constexpr CompressedNames kBsrNames{"block_row_ptr", "block_col_idx",      "block_col_count",
                                           "block row",     "block row pointers", "block columns"};

// ptr has major_count + 1 entries, idx has nnz. ptr[0] == 0, non-decreasing,
// within [0, nnz], ptr[major_count] == nnz; idx in [0, extent); strictly
// increasing within a pointer range when `sorted`. Pointers are checked
// before any idx access, so that nothing out of bounds is ever read.
template <class I>
absl::Status CheckCompressed(std::span<const I> ptr, std::span<const I> idx, int64_t major_count,
                             int64_t extent, int64_t nnz, bool sorted, const CompressedNames& n,
                             std::string_view field) {
  auto invalid = [](std::string msg) { return absl::InvalidArgumentError(std::move(msg)); };
  if (ptr[0] != 0) {
    return invalid(StrCat(field, ".", n.ptr, "[0] = ", int64_t{ptr[0]}, " must be 0"));
  }
  for (int64_t i = 1; i <= major_count; ++i) {
    const int64_t cur = ptr[i], prev = ptr[i - 1];
    if (cur < prev) {
      return invalid(StrCat(field, ".", n.ptr, "[", i, "] = ", cur, " is less than ", n.ptr, "[",
                            i - 1, "] = ", prev, " (", n.pointers, " must be non-decreasing)"));
    }
    if (cur > nnz) {
      return invalid(
          StrCat(field, ".", n.ptr, "[", i, "] = ", cur, " is greater than nnz = ", nnz));
    }
  }
  if (const int64_t last = ptr[major_count]; last != nnz) {
    return invalid(StrCat(field, ".", n.ptr, "[", major_count, "] = ", last, " must equal nnz = ",
                          nnz, " (the last ", n.major, " pointer ends the last ", n.major, ")"));
  }
  for (int64_t r = 0; r < major_count; ++r) {
    for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
      const int64_t c = idx[e];
      if (c < 0 || c >= extent) {
        return invalid(StrCat(field, ".", n.idx, "[", e, "] = ", c, " is outside [0, ", n.extent,
                              " = ", extent, ") (", n.major, " ", r, ")"));
      }
      if (sorted && e > ptr[r] && c <= int64_t{idx[e - 1]}) {
        return invalid(StrCat(field, ".", n.idx, "[", e, "] = ", c, " is not greater than ", n.idx,
                              "[", e - 1, "] = ", int64_t{idx[e - 1]}, " (", n.major, " ", r, "; ",
                              n.minors, " must be strictly increasing within a ", n.major,
                              n.sortable ? "; set sort_and_sum_duplicates to have them sorted and "
                                           "duplicates summed)"
                                         : ")"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed::format
