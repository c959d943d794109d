// Test helpers for the format/validation/SpMM tests: build tensors from plain
// vectors and densify them with naive loops (independent of Convert).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "sparsed/tensor.h"

namespace sparsed::test {

struct Triplet {
  int64_t r = 0, c = 0;
  float v = 0;
};

inline Tensor MustAllocate(const TensorDesc& d) {
  absl::StatusOr<Tensor> t = Tensor::Allocate(d);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? std::move(t).value() : Tensor();
}

// Writes int64 values into an index component of either index dtype.
inline void SetIndices(Tensor& t, std::string_view name, const std::vector<int64_t>& v) {
  if (t.desc().index_dtype == DType::kI64) {
    std::span<int64_t> s = t.data<int64_t>(name);
    ASSERT_EQ(s.size(), v.size()) << name;
    std::copy(v.begin(), v.end(), s.begin());
  } else {
    std::span<int32_t> s = t.data<int32_t>(name);
    ASSERT_EQ(s.size(), v.size()) << name;
    for (size_t i = 0; i < v.size(); ++i) s[i] = static_cast<int32_t>(v[i]);
  }
}

inline std::vector<int64_t> GetIndices(const Tensor& t, std::string_view name) {
  if (t.desc().index_dtype == DType::kI64) {
    std::span<const int64_t> s = t.data<int64_t>(name);
    return {s.begin(), s.end()};
  }
  std::span<const int32_t> s = t.data<int32_t>(name);
  return {s.begin(), s.end()};
}

inline std::vector<float> GetValues(const Tensor& t) {
  std::span<const float> s = t.data<float>("values");
  return {s.begin(), s.end()};
}

inline void SetValues(Tensor& t, const std::vector<float>& v) {
  std::span<float> s = t.data<float>("values");
  ASSERT_EQ(s.size(), v.size());
  std::copy(v.begin(), v.end(), s.begin());
}

inline Tensor MakeDense(std::vector<int64_t> shape, const std::vector<float>& v) {
  Tensor t = MustAllocate({Format::kDense, DType::kF32, DType::kI32, std::move(shape), 0});
  SetValues(t, v);
  return t;
}

// COO with the entries stored in the given order.
inline Tensor MakeCoo(int64_t rows, int64_t cols, const std::vector<Triplet>& e, DType idx) {
  Tensor t =
      MustAllocate({Format::kCoo, DType::kF32, idx, {rows, cols}, static_cast<int64_t>(e.size())});
  std::vector<int64_t> r, c;
  std::vector<float> v;
  for (const Triplet& x : e) {
    r.push_back(x.r);
    c.push_back(x.c);
    v.push_back(x.v);
  }
  SetIndices(t, "row_idx", r);
  SetIndices(t, "col_idx", c);
  SetValues(t, v);
  return t;
}

inline Tensor MakeCsr(int64_t rows, int64_t cols, const std::vector<int64_t>& row_ptr,
                      const std::vector<int64_t>& col_idx, const std::vector<float>& values,
                      DType idx) {
  Tensor t = MustAllocate(
      {Format::kCsr, DType::kF32, idx, {rows, cols}, static_cast<int64_t>(col_idx.size())});
  SetIndices(t, "row_ptr", row_ptr);
  SetIndices(t, "col_idx", col_idx);
  SetValues(t, values);
  return t;
}

// CSR from entries grouped by row (order within a row kept as given).
inline Tensor MakeCsrFromTriplets(int64_t rows, int64_t cols, std::vector<Triplet> e, DType idx) {
  std::stable_sort(e.begin(), e.end(),
                   [](const Triplet& x, const Triplet& y) { return x.r < y.r; });
  std::vector<int64_t> row_ptr(rows + 1, 0), col;
  std::vector<float> val;
  for (const Triplet& x : e) {
    ++row_ptr[x.r + 1];
    col.push_back(x.c);
    val.push_back(x.v);
  }
  for (int64_t r = 0; r < rows; ++r) row_ptr[r + 1] += row_ptr[r];
  return MakeCsr(rows, cols, row_ptr, col, val, idx);
}

inline Tensor MakeSparse(Format f, int64_t rows, int64_t cols, const std::vector<Triplet>& e,
                         DType idx) {
  return f == Format::kCoo ? MakeCoo(rows, cols, e, idx) : MakeCsrFromTriplets(rows, cols, e, idx);
}

// Row-major [rows, cols] doubles; duplicates are summed. Reads the arrays
// directly with plain loops.
inline std::vector<double> Densify(const Tensor& t) {
  const TensorDesc& d = t.desc();
  const int64_t rows = d.rows(), cols = d.cols();
  std::vector<double> out(rows * cols, 0.0);
  std::vector<float> v = GetValues(t);
  if (d.format == Format::kDense) {
    for (size_t i = 0; i < v.size(); ++i) out[i] = v[i];
  } else if (d.format == Format::kCoo) {
    std::vector<int64_t> r = GetIndices(t, "row_idx"), c = GetIndices(t, "col_idx");
    for (size_t i = 0; i < v.size(); ++i) out[r[i] * cols + c[i]] += v[i];
  } else {
    std::vector<int64_t> rp = GetIndices(t, "row_ptr"), c = GetIndices(t, "col_idx");
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t e = rp[r]; e < rp[r + 1]; ++e) out[r * cols + c[e]] += v[e];
    }
  }
  return out;
}

// Distinct random positions in row-major order with nonzero values in
// [-1, 1]; `long_row` >= 0 makes that row completely full.
inline std::vector<Triplet> RandomTriplets(int64_t rows, int64_t cols, double density,
                                           std::mt19937_64& rng, int64_t long_row = -1) {
  std::bernoulli_distribution keep(density);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  std::vector<Triplet> e;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      if (r == long_row || keep(rng)) {
        float v = val(rng);
        if (v == 0.0f) v = 0.5f;
        e.push_back({r, c, v});
      }
    }
  }
  return e;
}

inline std::vector<float> RandomFloats(int64_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = val(rng);
  return v;
}

// Reads a Matrix Market coordinate file into entries in file order
// (symmetric storage expanded, pattern entries = 1). A deliberately minimal
// reader, independent of sparsed::io.
inline std::vector<Triplet> ReadMtx(const std::string& path, int64_t* rows, int64_t* cols) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::string line;
  std::getline(in, line);
  const bool symmetric = line.find("symmetric") != std::string::npos;
  const bool pattern = line.find("pattern") != std::string::npos;
  while (std::getline(in, line) && (line.empty() || line[0] == '%')) {
  }
  int64_t nnz = 0;
  std::istringstream(line) >> *rows >> *cols >> nnz;
  std::vector<Triplet> e;
  for (int64_t i = 0; i < nnz; ++i) {
    int64_t r, c;
    double v = 1.0;
    in >> r >> c;
    if (!pattern) in >> v;
    e.push_back({r - 1, c - 1, static_cast<float>(v)});
    if (symmetric && r != c) e.push_back({c - 1, r - 1, static_cast<float>(v)});
  }
  return e;
}

}  // namespace sparsed::test
