// Test helpers for the six formats, written from the layouts in tensor.h and
// independent of the library's conversions: a dense reference matrix holding
// raw value bit patterns, a naive encoder into every format and a naive
// decoder back.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels_test_util.h"
#include "sparsed/tensor.h"

namespace sparsed::test {

// A dense matrix of value bit patterns (16-bit types in the low half).
struct Matrix {
  int64_t rows = 0, cols = 0;
  DType dtype = DType::kF32;
  std::vector<uint32_t> bits;  // row-major
  uint32_t at(int64_t r, int64_t c) const { return bits[r * cols + c]; }
  bool operator==(const Matrix&) const = default;
};

inline bool BitsAreZero(DType t, uint32_t b) {
  return t == DType::kF32 ? (b << 1) == 0 : (b & 0x7fffu) == 0;
}

inline Matrix Transposed(const Matrix& m) {
  Matrix t{m.cols, m.rows, m.dtype, std::vector<uint32_t>(m.bits.size())};
  for (int64_t r = 0; r < m.rows; ++r) {
    for (int64_t c = 0; c < m.cols; ++c) t.bits[c * m.rows + r] = m.at(r, c);
  }
  return t;
}

// A random non-zero bit pattern (NaN, Inf and subnormals included: conversions
// must copy them untouched).
inline uint32_t RandomNonZeroBits(DType t, std::mt19937_64& rng) {
  for (;;) {
    uint32_t b = static_cast<uint32_t>(rng());
    if (t != DType::kF32) b &= 0xffffu;
    if (!BitsAreZero(t, b)) return b;
  }
}

// Random matrix; with m > 0 every group of m along a row has at most n
// non-zeros (each group gets a random count in [0, n], full when density is 1).
inline Matrix RandomMatrix(int64_t rows, int64_t cols, double density, DType t,
                           std::mt19937_64& rng, int n = 0, int m = 0) {
  Matrix x{rows, cols, t, std::vector<uint32_t>(rows * cols, 0)};
  std::bernoulli_distribution keep(density);
  if (m == 0) {
    for (uint32_t& b : x.bits) {
      if (keep(rng)) b = RandomNonZeroBits(t, rng);
    }
    return x;
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < cols / m; ++g) {
      std::vector<int> pos(m);
      for (int p = 0; p < m; ++p) pos[p] = p;
      std::shuffle(pos.begin(), pos.end(), rng);
      for (int k = 0; k < n; ++k) {
        if (keep(rng)) x.bits[r * cols + g * m + pos[k]] = RandomNonZeroBits(t, rng);
      }
    }
  }
  return x;
}

// Parameters of a format (unused ones ignored).
struct FormatParams {
  DType idx = DType::kI32;
  int64_t block_rows = 0, block_cols = 0;
  int nm_n = 0, nm_m = 0;
};

inline void PutBits(Tensor& t, const std::vector<uint32_t>& bits) {
  Buffer* b = t.component("values");
  ASSERT_EQ(b->size(), static_cast<int64_t>(bits.size()) * SizeOf(t.desc().dtype));
  for (size_t i = 0; i < bits.size(); ++i) {
    if (t.desc().dtype == DType::kF32) {
      b->as<uint32_t>()[i] = bits[i];
    } else {
      b->as<uint16_t>()[i] = static_cast<uint16_t>(bits[i]);
    }
  }
}

inline std::vector<uint32_t> GetBits(const Tensor& t) {
  const Buffer* b = t.component("values");
  const int64_t count = b->size() / SizeOf(t.desc().dtype);
  std::vector<uint32_t> out(count);
  for (int64_t i = 0; i < count; ++i) {
    out[i] = t.desc().dtype == DType::kF32 ? b->as<uint32_t>()[i] : b->as<uint16_t>()[i];
  }
  return out;
}

// The kept positions of a group of an N:M encoding: the non-zeros' positions
// plus the lowest unused ones, n in all, increasing.
inline std::vector<int> KeptPositions(const Matrix& x, int64_t r, int64_t g, int n, int m) {
  std::vector<bool> kept(m, false);
  int count = 0;
  for (int p = 0; p < m; ++p) {
    if (!BitsAreZero(x.dtype, x.at(r, g * m + p))) {
      kept[p] = true;
      ++count;
    }
  }
  for (int p = 0; p < m && count < n; ++p) {
    if (!kept[p]) {
      kept[p] = true;
      ++count;
    }
  }
  std::vector<int> out;
  for (int p = 0; p < m; ++p) {
    if (kept[p]) out.push_back(p);
  }
  return out;
}

// The expected tensor of format f for matrix x (zeros dropped; BSR stores
// blocks with a non-zero; N:M as above).
inline Tensor Encode(const Matrix& x, Format f, const FormatParams& p) {
  const int64_t rows = x.rows, cols = x.cols;
  auto nz = [&](int64_t r, int64_t c) { return !BitsAreZero(x.dtype, x.at(r, c)); };
  TensorDesc d{f, x.dtype, p.idx, {rows, cols}, 0};
  std::vector<uint32_t> vals;
  if (f == Format::kDense) {
    d.index_dtype = DType::kI32;
    Tensor t = MustAllocate(d);
    PutBits(t, x.bits);
    return t;
  }
  if (f == Format::kCoo || f == Format::kCsr) {
    std::vector<int64_t> ri, ci, rp{0};
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        if (!nz(r, c)) continue;
        ri.push_back(r);
        ci.push_back(c);
        vals.push_back(x.at(r, c));
      }
      rp.push_back(static_cast<int64_t>(ci.size()));
    }
    d.nnz = static_cast<int64_t>(ci.size());
    Tensor t = MustAllocate(d);
    if (f == Format::kCoo) {
      SetIndices(t, "row_idx", ri);
    } else {
      SetIndices(t, "row_ptr", rp);
    }
    SetIndices(t, "col_idx", ci);
    PutBits(t, vals);
    return t;
  }
  if (f == Format::kCsc) {
    std::vector<int64_t> ri, cp{0};
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t r = 0; r < rows; ++r) {
        if (!nz(r, c)) continue;
        ri.push_back(r);
        vals.push_back(x.at(r, c));
      }
      cp.push_back(static_cast<int64_t>(ri.size()));
    }
    d.nnz = static_cast<int64_t>(ri.size());
    Tensor t = MustAllocate(d);
    SetIndices(t, "col_ptr", cp);
    SetIndices(t, "row_idx", ri);
    PutBits(t, vals);
    return t;
  }
  if (f == Format::kBsr) {
    const int64_t R = p.block_rows, C = p.block_cols;
    d.block_rows = R;
    d.block_cols = C;
    std::vector<int64_t> bp{0}, bc;
    for (int64_t br = 0; br * R < rows; ++br) {
      for (int64_t bcol = 0; bcol * C < cols; ++bcol) {
        bool any = false;
        for (int64_t r = br * R; r < std::min(rows, br * R + R); ++r) {
          for (int64_t c = bcol * C; c < std::min(cols, bcol * C + C); ++c) any = any || nz(r, c);
        }
        if (!any) continue;
        bc.push_back(bcol);
        for (int64_t i = 0; i < R; ++i) {
          for (int64_t j = 0; j < C; ++j) {
            const int64_t r = br * R + i, c = bcol * C + j;
            // Zero fill (padding, and zeros inside the block) is +0.
            vals.push_back(r < rows && c < cols && nz(r, c) ? x.at(r, c) : 0u);
          }
        }
      }
      bp.push_back(static_cast<int64_t>(bc.size()));
    }
    d.nnz = static_cast<int64_t>(bc.size());
    Tensor t = MustAllocate(d);
    SetIndices(t, "block_row_ptr", bp);
    SetIndices(t, "block_col_idx", bc);
    PutBits(t, vals);
    return t;
  }
  // N:M.
  const int n = p.nm_n, m = p.nm_m;
  const int64_t groups = cols / m;
  d.nm_n = n;
  d.nm_m = m;
  d.nnz = rows * groups * n;
  Tensor t = MustAllocate(d);
  std::span<int32_t> meta = t.data<int32_t>("meta");
  std::fill(meta.begin(), meta.end(), 0);
  const int64_t words = (groups + 7) / 8;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const std::vector<int> kept = KeptPositions(x, r, g, n, m);
      for (int s = 0; s < n; ++s) {
        vals.push_back(nz(r, g * m + kept[s]) ? x.at(r, g * m + kept[s]) : 0u);
        if (!(n == 2 && m == 4)) meta[(r * groups + g) * n + s] = kept[s];
      }
      if (n == 2 && m == 4) {
        const uint32_t nibble = static_cast<uint32_t>(kept[0]) | (kept[1] << 2);
        uint32_t& w = reinterpret_cast<uint32_t&>(meta[r * words + g / 8]);
        w |= nibble << (4 * (g % 8));
      }
    }
  }
  PutBits(t, vals);
  return t;
}

// The dense matrix a tensor of any format stores (read from its arrays).
inline Matrix Decode(const Tensor& t) {
  const TensorDesc& d = t.desc();
  Matrix x{d.rows(), d.cols(), d.dtype, std::vector<uint32_t>(d.rows() * d.cols(), 0)};
  const std::vector<uint32_t> v = GetBits(t);
  switch (d.format) {
    case Format::kDense:
      x.bits = v;
      break;
    case Format::kCoo: {
      const std::vector<int64_t> r = GetIndices(t, "row_idx"), c = GetIndices(t, "col_idx");
      for (size_t e = 0; e < v.size(); ++e) x.bits[r[e] * x.cols + c[e]] = v[e];
      break;
    }
    case Format::kCsr: {
      const std::vector<int64_t> rp = GetIndices(t, "row_ptr"), c = GetIndices(t, "col_idx");
      for (int64_t r = 0; r < x.rows; ++r) {
        for (int64_t e = rp[r]; e < rp[r + 1]; ++e) x.bits[r * x.cols + c[e]] = v[e];
      }
      break;
    }
    case Format::kCsc: {
      const std::vector<int64_t> cp = GetIndices(t, "col_ptr"), r = GetIndices(t, "row_idx");
      for (int64_t c = 0; c < x.cols; ++c) {
        for (int64_t e = cp[c]; e < cp[c + 1]; ++e) x.bits[r[e] * x.cols + c] = v[e];
      }
      break;
    }
    case Format::kBsr: {
      const std::vector<int64_t> bp = GetIndices(t, "block_row_ptr");
      const std::vector<int64_t> bc = GetIndices(t, "block_col_idx");
      const int64_t R = d.block_rows, C = d.block_cols;
      for (size_t br = 0; br + 1 < bp.size(); ++br) {
        for (int64_t b = bp[br]; b < bp[br + 1]; ++b) {
          for (int64_t i = 0; i < R; ++i) {
            for (int64_t j = 0; j < C; ++j) {
              const int64_t r = br * R + i, c = bc[b] * C + j;
              if (r < x.rows && c < x.cols) x.bits[r * x.cols + c] = v[(b * R + i) * C + j];
            }
          }
        }
      }
      break;
    }
    case Format::kNm: {
      const int64_t n = d.nm_n, m = d.nm_m, groups = x.cols / m, words = (groups + 7) / 8;
      std::span<const int32_t> meta = t.data<int32_t>("meta");
      for (int64_t r = 0; r < x.rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          for (int64_t s = 0; s < n; ++s) {
            int64_t pos;
            if (n == 2 && m == 4) {
              const uint32_t w = static_cast<uint32_t>(meta[r * words + g / 8]);
              pos = (w >> (4 * (g % 8) + 2 * s)) & 3u;
            } else {
              pos = meta[(r * groups + g) * n + s];
            }
            const uint32_t b = v[(r * groups + g) * n + s];
            if (!BitsAreZero(d.dtype, b)) x.bits[r * x.cols + g * m + pos] = b;
          }
        }
      }
      break;
    }
  }
  return x;
}

// Identical descriptions and byte-identical components.
inline void ExpectSameTensor(const Tensor& got, const Tensor& want) {
  const TensorDesc &g = got.desc(), &w = want.desc();
  ASSERT_EQ(FormatName(g.format), FormatName(w.format));
  EXPECT_EQ(DTypeName(g.dtype), DTypeName(w.dtype));
  if (IsSparse(w.format)) {
    EXPECT_EQ(DTypeName(g.index_dtype), DTypeName(w.index_dtype));
  }
  ASSERT_EQ(g.shape, w.shape);
  ASSERT_EQ(g.nnz, w.nnz);
  EXPECT_EQ(g.block_rows, w.block_rows);
  EXPECT_EQ(g.block_cols, w.block_cols);
  EXPECT_EQ(g.nm_n, w.nm_n);
  EXPECT_EQ(g.nm_m, w.nm_m);
  ASSERT_EQ(got.specs().size(), want.specs().size());
  for (const ComponentSpec& spec : want.specs()) {
    const Buffer* a = got.component(spec.name);
    const Buffer* b = want.component(spec.name);
    ASSERT_NE(a, nullptr) << spec.name;
    ASSERT_EQ(a->size(), b->size()) << spec.name;
    EXPECT_TRUE(a->size() == 0 || std::memcmp(a->data(), b->data(), a->size()) == 0)
        << spec.name << " differs";
  }
}

// Float matrix <-> Matrix of f32 bits.
inline Matrix FromFloats(int64_t rows, int64_t cols, const std::vector<float>& v) {
  Matrix x{rows, cols, DType::kF32, std::vector<uint32_t>(v.size())};
  for (size_t i = 0; i < v.size(); ++i) std::memcpy(&x.bits[i], &v[i], 4);
  return x;
}

}  // namespace sparsed::test
