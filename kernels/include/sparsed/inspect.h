// Inspection of a tensor: sizes, density, row-length statistics, spy grid.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed {

struct RowLengthStats {
  int64_t min = 0;
  int64_t max = 0;
  double mean = 0.0;
  double std = 0.0;  // population standard deviation
  // histogram[i] counts rows whose length is in [edges[i], edges[i+1]);
  // edges are 0, 1, 2, 4, 8, ... up to just above max (a row of length 0
  // falls in the first bucket).
  std::vector<int64_t> edges;
  std::vector<int64_t> histogram;
};

struct TensorStats {
  TensorDesc desc;
  int64_t stored = 0;    // scalar entries the arrays store (BSR fill included)
  int64_t nonzeros = 0;  // stored entries whose value is not zero
  double density = 0.0;  // nonzeros / (rows * cols)
  int64_t bytes = 0;
  RowLengthStats rows;  // non-zeros per row
};

// Statistics of a valid host tensor.
absl::StatusOr<TensorStats> Inspect(const Tensor& t);

// Non-zero counts of the pattern binned onto a grid of at most
// max_height x max_width cells (each cell covers cell_rows x cell_cols
// entries; one entry per cell when the matrix fits).
struct SpyGrid {
  int64_t height = 0;
  int64_t width = 0;
  int64_t cell_rows = 1;
  int64_t cell_cols = 1;
  std::vector<int64_t> counts;  // height * width, row-major
};
absl::StatusOr<SpyGrid> Spy(const Tensor& t, int64_t max_height, int64_t max_width);

}  // namespace sparsed
