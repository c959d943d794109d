#include "spmm_matrices.h"

#include <algorithm>
#include <random>
#include <vector>

#include "sparsed/convert.h"
#include "sparsed/io/matrix_market.h"
#include "sparsed/status.h"

namespace sparsed::bench {
namespace {

// Builds a CSR from per-row sorted, unique column lists.
Tensor FromRows(int64_t rows, int64_t cols, const std::vector<int64_t>& row_ptr,
                const std::vector<int32_t>& col_idx, uint64_t seed) {
  const int64_t nnz = static_cast<int64_t>(col_idx.size());
  Tensor t = Tensor::Allocate({Format::kCsr, DType::kF32, DType::kI32, {rows, cols}, nnz}).value();
  std::span<int32_t> rp = t.data<int32_t>("row_ptr");
  for (int64_t r = 0; r <= rows; ++r) rp[r] = static_cast<int32_t>(row_ptr[r]);
  std::copy(col_idx.begin(), col_idx.end(), t.data<int32_t>("col_idx").begin());
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_real_distribution<float> val(-1, 1);
  for (float& v : t.data<float>("values")) v = val(rng);
  return t;
}

}  // namespace

Tensor UniformRandomCsr(int64_t rows, int64_t cols, double density, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::binomial_distribution<int64_t> len(cols, density);
  std::uniform_int_distribution<int32_t> col(0, static_cast<int32_t>(cols - 1));
  std::vector<int64_t> row_ptr{0};
  std::vector<int32_t> col_idx;
  col_idx.reserve(static_cast<size_t>(rows * cols * density * 1.01));
  std::vector<int32_t> cs;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t want = len(rng);
    cs.clear();
    while (static_cast<int64_t>(cs.size()) < want) {
      while (static_cast<int64_t>(cs.size()) < want) cs.push_back(col(rng));
      std::sort(cs.begin(), cs.end());
      cs.erase(std::unique(cs.begin(), cs.end()), cs.end());
    }
    col_idx.insert(col_idx.end(), cs.begin(), cs.end());
    row_ptr.push_back(static_cast<int64_t>(col_idx.size()));
  }
  return FromRows(rows, cols, row_ptr, col_idx, seed);
}

Tensor RmatCsr(int scale, int edge_factor, uint64_t seed) {
  const int64_t n = int64_t{1} << scale;
  const int64_t edges = n * edge_factor;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::pair<int32_t, int32_t>> e;
  e.reserve(edges);
  for (int64_t i = 0; i < edges; ++i) {
    int64_t r = 0, c = 0;
    for (int bit = scale - 1; bit >= 0; --bit) {
      const double x = u(rng);
      // Quadrants a=0.57 (top-left), b=0.19 (top-right), c=0.19, d=0.05.
      if (x < 0.57) {
      } else if (x < 0.76) {
        c |= int64_t{1} << bit;
      } else if (x < 0.95) {
        r |= int64_t{1} << bit;
      } else {
        r |= int64_t{1} << bit;
        c |= int64_t{1} << bit;
      }
    }
    e.emplace_back(static_cast<int32_t>(r), static_cast<int32_t>(c));
  }
  std::sort(e.begin(), e.end());
  e.erase(std::unique(e.begin(), e.end()), e.end());
  std::vector<int64_t> row_ptr(n + 1, 0);
  std::vector<int32_t> col_idx;
  col_idx.reserve(e.size());
  for (const auto& [r, c] : e) {
    ++row_ptr[r + 1];
    col_idx.push_back(c);
  }
  for (int64_t r = 0; r < n; ++r) row_ptr[r + 1] += row_ptr[r];
  return FromRows(n, n, row_ptr, col_idx, seed);
}

Tensor Laplacian5Csr(int64_t grid) {
  const int64_t n = grid * grid;
  std::vector<int64_t> row_ptr{0};
  std::vector<int32_t> col_idx;
  col_idx.reserve(5 * n);
  for (int64_t y = 0; y < grid; ++y) {
    for (int64_t x = 0; x < grid; ++x) {
      const int64_t i = y * grid + x;
      if (y > 0) col_idx.push_back(static_cast<int32_t>(i - grid));
      if (x > 0) col_idx.push_back(static_cast<int32_t>(i - 1));
      col_idx.push_back(static_cast<int32_t>(i));
      if (x + 1 < grid) col_idx.push_back(static_cast<int32_t>(i + 1));
      if (y + 1 < grid) col_idx.push_back(static_cast<int32_t>(i + grid));
      row_ptr.push_back(static_cast<int64_t>(col_idx.size()));
    }
  }
  Tensor t = FromRows(n, n, row_ptr, col_idx, 0);
  // The stencil's own values: 4 on the diagonal, -1 off it.
  std::span<const int32_t> rp = t.data<int32_t>("row_ptr"), ci = t.data<int32_t>("col_idx");
  std::span<float> v = t.data<float>("values");
  for (int64_t r = 0; r < n; ++r) {
    for (int32_t e = rp[r]; e < rp[r + 1]; ++e) v[e] = ci[e] == r ? 4.0f : -1.0f;
  }
  return t;
}

absl::StatusOr<Tensor> MatrixMarketCsr(const std::string& path) {
  ASSIGN_OR_RETURN(Tensor t, io::ReadMatrixMarket(path));
  return Convert(t, Format::kCsr, DType::kI32);
}

}  // namespace sparsed::bench
