#include "spy_render.h"

#include <algorithm>
#include <cmath>

namespace sparsed::client::cli {
namespace {

double Density(const v1::SpyGrid& grid, int64_t rows, int64_t cols, int64_t i, int64_t j) {
  const int64_t area = SpyCellArea(grid, rows, cols, i, j);
  const int64_t count = grid.counts(static_cast<int>(i * grid.width() + j));
  return area > 0 ? std::clamp(static_cast<double>(count) / static_cast<double>(area), 0.0, 1.0)
                  : 0.0;
}

// Cells the response really carries (a short counts array draws as empty).
bool HasCell(const v1::SpyGrid& grid, int64_t i, int64_t j) {
  return i * grid.width() + j < grid.counts_size();
}

}  // namespace

int64_t SpyCellArea(const v1::SpyGrid& grid, int64_t rows, int64_t cols, int64_t i, int64_t j) {
  const int64_t r = std::clamp<int64_t>(rows - i * grid.cell_rows(), 0, grid.cell_rows());
  const int64_t c = std::clamp<int64_t>(cols - j * grid.cell_cols(), 0, grid.cell_cols());
  return r * c;
}

std::vector<uint8_t> SpyPixels(const v1::SpyGrid& grid, int64_t rows, int64_t cols) {
  std::vector<uint8_t> pixels(static_cast<size_t>(grid.height() * grid.width()), 255);
  for (int64_t i = 0; i < grid.height(); ++i) {
    for (int64_t j = 0; j < grid.width(); ++j) {
      if (!HasCell(grid, i, j) || grid.counts(static_cast<int>(i * grid.width() + j)) == 0) {
        continue;
      }
      const double d = Density(grid, rows, cols, i, j);
      pixels[i * grid.width() + j] = static_cast<uint8_t>(std::lround(224.0 * (1.0 - d)));
    }
  }
  return pixels;
}

std::vector<std::string> SpyAscii(const v1::SpyGrid& grid, int64_t rows, int64_t cols) {
  std::vector<std::string> lines;
  for (int64_t i = 0; i < grid.height(); ++i) {
    std::string line(static_cast<size_t>(grid.width()), kSpyShades[0]);
    for (int64_t j = 0; j < grid.width(); ++j) {
      if (!HasCell(grid, i, j) || grid.counts(static_cast<int>(i * grid.width() + j)) == 0) {
        continue;
      }
      const double d = Density(grid, rows, cols, i, j);
      const int k = std::clamp(static_cast<int>(std::ceil(9.0 * d)), 1, 9);
      line[j] = kSpyShades[k];
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace sparsed::client::cli
