// Inspect: sizes, non-zero count, density and row-length statistics.
#include "sparsed/inspect.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>

#include "nonzero_entries.h"
#include "sparsed/status.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace inspect_internal {

absl::StatusOr<const Tensor*> HostTensor(const Tensor& t, std::optional<Tensor>& copy) {
  if (!t.device().is_cpu()) {
    ASSIGN_OR_RETURN(copy, t.CopyTo(Device::Cpu()));
  }
  const Tensor& host = copy.has_value() ? *copy : t;
  RETURN_IF_ERROR(ValidateTensor(host, {}, "tensor"));
  return &host;
}

}  // namespace inspect_internal

namespace {

RowLengthStats RowStats(const std::vector<int64_t>& lengths) {
  RowLengthStats s;
  const int64_t rows = static_cast<int64_t>(lengths.size());
  if (rows > 0) {
    s.min = lengths[0];
    s.max = lengths[0];
    double sum = 0.0;
    for (const int64_t x : lengths) {
      s.min = std::min(s.min, x);
      s.max = std::max(s.max, x);
      sum += static_cast<double>(x);
    }
    s.mean = sum / static_cast<double>(rows);
    double squares = 0.0;  // second pass: no cancellation
    for (const int64_t x : lengths) {
      const double d = static_cast<double>(x) - s.mean;
      squares += d * d;
    }
    s.std = std::sqrt(squares / static_cast<double>(rows));
  }
  // Bucket 0 holds length 0; bucket b >= 1 holds [2^(b-1), 2^b), i.e. the
  // lengths whose bit width is b.
  const int buckets = std::bit_width(static_cast<uint64_t>(s.max)) + 1;
  s.edges.push_back(0);
  for (int b = 0; b < buckets; ++b) s.edges.push_back(int64_t{1} << b);
  s.histogram.assign(buckets, 0);
  for (const int64_t x : lengths) ++s.histogram[std::bit_width(static_cast<uint64_t>(x))];
  return s;
}

}  // namespace

absl::StatusOr<TensorStats> Inspect(const Tensor& t) {
  std::optional<Tensor> copy;
  ASSIGN_OR_RETURN(const Tensor* host, inspect_internal::HostTensor(t, copy));
  const TensorDesc& d = host->desc();
  TensorStats stats;
  stats.desc = d;
  stats.stored = d.stored_values();
  stats.bytes = host->bytes();
  std::vector<int64_t> lengths(d.rows(), 0);
  RETURN_IF_ERROR(
      inspect_internal::ForEachNonzero(*host, [&](int64_t r, int64_t) { ++lengths[r]; }));
  for (const int64_t x : lengths) stats.nonzeros += x;
  const int64_t positions = d.rows() * d.cols();
  stats.density =
      positions > 0 ? static_cast<double>(stats.nonzeros) / static_cast<double>(positions) : 0.0;
  stats.rows = RowStats(lengths);
  return stats;
}

}  // namespace sparsed
