#include "spmm_kernels.h"

#include <algorithm>
#include <vector>

#include "sparsed/parallel.h"

namespace sparsed::cpu {
namespace {

// Applies beta * C, the epilogue and the f32 store to one output row whose
// products alpha is not yet applied to.
void FinishRow(const OutputSpec& o, int64_t i, const double* acc) {
  const int64_t n = o.n;
  float* out = o.out + i * n;
  const float* c = o.beta != 0.0f ? o.c_in + i * n : nullptr;
  const double alpha = o.alpha, beta = o.beta;
  for (int64_t j = 0; j < n; ++j) {
    double x = alpha * acc[j];
    if (c != nullptr) x += beta * static_cast<double>(c[j]);
    if (o.bias != nullptr) x += o.bias[j];
    // Written so that NaN propagates instead of being clamped away.
    if (o.relu && x < 0.0) x = 0.0;
    if (o.clamp_max.has_value() && x > *o.clamp_max) x = *o.clamp_max;
    out[j] = static_cast<float>(x);
  }
}

// acc[0, n) += v * x[0, n). Fixed-size blocks let the compiler vectorise at
// -O2 (each element still sees the same operations, so results do not depend
// on the blocking).
inline void Axpy(double* acc, const float* x, double v, int64_t n) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (int t = 0; t < 8; ++t) acc[j + t] += v * x[j + t];
  }
  for (; j < n; ++j) acc[j] += v * x[j];
}

// Splits rows [0, m) into chunks of about equal cost, row i costing
// (nnz of row i + 1): whole rows only, so one very long row is one chunk.
// 32 per thread: ParallelForCancellable notices a stop between chunks.
template <class I>
std::vector<int64_t> BalancedRowChunks(const CsrView<I>& s, int threads) {
  const int64_t m = s.rows;
  const int64_t chunks = std::min<int64_t>(m, int64_t{threads} * 32);
  const int64_t total = static_cast<int64_t>(s.row_ptr[m]) + m;
  std::vector<int64_t> bounds{0};
  for (int64_t c = 1; c < chunks; ++c) {
    const int64_t target = total * c / chunks;
    // First row i with row_ptr[i] + i >= target (monotone in i).
    int64_t lo = bounds.back(), hi = m;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (static_cast<int64_t>(s.row_ptr[mid]) + mid < target) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo > bounds.back()) bounds.push_back(lo);
  }
  bounds.push_back(m);
  return bounds;
}

template <class I>
void SparseTimesDenseImpl(const CsrView<I>& s, const DenseView& d, const OutputSpec& o) {
  if (o.m == 0 || o.n == 0) return;
  const int64_t n = o.n, k = s.cols;
  const std::vector<int64_t> bounds = BalancedRowChunks(s, o.threads);
  const int64_t chunks = static_cast<int64_t>(bounds.size()) - 1;
  ParallelForCancellable(chunks, 1, o.threads, [&](int64_t c0, int64_t c1) {
    std::vector<double> acc(n);
    for (int64_t i = bounds[c0]; i < bounds[c1]; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const int64_t b = s.row_ptr[i], e = s.row_ptr[i + 1];
      if (!d.transpose) {
        // op(D) row p is stored contiguously: axpy per stored entry.
        for (int64_t x = b; x < e; ++x) {
          Axpy(acc.data(), d.data + static_cast<int64_t>(s.col_idx[x]) * n, s.values[x], n);
        }
      } else {
        // op(D)[p, j] = D[j, p]: a sparse-dense dot product per output column.
        for (int64_t j = 0; j < n; ++j) {
          const float* row = d.data + j * k;
          double sum = 0.0;
          for (int64_t x = b; x < e; ++x)
            sum += static_cast<double>(s.values[x]) * row[s.col_idx[x]];
          acc[j] = sum;
        }
      }
      FinishRow(o, i, acc.data());
    }
  });
}

template <class I>
void DenseTimesSparseImpl(const DenseView& d, const CsrView<I>& s, const OutputSpec& o) {
  if (o.m == 0 || o.n == 0) return;
  const int64_t m = o.m, n = o.n, k = s.rows;
  // Every output row costs k + nnz(S), so an even split of rows is balanced.
  const int64_t grain = std::max<int64_t>(1, 4096 / (k + s.row_ptr[k] + 1));
  ParallelForCancellable(m, grain, o.threads, [&](int64_t r0, int64_t r1) {
    std::vector<double> acc(n);
    for (int64_t i = r0; i < r1; ++i) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t p = 0; p < k; ++p) {
        // op(D)[i, p]: D[i, p], or D[p, i] when transposed (D stored [k, m]).
        const double a = d.transpose ? d.data[p * m + i] : d.data[i * k + p];
        for (int64_t x = s.row_ptr[p]; x < s.row_ptr[p + 1]; ++x) {
          acc[s.col_idx[x]] += a * s.values[x];
        }
      }
      FinishRow(o, i, acc.data());
    }
  });
}

// C = Sᵀ op(D), S stored [k, m]: stored entry (p, j) adds v * op(D) row p to
// output row j. Threads own disjoint column slices of the output, so each
// element is summed by one thread in stored order (deterministic).
template <class I>
void SparseTransposedTimesDenseImpl(const CsrView<I>& s, const DenseView& d, const OutputSpec& o) {
  if (o.m == 0 || o.n == 0) return;
  const int64_t m = o.m, n = o.n, k = s.rows;
  std::vector<double> acc(m * n, 0.0);
  ParallelForCancellable(n, 64, o.threads, [&](int64_t c0, int64_t c1) {
    for (int64_t p = 0; p < k; ++p) {
      for (int64_t x = s.row_ptr[p]; x < s.row_ptr[p + 1]; ++x) {
        const double v = s.values[x];
        double* out_row = acc.data() + static_cast<int64_t>(s.col_idx[x]) * n;
        if (!d.transpose) {
          const float* in_row = d.data + p * n;  // op(D) = D [k, n]
          for (int64_t c = c0; c < c1; ++c) out_row[c] += v * in_row[c];
        } else {
          for (int64_t c = c0; c < c1; ++c) out_row[c] += v * d.data[c * k + p];  // D [n, k]
        }
      }
    }
  });
  ParallelForCancellable(m, 64, o.threads, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) FinishRow(o, i, acc.data() + i * n);
  });
}

// C = op(D) Sᵀ, S stored [n, k]: C[i, j] is the dot product of op(D) row i
// with stored row j.
template <class I>
void DenseTimesSparseTransposedImpl(const DenseView& d, const CsrView<I>& s, const OutputSpec& o) {
  if (o.m == 0 || o.n == 0) return;
  const int64_t m = o.m, n = o.n, k = s.cols;
  const int64_t grain = std::max<int64_t>(1, 4096 / (n + s.row_ptr[n] + 1));
  ParallelForCancellable(m, grain, o.threads, [&](int64_t r0, int64_t r1) {
    std::vector<double> acc(n);
    for (int64_t i = r0; i < r1; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0.0;
        for (int64_t x = s.row_ptr[j]; x < s.row_ptr[j + 1]; ++x) {
          const int64_t p = s.col_idx[x];
          // op(D)[i, p]: D[i, p], or D[p, i] when transposed (D stored [k, m]).
          sum += static_cast<double>(s.values[x]) *
                 (d.transpose ? d.data[p * m + i] : d.data[i * k + p]);
        }
        acc[j] = sum;
      }
      FinishRow(o, i, acc.data());
    }
  });
}

}  // namespace

void SparseTransposedTimesDense(const CsrView<int32_t>& s, const DenseView& d,
                                const OutputSpec& out) {
  SparseTransposedTimesDenseImpl(s, d, out);
}
void SparseTransposedTimesDense(const CsrView<int64_t>& s, const DenseView& d,
                                const OutputSpec& out) {
  SparseTransposedTimesDenseImpl(s, d, out);
}
void DenseTimesSparseTransposed(const DenseView& d, const CsrView<int32_t>& s,
                                const OutputSpec& out) {
  DenseTimesSparseTransposedImpl(d, s, out);
}
void DenseTimesSparseTransposed(const DenseView& d, const CsrView<int64_t>& s,
                                const OutputSpec& out) {
  DenseTimesSparseTransposedImpl(d, s, out);
}

void SparseTimesDense(const CsrView<int32_t>& s, const DenseView& d, const OutputSpec& out) {
  SparseTimesDenseImpl(s, d, out);
}
void SparseTimesDense(const CsrView<int64_t>& s, const DenseView& d, const OutputSpec& out) {
  SparseTimesDenseImpl(s, d, out);
}
void DenseTimesSparse(const DenseView& d, const CsrView<int32_t>& s, const OutputSpec& out) {
  DenseTimesSparseImpl(d, s, out);
}
void DenseTimesSparse(const DenseView& d, const CsrView<int64_t>& s, const OutputSpec& out) {
  DenseTimesSparseImpl(d, s, out);
}

}  // namespace sparsed::cpu
