#include "fuzz_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "sparsed/convert.h"
#include "sparsed/half.h"
#include "sparsed/inspect.h"
#include "sparsed/validate.h"

namespace sparsed::fuzz {
namespace {

constexpr Format kFormats[] = {Format::kDense, Format::kCoo, Format::kCsr,
                               Format::kCsc,   Format::kBsr, Format::kNm};

float FuzzFloat(FuzzedDataProvider& in) {
  static const float kSpecial[] = {0.0f,
                                   -0.0f,
                                   1.0f,
                                   -2.5f,
                                   0.125f,
                                   65504.0f,
                                   1e30f,
                                   1e-40f,
                                   std::numeric_limits<float>::infinity(),
                                   -std::numeric_limits<float>::infinity(),
                                   std::numeric_limits<float>::quiet_NaN()};
  const uint8_t pick = in.ConsumeIntegral<uint8_t>();
  if (pick < 200) return kSpecial[pick % std::size(kSpecial)];
  return BitsFloat(in.ConsumeIntegral<uint32_t>());
}

void PutValue(Tensor& t, int64_t i, float v) {
  switch (t.desc().dtype) {
    case DType::kF16:
      t.data<uint16_t>("values")[i] = FloatToHalf(v);
      break;
    case DType::kBF16:
      t.data<uint16_t>("values")[i] = FloatToBf16(v);
      break;
    default:
      t.data<float>("values")[i] = v;
  }
}

// Index component writes that respect the tensor's index dtype.
void PutIndex(Tensor& t, std::string_view name, int64_t i, int64_t v) {
  if (t.desc().index_dtype == DType::kI64) {
    t.data<int64_t>(name)[i] = v;
  } else {
    t.data<int32_t>(name)[i] = static_cast<int32_t>(v);
  }
}

// Sorted distinct positions in [0, extent), at most `max_count` of them.
std::vector<int64_t> FuzzPositions(FuzzedDataProvider& in, int64_t extent, int64_t max_count) {
  std::vector<int64_t> out;
  int64_t next = in.ConsumeIntegralInRange<int64_t>(0, 3);
  const int64_t count = in.ConsumeIntegralInRange<int64_t>(0, std::min<int64_t>(max_count, 4));
  for (int64_t k = 0; k < count && next < extent; ++k) {
    out.push_back(next);
    next += 1 + in.ConsumeIntegralInRange<int64_t>(0, 3);
  }
  return out;
}

// A structurally plausible tensor of format f (small extents), or nothing
// when the fuzz bytes describe something ValidateDesc refuses.
std::optional<Tensor> PlausibleTensor(FuzzedDataProvider& in, Format f) {
  TensorDesc d;
  d.format = f;
  d.dtype = std::array{DType::kF32, DType::kF16, DType::kBF16}[in.ConsumeIntegralInRange(0, 2)];
  d.index_dtype = in.ConsumeBool() ? DType::kI32 : DType::kI64;
  const int64_t rows = in.ConsumeIntegralInRange<int64_t>(0, 24);
  int64_t cols = in.ConsumeIntegralInRange<int64_t>(0, 24);
  if (f == Format::kNm) {
    d.nm_m = in.ConsumeIntegralInRange(2, 32);
    d.nm_n = in.ConsumeIntegralInRange(1, d.nm_m - 1);
    cols = d.nm_m * in.ConsumeIntegralInRange<int64_t>(0, 3);
  }
  if (f == Format::kBsr) {
    d.block_rows = in.ConsumeIntegralInRange<int64_t>(1, 6);
    d.block_cols = in.ConsumeIntegralInRange<int64_t>(1, 6);
  }
  d.shape = {rows, cols};
  if (f == Format::kDense && in.ConsumeBool()) d.shape = {rows};

  // Outer extent (segments) and inner extent (positions within a segment).
  int64_t segments = rows, inner = cols;
  if (f == Format::kCsc) std::swap(segments, inner);
  if (f == Format::kBsr) {
    segments = d.block_row_count();
    inner = d.block_col_count();
  }
  std::vector<std::vector<int64_t>> pattern(f == Format::kNm || f == Format::kDense ? 0 : segments);
  for (auto& seg : pattern) seg = FuzzPositions(in, inner, inner);
  int64_t nnz = 0;
  for (const auto& seg : pattern) nnz += static_cast<int64_t>(seg.size());
  d.nnz = f == Format::kNm ? rows * d.nm_groups() * d.nm_n : nnz;
  if (!ValidateDesc(d).ok()) return std::nullopt;
  absl::StatusOr<std::vector<ComponentSpec>> specs = ComponentsOf(d);
  int64_t bytes = 0;
  for (const ComponentSpec& s : *specs) bytes += s.bytes();
  if (bytes > kMaxFuzzBytes) return std::nullopt;
  absl::StatusOr<Tensor> t = Tensor::Allocate(d);
  if (!t.ok()) return std::nullopt;

  const std::string ptr = f == Format::kCsc   ? "col_ptr"
                          : f == Format::kBsr ? "block_row_ptr"
                                              : "row_ptr";
  const std::string idx = f == Format::kCsc   ? "row_idx"
                          : f == Format::kBsr ? "block_col_idx"
                                              : "col_idx";
  int64_t e = 0;
  if (f == Format::kCsr || f == Format::kCsc || f == Format::kBsr) PutIndex(*t, ptr, 0, 0);
  for (int64_t s = 0; s < static_cast<int64_t>(pattern.size()); ++s) {
    for (int64_t p : pattern[s]) {
      if (f == Format::kCoo) PutIndex(*t, "row_idx", e, s);
      PutIndex(*t, idx, e++, p);
    }
    if (f != Format::kCoo) PutIndex(*t, ptr, s + 1, e);
  }
  if (f == Format::kNm) {
    const int64_t groups = d.nm_groups();
    if (d.nm_packed_2_4()) {
      static const int kPairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
      const int64_t words = (groups + 7) / 8;
      std::span<int32_t> meta = t->data<int32_t>("meta");
      std::fill(meta.begin(), meta.end(), 0);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t g = 0; g < groups; ++g) {
          const int* pr = kPairs[in.ConsumeIntegralInRange(0, 5)];
          const uint32_t nib = static_cast<uint32_t>(pr[0] | (pr[1] << 2));
          meta[r * words + g / 8] |= static_cast<int32_t>(nib << (4 * (g % 8)));
        }
      }
    } else {
      std::span<int32_t> meta = t->data<int32_t>("meta");
      for (int64_t g = 0; g < rows * groups; ++g) {
        // n increasing positions in [0, m): skip a fuzzed number of slots.
        int64_t pos = 0, room = d.nm_m - d.nm_n;
        for (int s = 0; s < d.nm_n; ++s) {
          const int64_t skip = in.ConsumeIntegralInRange<int64_t>(0, room);
          room -= skip;
          pos += skip;
          meta[g * d.nm_n + s] = static_cast<int32_t>(pos++);
        }
      }
    }
  }
  const int64_t values = d.stored_values();
  for (int64_t i = 0; i < values; ++i) PutValue(*t, i, FuzzFloat(in));
  if (f == Format::kBsr) {
    // Padding outside the matrix must be zero: clear it unless the fuzzer
    // asks to keep the garbage (an invalid tensor, to exercise the check).
    if (in.ConsumeIntegralInRange(0, 7) != 0) {
      const int64_t R = d.block_rows, C = d.block_cols;
      int64_t b = 0;
      for (int64_t br = 0; br < segments; ++br) {
        for (int64_t bc : pattern[br]) {
          for (int64_t i = 0; i < R; ++i) {
            for (int64_t j = 0; j < C; ++j) {
              if (br * R + i >= rows || bc * C + j >= cols) PutValue(*t, (b * R + i) * C + j, 0.0f);
            }
          }
          ++b;
        }
      }
    }
  }
  return std::move(*t);
}

bool IsZeroBits(uint32_t bits) { return (bits & 0x7fffffffu) == 0; }

bool SameMatrix(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && !(IsZeroBits(a[i]) && IsZeroBits(b[i]))) {
      std::fprintf(stderr, "dense element %zu: bits 0x%08x vs 0x%08x\n", i, a[i], b[i]);
      return false;
    }
  }
  return true;
}

}  // namespace

void Require(bool ok, const std::string& what) {
  if (ok) return;
  std::fprintf(stderr, "invariant violated: %s\n", what.c_str());
  std::abort();
}

bool DenseFits(const TensorDesc& d) {
  const int64_t limit = kMaxFuzzBytes / 4;
  if (d.rows() < 0 || d.cols() < 0) return false;
  // Conversions go through a host CSR (and its transpose) holding rows + 1
  // and cols + 1 offsets, even when the matrix has no area ([2e14, 0]).
  if (d.rows() > limit || d.cols() > limit) return false;
  return d.rows() == 0 || d.cols() <= limit / d.rows();
}

TensorDesc FuzzDesc(FuzzedDataProvider& in, Format f) {
  TensorDesc d;
  d.format = in.ConsumeBool() ? f : static_cast<Format>(in.ConsumeIntegral<int8_t>());
  d.dtype = static_cast<DType>(in.ConsumeIntegralInRange(0, 6));
  d.index_dtype = static_cast<DType>(in.ConsumeIntegralInRange(0, 6));
  const int rank = in.ConsumeIntegralInRange(0, 3);
  for (int i = 0; i < rank; ++i) d.shape.push_back(in.ConsumeIntegral<int64_t>());
  d.nnz = in.ConsumeIntegral<int64_t>();
  d.block_rows = in.ConsumeIntegral<int64_t>();
  d.block_cols = in.ConsumeIntegral<int64_t>();
  d.nm_n = in.ConsumeIntegral<int>();
  d.nm_m = in.ConsumeIntegral<int>();
  return d;
}

void FuzzFill(FuzzedDataProvider& in, Tensor& t) {
  for (const ComponentSpec& s : t.specs()) {
    Buffer* b = t.component(s.name);
    const std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(b->size());
    std::memset(b->data(), 0, b->size());
    if (!bytes.empty()) std::memcpy(b->data(), bytes.data(), bytes.size());
  }
}

std::vector<uint32_t> DenseBits(const Tensor& t) {
  absl::StatusOr<Tensor> dense = Convert(t, Format::kDense);
  Require(dense.ok(),
          "Convert to dense of a valid tensor: " + std::string(dense.status().message()));
  const int64_t n = dense->desc().numel();
  std::vector<uint32_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = dense->desc().dtype == DType::kF32
                 ? FloatBits(dense->data<float>("values")[i])
                 : uint32_t{dense->data<uint16_t>("values")[i]} << 16;
  }
  return out;
}

void CheckValidTensorInvariants(const Tensor& t) {
  const TensorDesc& d = t.desc();
  if (d.shape.size() != 2 || !DenseFits(d)) return;
  const std::vector<uint32_t> dense = DenseBits(t);
  const int64_t rows = d.rows(), cols = d.cols();
  int64_t nonzeros = 0;
  for (uint32_t bits : dense) nonzeros += IsZeroBits(bits) ? 0 : 1;

  for (Format to : kFormats) {
    ConvertOptions opts;
    if (to == Format::kBsr) {
      opts.block_rows = d.format == Format::kBsr ? d.block_rows : 2;
      opts.block_cols = d.format == Format::kBsr ? d.block_cols : 3;
    }
    if (to == Format::kNm) {
      opts.nm_n = d.format == Format::kNm ? d.nm_n : 2;
      opts.nm_m = d.format == Format::kNm ? d.nm_m : 4;
    }
    absl::StatusOr<Tensor> r = Convert(t, to, opts);
    if (!r.ok()) {
      // Only N:M may be unable to hold a pattern (too many entries in a
      // group, or cols not a multiple of m).
      Require(to == Format::kNm && r.status().code() == absl::StatusCode::kInvalidArgument,
              "Convert " + std::string(FormatName(d.format)) + " -> " +
                  std::string(FormatName(to)) + ": " + std::string(r.status().message()));
      continue;
    }
    const absl::Status valid = ValidateTensor(*r);
    Require(valid.ok(), "Convert to " + std::string(FormatName(to)) +
                            " gave an invalid tensor: " + std::string(valid.message()));
    if (!SameMatrix(DenseBits(*r), dense)) {
      std::fprintf(stderr, "%s %s [%lld x %lld] nnz %lld -> %s\n", FormatName(d.format).data(),
                   DTypeName(d.dtype).data(), static_cast<long long>(rows),
                   static_cast<long long>(cols), static_cast<long long>(d.nnz),
                   FormatName(to).data());
    }
    Require(SameMatrix(DenseBits(*r), dense),
            "Convert to " + std::string(FormatName(to)) + " changed the matrix");
  }

  absl::StatusOr<Tensor> tr = Transpose(t);
  if (tr.ok()) {
    const std::vector<uint32_t> td = DenseBits(*tr);
    Require(tr->desc().rows() == cols && tr->desc().cols() == rows, "Transpose shape");
    std::vector<uint32_t> expect(dense.size());
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t j = 0; j < cols; ++j) expect[j * rows + i] = dense[i * cols + j];
    }
    Require(SameMatrix(td, expect), "Transpose is not the dense transpose");
  } else {
    Require(d.format == Format::kNm, "Transpose failed: " + std::string(tr.status().message()));
  }

  absl::StatusOr<TensorStats> stats = Inspect(t);
  Require(stats.ok(), "Inspect: " + std::string(stats.status().message()));
  Require(stats->nonzeros == nonzeros, "Inspect nonzeros");
  absl::StatusOr<SpyGrid> spy = Spy(t, 7, 5);
  Require(spy.ok(), "Spy: " + std::string(spy.status().message()));
  int64_t spy_total = 0;
  for (int64_t c : spy->counts) spy_total += c;
  Require(spy_total == nonzeros, "Spy counts do not add up to the non-zeros");
}

std::optional<Tensor> FuzzTensor(FuzzedDataProvider& in, Format f) {
  if (in.ConsumeIntegralInRange(0, 9) != 0) {
    std::optional<Tensor> t = PlausibleTensor(in, f);
    if (t && in.ConsumeIntegralInRange(0, 3) == 0) {
      // Corrupt one byte of one component.
      const auto& specs = t->specs();
      Buffer* b = t->component(specs[in.ConsumeIntegralInRange<size_t>(0, specs.size() - 1)].name);
      if (b->size() > 0) {
        b->as<uint8_t>()[in.ConsumeIntegralInRange<int64_t>(0, b->size() - 1)] =
            in.ConsumeIntegral<uint8_t>();
      }
    }
    return t;
  }
  const TensorDesc d = FuzzDesc(in, f);
  absl::StatusOr<std::vector<ComponentSpec>> specs = ComponentsOf(d);
  if (!specs.ok()) return std::nullopt;
  int64_t bytes = 0;
  for (const ComponentSpec& s : *specs) bytes += s.bytes();
  if (bytes > kMaxFuzzBytes) return std::nullopt;
  absl::StatusOr<Tensor> t = Tensor::Allocate(d);
  if (!t.ok()) return std::nullopt;
  FuzzFill(in, *t);
  return std::move(*t);
}

}  // namespace sparsed::fuzz
