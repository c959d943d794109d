// Drawing a spy grid (non-zeros per cell, from Tensors.Inspect) as grayscale
// pixels or as shading characters. A cell's density is its count over the
// entries it covers (edge cells cover fewer than cell_rows x cell_cols).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sparsed/v1/tensors.pb.h"

namespace sparsed::client::cli {

// Characters from empty to full.
inline constexpr char kSpyShades[] = " .:-=+*#%@";

// Entries of the rows x cols matrix that cell (i, j) covers.
int64_t SpyCellArea(const v1::SpyGrid& grid, int64_t rows, int64_t cols, int64_t i, int64_t j);

// One byte per cell, row-major: 255 (white) for an empty cell, otherwise
// round(224 * (1 - density)), so that the sparsest non-empty cell still shows
// (at most 224) and a full cell is black.
std::vector<uint8_t> SpyPixels(const v1::SpyGrid& grid, int64_t rows, int64_t cols);

// One string per grid row: ' ' for an empty cell, otherwise kSpyShades[k]
// with k = ceil(9 * density) in [1, 9].
std::vector<std::string> SpyAscii(const v1::SpyGrid& grid, int64_t rows, int64_t cols);

}  // namespace sparsed::client::cli
