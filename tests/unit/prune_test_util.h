// Test helpers for pruning and inspection: matrices held as raw value bits of
// any value dtype, decoded by independent decoders, and tensors (dense, COO,
// CSR, CSC, BSR, N:M) built from them by plain loops that follow the layouts
// documented in sparsed/tensor.h (independent of Convert).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "kernels_test_util.h"
#include "sparsed/tensor.h"

namespace sparsed::test {

inline double DecodeF16(uint16_t h) {
  const int exp = (h >> 10) & 31, man = h & 1023;
  double v = exp == 0 ? std::ldexp(man, -24) : std::ldexp(1024 + man, exp - 25);
  if (exp == 31) v = man == 0 ? INFINITY : NAN;
  return (h & 0x8000) ? -v : v;
}

inline double DecodeBf16(uint16_t h) {
  const int exp = (h >> 7) & 255, man = h & 127;
  double v = exp == 0 ? std::ldexp(man, -133) : std::ldexp(128 + man, exp - 134);
  if (exp == 255) v = man == 0 ? INFINITY : NAN;
  return (h & 0x8000) ? -v : v;
}

inline double DecodeF32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline double Decode(uint32_t bits, DType dtype) {
  if (dtype == DType::kF16) return DecodeF16(static_cast<uint16_t>(bits));
  if (dtype == DType::kBF16) return DecodeBf16(static_cast<uint16_t>(bits));
  return DecodeF32(bits);
}

// A row-major matrix of value bits (16-bit types in the low half).
struct Matrix {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kF32;
  std::vector<uint32_t> bits;

  double Abs(int64_t i) const { return std::fabs(Decode(bits[i], dtype)); }
  bool Zero(int64_t i) const { return Abs(i) == 0.0; }
};

// Random bits of a finite non-zero value; `ties` draws from a few magnitudes
// only, so equal |w| are common.
inline uint32_t RandomBits(DType dtype, bool ties, std::mt19937_64& rng) {
  const uint32_t sign = rng() & 1;
  const uint32_t r = static_cast<uint32_t>(rng());
  switch (dtype) {
    case DType::kF16:
      if (ties) return sign << 15 | (13 + r % 3) << 10;
      if (r % 17 == 0) return sign << 15 | (1 + (r >> 8) % 1023);  // subnormal
      return sign << 15 | (1 + (r >> 4) % 30) << 10 | (r >> 12) % 1024;
    case DType::kBF16:
      if (ties) return sign << 15 | (126 + r % 3) << 7;
      return sign << 15 | (100 + (r >> 4) % 50) << 7 | (r >> 12) % 128;
    default: {
      float f = ties ? 0.25f * static_cast<float>(1 + r % 3)
                     : std::ldexp(static_cast<float>(1 + r % 8388607),
                                  -23 - static_cast<int>((r >> 24) % 8));
      uint32_t u;
      std::memcpy(&u, &f, 4);
      return sign << 31 | u;
    }
  }
}

inline uint32_t NegativeZero(DType dtype) { return dtype == DType::kF32 ? 0x80000000u : 0x8000u; }

// density: chance of a non-zero per position; some zeros are -0.
inline Matrix RandomMatrix(int64_t rows, int64_t cols, DType dtype, double density, bool ties,
                           std::mt19937_64& rng) {
  Matrix m{rows, cols, dtype, std::vector<uint32_t>(rows * cols, 0)};
  std::bernoulli_distribution keep(density), negative_zero(0.1);
  for (uint32_t& b : m.bits) {
    if (keep(rng)) {
      b = RandomBits(dtype, ties, rng);
    } else if (negative_zero(rng)) {
      b = NegativeZero(dtype);
    }
  }
  return m;
}

inline void SetValueBits(Tensor& t, const std::vector<uint32_t>& bits) {
  if (t.desc().dtype == DType::kF32) {
    std::span<uint32_t> s = t.data<uint32_t>("values");
    ASSERT_EQ(s.size(), bits.size());
    std::copy(bits.begin(), bits.end(), s.begin());
  } else {
    std::span<uint16_t> s = t.data<uint16_t>("values");
    ASSERT_EQ(s.size(), bits.size());
    for (size_t i = 0; i < bits.size(); ++i) s[i] = static_cast<uint16_t>(bits[i]);
  }
}

inline std::vector<uint32_t> ValueBits(const Tensor& t) {
  if (t.desc().dtype == DType::kF32) {
    std::span<const uint32_t> s = t.data<uint32_t>("values");
    return {s.begin(), s.end()};
  }
  std::span<const uint16_t> s = t.data<uint16_t>("values");
  return {s.begin(), s.end()};
}

// Positions a sparse tensor built from m stores: the non-zeros plus the
// explicit zeros asked for.
inline std::vector<int64_t> StoredPositions(const Matrix& m, const std::set<int64_t>& zeros) {
  std::vector<int64_t> p;
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (!m.Zero(i) || zeros.count(i)) p.push_back(i);
  }
  return p;
}

// The matrix a tensor built by ToTensor holds: positions a sparse format
// does not store read as +0.
inline Matrix Effective(const Matrix& m, Format f, const std::set<int64_t>& zeros = {}) {
  if (f == Format::kDense) return m;
  Matrix e = m;
  for (int64_t i = 0; i < m.rows * m.cols; ++i) {
    if (m.Zero(i) && !zeros.count(i)) e.bits[i] = 0;
  }
  return e;
}

// Dense, COO, CSR or CSC holding m (sparse: non-zeros plus `zeros`).
inline Tensor ToTensor(const Matrix& m, Format f, DType idx, const std::set<int64_t>& zeros = {}) {
  if (f == Format::kDense) {
    Tensor t = MustAllocate({Format::kDense, m.dtype, DType::kI32, {m.rows, m.cols}, 0});
    SetValueBits(t, m.bits);
    return t;
  }
  std::vector<int64_t> pos = StoredPositions(m, zeros);
  if (f == Format::kCsc) {  // column-major order
    std::stable_sort(pos.begin(), pos.end(),
                     [&](int64_t a, int64_t b) { return a % m.cols < b % m.cols; });
  }
  const int64_t nnz = static_cast<int64_t>(pos.size());
  Tensor t = MustAllocate({f, m.dtype, idx, {m.rows, m.cols}, nnz});
  std::vector<int64_t> rows, cols, ptr(f == Format::kCsc ? m.cols + 1 : m.rows + 1, 0);
  std::vector<uint32_t> bits;
  for (int64_t p : pos) {
    rows.push_back(p / m.cols);
    cols.push_back(p % m.cols);
    bits.push_back(m.bits[p]);
    ++ptr[(f == Format::kCsc ? p % m.cols : p / m.cols) + 1];
  }
  for (size_t i = 1; i < ptr.size(); ++i) ptr[i] += ptr[i - 1];
  if (f == Format::kCoo) {
    SetIndices(t, "row_idx", rows);
    SetIndices(t, "col_idx", cols);
  } else if (f == Format::kCsr) {
    SetIndices(t, "row_ptr", ptr);
    SetIndices(t, "col_idx", cols);
  } else {
    SetIndices(t, "col_ptr", ptr);
    SetIndices(t, "row_idx", rows);
  }
  SetValueBits(t, bits);
  return t;
}

// BSR storing every R x C block that holds a stored position of m (all
// non-zeros plus `zeros`), zero-padded at the edges.
inline Tensor ToBsr(const Matrix& m, int64_t R, int64_t C, DType idx,
                    const std::set<int64_t>& zeros = {}) {
  const int64_t brc = (m.rows + R - 1) / R, bcc = (m.cols + C - 1) / C;
  std::set<int64_t> blocks;
  for (int64_t p : StoredPositions(m, zeros)) blocks.insert(p / m.cols / R * bcc + p % m.cols / C);
  TensorDesc d{Format::kBsr, m.dtype, idx, {m.rows, m.cols}, static_cast<int64_t>(blocks.size())};
  d.block_rows = R;
  d.block_cols = C;
  Tensor t = MustAllocate(d);
  std::vector<int64_t> ptr(brc + 1, 0), bcol;
  std::vector<uint32_t> bits;
  for (int64_t b : blocks) {
    ++ptr[b / bcc + 1];
    bcol.push_back(b % bcc);
    for (int64_t i = 0; i < R; ++i) {
      for (int64_t j = 0; j < C; ++j) {
        const int64_t r = b / bcc * R + i, c = b % bcc * C + j;
        bits.push_back(r < m.rows && c < m.cols ? m.bits[r * m.cols + c] : 0);
      }
    }
  }
  for (int64_t i = 0; i < brc; ++i) ptr[i + 1] += ptr[i];
  SetIndices(t, "block_row_ptr", ptr);
  SetIndices(t, "block_col_idx", bcol);
  SetValueBits(t, bits);
  return t;
}

// N:M from a matrix that has at most n non-zeros per group: the non-zeros'
// positions first, topped up with the smallest zero positions.
inline Tensor ToNm(const Matrix& m, int n, int group) {
  const int64_t groups = m.cols / group;
  TensorDesc d{Format::kNm, m.dtype, DType::kI32, {m.rows, m.cols}, m.rows * groups * n};
  d.nm_n = n;
  d.nm_m = group;
  Tensor t = MustAllocate(d);
  const bool packed = n == 2 && group == 4;
  const int64_t words = (groups + 7) / 8;
  std::vector<uint32_t> bits;
  std::vector<int32_t> meta(packed ? m.rows * words : m.rows * groups * n, 0);
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      std::set<int> kept;
      for (int p = 0; p < group; ++p) {
        if (!m.Zero(r * m.cols + g * group + p)) kept.insert(p);
      }
      EXPECT_LE(kept.size(), static_cast<size_t>(n));
      for (int p = 0; static_cast<int>(kept.size()) < n; ++p) kept.insert(p);
      int s = 0;
      for (int p : kept) {
        bits.push_back(m.bits[r * m.cols + g * group + p]);
        if (packed) {
          uint32_t w = static_cast<uint32_t>(meta[r * words + g / 8]);
          w |= static_cast<uint32_t>(p) << (4 * (g % 8) + 2 * s);
          meta[r * words + g / 8] = static_cast<int32_t>(w);
        } else {
          meta[(r * groups + g) * n + s] = p;
        }
        ++s;
      }
    }
  }
  SetValueBits(t, bits);
  std::span<int32_t> mt = t.data<int32_t>("meta");
  std::copy(meta.begin(), meta.end(), mt.begin());
  return t;
}

}  // namespace sparsed::test
