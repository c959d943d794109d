// Spy: the non-zero pattern binned onto a bounded grid.
#include <algorithm>
#include <optional>
#include <utility>

#include "nonzero_entries.h"
#include "sparsed/inspect.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

constexpr int64_t kMaxSpySide = 4096;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

absl::StatusOr<SpyGrid> Spy(const Tensor& t, int64_t max_height, int64_t max_width) {
  for (auto [name, v] : {std::pair{"max_height", max_height}, std::pair{"max_width", max_width}}) {
    if (v < 1 || v > kMaxSpySide) {
      return absl::InvalidArgumentError(
          StrCat(name, " = ", v, " is outside [1, ", kMaxSpySide, "]"));
    }
  }
  std::optional<Tensor> copy;
  ASSIGN_OR_RETURN(const Tensor* host, inspect_internal::HostTensor(t, copy));
  const int64_t rows = host->desc().rows(), cols = host->desc().cols();
  SpyGrid grid;
  grid.cell_rows = std::max<int64_t>(1, CeilDiv(rows, max_height));
  grid.cell_cols = std::max<int64_t>(1, CeilDiv(cols, max_width));
  grid.height = CeilDiv(rows, grid.cell_rows);
  grid.width = CeilDiv(cols, grid.cell_cols);
  grid.counts.assign(grid.height * grid.width, 0);
  RETURN_IF_ERROR(inspect_internal::ForEachNonzero(*host, [&](int64_t r, int64_t c) {
    ++grid.counts[r / grid.cell_rows * grid.width + c / grid.cell_cols];
  }));
  return grid;
}

}  // namespace sparsed
