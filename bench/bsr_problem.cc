#include "bsr_problem.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "sparsed/half.h"

namespace sparsed::bench {
namespace {

// SplitMix64: fast, seedable, good enough for test data.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed * 0x9e3779b97f4a7c15ull + 0x1234567ull) {}
  uint64_t Next() {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound).
  uint64_t Below(uint64_t bound) {
    // Rejection keeps it exactly uniform.
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do x = Next();
    while (x >= limit);
    return x % bound;
  }
  // Non-zero bf16 uniform in [-1, 1].
  uint16_t NonZeroBf16() {
    for (;;) {
      const float u = static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f);  // [0, 1)
      const uint16_t h = FloatToBf16(2.0f * u - 1.0f);
      if ((h & 0x7fffu) != 0) return h;
    }
  }
};

// The first `count` entries of a random permutation of `pool` (partial
// Fisher-Yates), in place.
template <class T>
void PickPrefix(std::vector<T>& pool, int64_t count, Rng& rng) {
  const int64_t n = static_cast<int64_t>(pool.size());
  for (int64_t i = 0; i < count; ++i) {
    const int64_t j = i + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(n - i)));
    std::swap(pool[i], pool[j]);
  }
}

int Threads() {
  const unsigned hc = std::thread::hardware_concurrency();
  return static_cast<int>(std::clamp(hc, 1u, 64u));
}

}  // namespace

int64_t BsrHost::max_blocks_per_row() const {
  int64_t most = 0;
  for (int64_t i = 0; i + 1 < static_cast<int64_t>(row_ptr.size()); ++i)
    most = std::max<int64_t>(most, row_ptr[i + 1] - row_ptr[i]);
  return most;
}

BsrHost RandomBsr(int64_t m, int64_t k, int64_t r, double density, BlockPattern pattern,
                  uint64_t seed) {
  if (r <= 0 || m % r != 0 || k % r != 0)
    throw std::invalid_argument("block size must divide both matrix dimensions");
  BsrHost a;
  a.m = m;
  a.k = k;
  a.r = r;
  const int64_t mb = m / r, kb = k / r;
  const int64_t total = std::clamp<int64_t>(std::llround(density * mb * kb), 1, mb * kb);
  Rng rng(seed);
  std::vector<std::vector<int32_t>> rows(mb);
  if (pattern == BlockPattern::kBalanced) {
    // total / mb blocks in every block row, one more in total % mb rows
    // chosen at random.
    std::vector<int64_t> count(mb, total / mb);
    std::vector<int64_t> order(mb);
    std::iota(order.begin(), order.end(), 0);
    PickPrefix(order, total % mb, rng);
    for (int64_t i = 0; i < total % mb; ++i) ++count[order[i]];
    std::vector<int32_t> cols(kb);
    for (int64_t i = 0; i < mb; ++i) {
      std::iota(cols.begin(), cols.end(), 0);
      PickPrefix(cols, count[i], rng);
      rows[i].assign(cols.begin(), cols.begin() + count[i]);
    }
  } else {
    std::vector<int64_t> cells(mb * kb);
    std::iota(cells.begin(), cells.end(), 0);
    PickPrefix(cells, total, rng);
    for (int64_t i = 0; i < total; ++i)
      rows[cells[i] / kb].push_back(static_cast<int32_t>(cells[i] % kb));
  }
  a.row_ptr.assign(mb + 1, 0);
  a.col_idx.reserve(total);
  for (int64_t i = 0; i < mb; ++i) {
    std::sort(rows[i].begin(), rows[i].end());
    a.col_idx.insert(a.col_idx.end(), rows[i].begin(), rows[i].end());
    a.row_ptr[i + 1] = static_cast<int32_t>(a.col_idx.size());
  }
  a.values.resize(static_cast<size_t>(total * r * r));
  for (uint16_t& v : a.values) v = rng.NonZeroBf16();
  return a;
}

std::vector<uint16_t> RandomBf16(int64_t count, uint64_t seed) {
  std::vector<uint16_t> v(count);
  // Chunks with their own streams, filled in parallel (B reaches 90 M values).
  const int64_t chunk = int64_t{1} << 22;
  const int64_t chunks = (count + chunk - 1) / chunk;
  const int threads = Threads();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int64_t c = t; c < chunks; c += threads) {
        Rng rng(seed * 1000003 + c);
        const int64_t end = std::min(count, (c + 1) * chunk);
        for (int64_t i = c * chunk; i < end; ++i) v[i] = rng.NonZeroBf16();
      }
    });
  }
  for (std::thread& th : pool) th.join();
  return v;
}

std::vector<uint16_t> DenseOf(const BsrHost& a) {
  std::vector<uint16_t> d(static_cast<size_t>(a.m * a.k), 0);
  const int64_t r = a.r;
  for (int64_t br = 0; br < a.mb(); ++br) {
    for (int32_t b = a.row_ptr[br]; b < a.row_ptr[br + 1]; ++b) {
      const int64_t c0 = int64_t{a.col_idx[b]} * r;
      const uint16_t* blk = &a.values[static_cast<size_t>(b) * r * r];
      for (int64_t i = 0; i < r; ++i)
        std::copy(blk + i * r, blk + (i + 1) * r, &d[(br * r + i) * a.k + c0]);
    }
  }
  return d;
}

BlockedEllHost ToBlockedEll(const BsrHost& a) {
  BlockedEllHost e;
  const int64_t r = a.r, w = a.max_blocks_per_row();
  e.ell_blocks = w;
  e.col_ind.assign(static_cast<size_t>(a.mb() * w), -1);
  e.values.assign(static_cast<size_t>(a.m * w * r), 0);
  const int64_t ld = w * r;
  for (int64_t br = 0; br < a.mb(); ++br) {
    for (int32_t b = a.row_ptr[br]; b < a.row_ptr[br + 1]; ++b) {
      const int64_t s = b - a.row_ptr[br];
      e.col_ind[br * w + s] = a.col_idx[b];
      const uint16_t* blk = &a.values[static_cast<size_t>(b) * r * r];
      for (int64_t i = 0; i < r; ++i)
        std::copy(blk + i * r, blk + (i + 1) * r, &e.values[(br * r + i) * ld + s * r]);
    }
  }
  return e;
}

std::vector<float> Bf16ToF32(const std::vector<uint16_t>& v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); ++i) f[i] = Bf16ToFloat(v[i]);
  return f;
}

template <class T>
std::vector<T> Transposed(const std::vector<T>& v, int64_t rows, int64_t cols) {
  std::vector<T> t(v.size());
  const int64_t tile = 64;
  for (int64_t i0 = 0; i0 < rows; i0 += tile)
    for (int64_t j0 = 0; j0 < cols; j0 += tile)
      for (int64_t i = i0; i < std::min(rows, i0 + tile); ++i)
        for (int64_t j = j0; j < std::min(cols, j0 + tile); ++j) t[j * rows + i] = v[i * cols + j];
  return t;
}
template std::vector<uint16_t> Transposed(const std::vector<uint16_t>&, int64_t, int64_t);
template std::vector<float> Transposed(const std::vector<float>&, int64_t, int64_t);

std::vector<int64_t> SampleRows(int64_t m, int64_t count, uint64_t seed) {
  Rng rng(seed);
  std::vector<int64_t> all(m);
  std::iota(all.begin(), all.end(), 0);
  count = std::min(count, m);
  PickPrefix(all, count, rng);
  all.resize(count);
  std::sort(all.begin(), all.end());
  return all;
}

std::vector<double> ReferenceRows(const BsrHost& a, const std::vector<float>& b, int64_t n,
                                  const std::vector<int64_t>& rows) {
  const int64_t count = static_cast<int64_t>(rows.size());
  std::vector<double> out(static_cast<size_t>(count * n), 0.0);
  const int threads = std::min<int>(Threads(), std::max<int64_t>(count, 1));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const int64_t r = a.r;
      for (int64_t s = t; s < count; s += threads) {
        const int64_t row = rows[s], br = row / r, i = row % r;
        double* acc = &out[s * n];
        for (int32_t blk = a.row_ptr[br]; blk < a.row_ptr[br + 1]; ++blk) {
          const uint16_t* vals = &a.values[(static_cast<size_t>(blk) * r + i) * r];
          const int64_t k0 = int64_t{a.col_idx[blk]} * r;
          for (int64_t j = 0; j < r; ++j) {
            const double av = Bf16ToFloat(vals[j]);
            const float* brow = &b[(k0 + j) * n];
            for (int64_t c = 0; c < n; ++c) acc[c] += av * brow[c];
          }
        }
      }
    });
  }
  for (std::thread& th : pool) th.join();
  return out;
}

double RelError(const std::vector<double>& ref, const std::vector<float>& got) {
  if (ref.size() != got.size()) return std::nan("");
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i];
    if (!std::isfinite(g)) return std::nan("");
    num += (g - ref[i]) * (g - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace sparsed::bench
