// The CUDA backend's device conversions, transposes, pruning and SpMM of
// every format, against two references:
//  - naive builders written here from the rules of convert.h / prune.h
//    (plain loops over a dense matrix), compared bit for bit;
//  - the CPU backend (bit for bit for conversions and pruning, within the
//    f32 accumulation tolerance for SpMM).
// Values are multiples of 1/32 in [-1, 1] (exact in f16 and bf16, so the
// same matrix exists in every dtype, and |w| ties are frequent), with -0.0
// sprinkled over the zeros of dense inputs. Skipped where no GPU is present.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>

#include "../unit/kernels_test_util.h"
#include "gpu_test_util.h"
#include "sparsed/backend.h"
#include "sparsed/cast.h"
#include "sparsed/gpu_info.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using gpu_test::HaveGpu;

// ------------------------------------------------------------ matrices

// A row-major f32 matrix.
struct Mat {
  int64_t rows = 0, cols = 0;
  std::vector<float> v;
  float at(int64_t r, int64_t c) const { return v[r * cols + c]; }
};

// Random entries of the given density; with nm_m > 0 every group of nm_m
// along a row holds at most nm_n non-zeros. Zeros are -0.0 now and then.
Mat RandomMat(int64_t rows, int64_t cols, double density, std::mt19937_64& rng, int nm_n = 0,
              int nm_m = 0) {
  Mat a{rows, cols, std::vector<float>(rows * cols, 0.0f)};
  std::bernoulli_distribution keep(density), neg_zero(0.1);
  std::uniform_int_distribution<int> q(1, 32), sign(0, 1);
  for (int64_t r = 0; r < rows; ++r) {
    int in_group = 0;
    for (int64_t c = 0; c < cols; ++c) {
      if (nm_m > 0 && c % nm_m == 0) in_group = 0;
      if (keep(rng) && (nm_m == 0 || in_group < nm_n)) {
        a.v[r * cols + c] = (sign(rng) ? -1.0f : 1.0f) * static_cast<float>(q(rng)) / 32.0f;
        ++in_group;
      } else if (neg_zero(rng)) {
        a.v[r * cols + c] = -0.0f;
      }
    }
  }
  return a;
}

// The matrix a tensor of format f built from `a` holds: sparse formats do
// not store -0.0, so their zeros are all +0.
Mat Represented(const Mat& a, Format f) {
  Mat r = a;
  if (IsSparse(f)) {
    for (float& x : r.v) {
      if (x == 0.0f) x = 0.0f;
    }
  }
  return r;
}

Mat Transposed(const Mat& a) {
  Mat t{a.cols, a.rows, std::vector<float>(a.v.size())};
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t c = 0; c < a.cols; ++c) t.v[c * a.rows + r] = a.at(r, c);
  }
  return t;
}

// ----------------------------------------------------- naive builders
// Each builds the f32 host tensor that convert.h says a conversion of `a`
// yields, then casts it to `dtype`.

using gpu_test::Cast;

TensorDesc Desc(Format f, const Mat& a, int64_t nnz, DType idx) {
  return {f, DType::kF32, idx, {a.rows, a.cols}, nnz};
}

Tensor BuildDense(const Mat& a) { return test::MakeDense({a.rows, a.cols}, a.v); }

// Non-zeros in row-major order.
std::vector<test::Triplet> NonZeros(const Mat& a) {
  std::vector<test::Triplet> e;
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t c = 0; c < a.cols; ++c) {
      if (a.at(r, c) != 0.0f) e.push_back({r, c, a.at(r, c)});
    }
  }
  return e;
}

Tensor BuildCsrLike(const Mat& a, DType idx, bool csc) {
  const Mat s = csc ? Transposed(a) : a;  // CSC arrays are the CSR of Aᵀ
  const std::vector<test::Triplet> e = NonZeros(s);
  std::vector<int64_t> ptr(s.rows + 1, 0), ind;
  std::vector<float> val;
  for (const test::Triplet& x : e) {
    ++ptr[x.r + 1];
    ind.push_back(x.c);
    val.push_back(x.v);
  }
  for (int64_t r = 0; r < s.rows; ++r) ptr[r + 1] += ptr[r];
  Tensor t = test::MustAllocate(
      Desc(csc ? Format::kCsc : Format::kCsr, a, static_cast<int64_t>(e.size()), idx));
  test::SetIndices(t, csc ? "col_ptr" : "row_ptr", ptr);
  test::SetIndices(t, csc ? "row_idx" : "col_idx", ind);
  test::SetValues(t, val);
  return t;
}

Tensor BuildBsr(const Mat& a, int64_t R, int64_t C, DType idx) {
  const int64_t nbr = (a.rows + R - 1) / R, nbc = (a.cols + C - 1) / C;
  std::vector<int64_t> brp(nbr + 1, 0), bci;
  std::vector<float> val;
  for (int64_t br = 0; br < nbr; ++br) {
    for (int64_t bc = 0; bc < nbc; ++bc) {
      std::vector<float> block(R * C, 0.0f);  // zero fill (+0)
      bool any = false;
      for (int64_t i = 0; i < R; ++i) {
        for (int64_t j = 0; j < C; ++j) {
          const int64_t r = br * R + i, c = bc * C + j;
          if (r < a.rows && c < a.cols && a.at(r, c) != 0.0f) {
            block[i * C + j] = a.at(r, c);
            any = true;
          }
        }
      }
      if (!any) continue;
      bci.push_back(bc);
      val.insert(val.end(), block.begin(), block.end());
    }
    brp[br + 1] = static_cast<int64_t>(bci.size());
  }
  TensorDesc d = Desc(Format::kBsr, a, static_cast<int64_t>(bci.size()), idx);
  d.block_rows = R;
  d.block_cols = C;
  Tensor t = test::MustAllocate(d);
  test::SetIndices(t, "block_row_ptr", brp);
  test::SetIndices(t, "block_col_idx", bci);
  test::SetValues(t, val);
  return t;
}

// N:M from chosen positions per group (ascending, exactly n each) and the
// values they take.
Tensor NmFromChoice(const Mat& a, int n, int m, DType idx, const std::vector<std::vector<int>>& pos,
                    const std::vector<std::vector<float>>& val) {
  const int64_t groups = a.cols / m;
  TensorDesc d = Desc(Format::kNm, a, a.rows * groups * n, idx);
  d.nm_n = n;
  d.nm_m = m;
  Tensor t = test::MustAllocate(d);
  std::span<float> v = t.data<float>("values");
  std::span<int32_t> meta = t.data<int32_t>("meta");
  std::fill(meta.begin(), meta.end(), 0);
  const int64_t words = (groups + 7) / 8;
  for (int64_t q = 0; q < a.rows * groups; ++q) {
    const int64_t r = q / groups, g = q % groups;
    for (int s = 0; s < n; ++s) {
      v[q * n + s] = val[q][s];
      if (d.nm_packed_2_4()) {
        meta[r * words + g / 8] |= pos[q][s] << (4 * (g % 8) + 2 * s);
      } else {
        meta[q * n + s] = pos[q][s];
      }
    }
  }
  return t;
}

// Conversion to N:M: a group's non-zeros plus the smallest free positions
// (value +0); nullopt when some group has more than n non-zeros.
std::optional<Tensor> BuildNm(const Mat& a, int n, int m, DType idx) {
  if (a.cols % m != 0) return std::nullopt;
  std::vector<std::vector<int>> pos;
  std::vector<std::vector<float>> val;
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t g = 0; g < a.cols / m; ++g) {
      std::vector<bool> taken(m, false);
      int count = 0;
      for (int p = 0; p < m; ++p) {
        if (a.at(r, g * m + p) != 0.0f) taken[p] = true, ++count;
      }
      if (count > n) return std::nullopt;
      for (int p = 0; p < m && count < n; ++p) {
        if (!taken[p]) taken[p] = true, ++count;
      }
      pos.emplace_back();
      val.emplace_back();
      for (int p = 0; p < m; ++p) {
        if (!taken[p]) continue;
        const float x = a.at(r, g * m + p);
        pos.back().push_back(p);
        val.back().push_back(x != 0.0f ? x : 0.0f);
      }
    }
  }
  return NmFromChoice(a, n, m, idx, pos, val);
}

struct FormatParams {
  int64_t R = 1, C = 1;
  int n = 0, m = 0;
};

std::optional<Tensor> Build(const Mat& a, Format f, const FormatParams& p, DType idx, DType dtype) {
  std::optional<Tensor> t;
  switch (f) {
    case Format::kDense:
      t = BuildDense(a);
      break;
    case Format::kCoo:
      t = test::MakeCoo(a.rows, a.cols, NonZeros(a), idx);
      break;
    case Format::kCsr:
      t = BuildCsrLike(a, idx, false);
      break;
    case Format::kCsc:
      t = BuildCsrLike(a, idx, true);
      break;
    case Format::kBsr:
      t = BuildBsr(a, p.R, p.C, idx);
      break;
    case Format::kNm:
      if (p.m == 0) return std::nullopt;
      t = BuildNm(a, p.n, p.m, idx);
      break;
  }
  if (!t.has_value()) return std::nullopt;
  return Cast(*t, dtype);
}

// ------------------------------------------------------------ compare

using gpu_test::ToDevice;

Tensor ToHost(const Tensor& t) {
  absl::StatusOr<Tensor> h = t.CopyTo(Device::Cpu());
  EXPECT_TRUE(h.ok()) << h.status();
  return std::move(h).value();
}

// Same description and every component byte for byte.
void ExpectIdentical(const Tensor& got_any, const Tensor& want) {
  const Tensor got = ToHost(got_any);
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
    const Buffer* gb = got.component(spec.name);
    const Buffer* wb = want.component(spec.name);
    ASSERT_NE(gb, nullptr) << spec.name;
    ASSERT_EQ(gb->size(), wb->size()) << spec.name;
    if (wb->size() == 0) continue;
    if (std::memcmp(gb->data(), wb->data(), wb->size()) != 0) {
      // Name the first differing element.
      const int64_t es = SizeOf(spec.dtype);
      const auto* gp = static_cast<const unsigned char*>(gb->data());
      const auto* wp = static_cast<const unsigned char*>(wb->data());
      int64_t i = 0;
      while (std::memcmp(gp + i * es, wp + i * es, es) == 0) ++i;
      ADD_FAILURE() << spec.name << " differs first at element " << i;
    }
  }
}

std::unique_ptr<Backend> MakeGpu() {
  CudaBackendOptions options;
  options.poison_outputs = true;
  absl::StatusOr<std::unique_ptr<Backend>> b = MakeCudaBackend(options);
  EXPECT_TRUE(b.ok()) << b.status();
  return b.ok() ? std::move(*b) : nullptr;
}

class CudaFormatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveGpu()) GTEST_SKIP() << "no GPU";
    gpu_ = MakeGpu();
    ASSERT_NE(gpu_, nullptr);
    cpu_ = MakeCpuBackend(1);
  }
  std::unique_ptr<Backend> gpu_, cpu_;
};

// ------------------------------------------------------- conversions

struct ConvCase {
  const char* name;
  int64_t rows, cols;
  double density;
  FormatParams p;  // BSR block and N:M of the case (m = 0: no N:M)
};

std::vector<ConvCase> ConvCases() {
  return {
      {"random", 13, 24, 0.3, {3, 5, 2, 4}},
      {"rows0", 0, 8, 0.5, {2, 2, 1, 4}},
      {"cols0", 5, 0, 0.5, {2, 3, 1, 2}},
      {"one_by_one", 1, 1, 1.0, {16, 16, 0, 0}},
      {"one_by_four", 1, 4, 1.0, {1, 1, 2, 4}},
      {"nnz0", 6, 16, 0.0, {4, 4, 2, 8}},
      {"full", 8, 16, 1.0, {2, 4, 4, 8}},
      {"bsr16", 40, 48, 0.05, {16, 16, 4, 8}},
      {"bsr32_edge", 70, 64, 0.03, {32, 32, 4, 16}},
      {"bsr64_edge", 130, 96, 0.02, {64, 64, 8, 32}},
      {"bsr128_edge", 129, 160, 0.01, {128, 128, 1, 4}},
      {"bsr3x5", 17, 32, 0.2, {3, 5, 2, 8}},
      {"nm_8_32", 9, 64, 0.5, {5, 7, 8, 32}},
      {"nm_1_4_long_row", 3, 400, 0.9, {4, 4, 1, 4}},
  };
}

// Block options only for a BSR target and n:m only for an N:M one (the
// options of another target are refused).
ConvertOptions OptionsFor(const FormatParams& p, std::optional<DType> idx, Format to) {
  ConvertOptions o;
  o.index_dtype = idx;
  if (to == Format::kBsr) {
    o.block_rows = p.R;
    o.block_cols = p.C;
  }
  if (to == Format::kNm) {
    o.nm_n = p.n;
    o.nm_m = p.m;
  }
  return o;
}

constexpr DType kValueTypes[] = {DType::kF32, DType::kF16, DType::kBF16};

// Every (from, to) pair on the GPU against the naive builder of `to`; the
// source on the device is unchanged afterwards.
TEST_F(CudaFormatsTest, EveryConversionPairMatchesTheRules) {
  std::mt19937_64 rng(11);
  for (const ConvCase& cc : ConvCases()) {
    const Mat a = RandomMat(cc.rows, cc.cols, cc.density, rng, cc.p.n, cc.p.m);
    for (DType dtype : kValueTypes) {
      for (DType src_idx : {DType::kI32, DType::kI64}) {
        int variant = 0;
        for (Format from : kAllFormats) {
          std::optional<Tensor> src = Build(a, from, cc.p, src_idx, dtype);
          if (!src.has_value()) continue;
          const Tensor dsrc = ToDevice(*src);
          for (Format to : kAllFormats) {
            // Target index dtype: unset, i64, i32 in turn.
            const std::optional<DType> opt_idx = std::array<std::optional<DType>, 3>{
                std::nullopt, DType::kI64, DType::kI32}[variant++ % 3];
            SCOPED_TRACE(StrCat(cc.name, " ", DTypeName(dtype), " ", FormatName(from), "(",
                                DTypeName(src_idx), ") -> ", FormatName(to), " index ",
                                opt_idx ? DTypeName(*opt_idx) : "unset"));
            std::optional<Tensor> want =
                Build(Represented(a, from), to, cc.p, opt_idx.value_or(DType::kI32), dtype);
            if (!want.has_value()) continue;
            if (to == Format::kDense && from == Format::kDense) {
              want = Cast(*src, dtype);  // a copy, description included
            }
            absl::StatusOr<Tensor> got = gpu_->Convert(dsrc, to, OptionsFor(cc.p, opt_idx, to));
            ASSERT_TRUE(got.ok()) << got.status();
            ASSERT_EQ(got->device(), Device::Cuda(0));
            ExpectIdentical(*got, *want);
            if (HasFailure()) return;
          }
          SCOPED_TRACE(StrCat(cc.name, " source ", FormatName(from), " unchanged"));
          ExpectIdentical(dsrc, *src);
          if (HasFailure()) return;
        }
      }
    }
  }
}

TEST_F(CudaFormatsTest, EveryConversionPairMatchesTheCpuBackend) {
  std::mt19937_64 rng(12);
  for (const ConvCase& cc : ConvCases()) {
    const Mat a = RandomMat(cc.rows, cc.cols, cc.density, rng, cc.p.n, cc.p.m);
    for (DType dtype : kValueTypes) {
      for (DType src_idx : {DType::kI32, DType::kI64}) {
        for (Format from : kAllFormats) {
          std::optional<Tensor> src = Build(a, from, cc.p, src_idx, dtype);
          if (!src.has_value()) continue;
          const Tensor dsrc = ToDevice(*src);
          for (Format to : kAllFormats) {
            if (to == Format::kNm && cc.p.m == 0) continue;
            for (std::optional<DType> idx : {std::optional<DType>(), std::optional(DType::kI64)}) {
              SCOPED_TRACE(StrCat(cc.name, " ", DTypeName(dtype), " ", FormatName(from), "(",
                                  DTypeName(src_idx), ") -> ", FormatName(to)));
              const ConvertOptions o = OptionsFor(cc.p, idx, to);
              absl::StatusOr<Tensor> want = cpu_->Convert(*src, to, o);
              ASSERT_TRUE(want.ok()) << want.status();
              absl::StatusOr<Tensor> got = gpu_->Convert(dsrc, to, o);
              ASSERT_TRUE(got.ok()) << got.status();
              ExpectIdentical(*got, *want);
              if (HasFailure()) return;
            }
          }
        }
      }
    }
  }
}

// Explicit stored zeros of COO / CSR / CSC survive conversions among them
// and to dense; BSR and N:M sources drop their stored zeros.
TEST_F(CudaFormatsTest, StoredZerosFollowTheRules) {
  Tensor csr = test::MakeCsr(2, 4, {0, 2, 3}, {1, 3, 0}, {0.0f, 2.0f, -0.0f}, DType::kI32);
  absl::StatusOr<Tensor> coo = gpu_->Convert(ToDevice(csr), Format::kCoo, ConvertOptions{});
  ASSERT_TRUE(coo.ok()) << coo.status();
  ExpectIdentical(*coo,
                  test::MakeCoo(2, 4, {{0, 1, 0.0f}, {0, 3, 2.0f}, {1, 0, -0.0f}}, DType::kI32));
  // A BSR block holding only zeros converts to nothing.
  Mat z{2, 2, {0, 0, 0, 0}};
  Tensor bsr = BuildBsr(Mat{2, 2, {1, 0, 0, 0}}, 2, 2, DType::kI32);
  bsr.data<float>("values")[0] = -0.0f;
  absl::StatusOr<Tensor> back = gpu_->Convert(ToDevice(bsr), Format::kCsr, ConvertOptions{});
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectIdentical(*back, BuildCsrLike(z, DType::kI32, false));
}

TEST_F(CudaFormatsTest, NmGroupWithTooManyEntriesIsInvalidArgumentNamingRowAndGroup) {
  // Row 2, group 1 (columns 4..7) holds three entries; 2:4 keeps two.
  Mat a{4, 8, std::vector<float>(32, 0.0f)};
  a.v[2 * 8 + 4] = 1.0f;
  a.v[2 * 8 + 5] = 0.5f;
  a.v[2 * 8 + 7] = -0.25f;
  a.v[3 * 8 + 1] = 2.0f;
  for (DType dtype : kValueTypes) {
    for (Format from : {Format::kDense, Format::kCsr, Format::kCoo, Format::kCsc, Format::kBsr}) {
      SCOPED_TRACE(StrCat(FormatName(from), " ", DTypeName(dtype)));
      std::optional<Tensor> src = Build(a, from, {2, 2, 0, 0}, DType::kI32, dtype);
      ASSERT_TRUE(src.has_value());
      for (int m : {4, 8}) {  // 2:8 is fine with three, 2:4 is not
        ConvertOptions o;
        o.nm_n = m == 4 ? 2 : 3;
        o.nm_m = m;
        absl::StatusOr<Tensor> got = gpu_->Convert(ToDevice(*src), Format::kNm, o);
        if (m == 8) {
          ASSERT_TRUE(got.ok()) << got.status();
          ExpectIdentical(*got, *Build(a, Format::kNm, {1, 1, 3, 8}, DType::kI32, dtype));
          continue;
        }
        ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
        EXPECT_THAT(got.status().message(), ::testing::HasSubstr("row 2"));
        EXPECT_THAT(got.status().message(), ::testing::HasSubstr("group 1"));
      }
    }
  }
}

TEST_F(CudaFormatsTest, BadTargetsAreInvalidArgument) {
  const Tensor d = ToDevice(BuildDense(Mat{2, 6, std::vector<float>(12, 1.0f)}));
  ConvertOptions o;
  o.block_rows = 0;
  o.block_cols = 2;
  EXPECT_EQ(gpu_->Convert(d, Format::kBsr, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.nm_n = 2;
  o.nm_m = 4;  // 6 columns are not groups of 4
  absl::StatusOr<Tensor> r = gpu_->Convert(d, Format::kNm, o);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), ::testing::HasSubstr("shape[1]"));
  o.nm_n = 4;
  o.nm_m = 3;
  EXPECT_EQ(gpu_->Convert(d, Format::kNm, o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu_->Convert(d, static_cast<Format>(9), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// ----------------------------------------------------------- transposes

void RunTransposes(Backend& gpu, Backend* cpu, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const ConvCase& cc : ConvCases()) {
    // Rows a multiple of m too, so that some N:M transposes fit.
    const Mat a = RandomMat(cc.rows, cc.cols, cc.density, rng, cc.p.n, cc.p.m);
    const Mat at = Transposed(a);
    for (DType dtype : kValueTypes) {
      for (DType idx : {DType::kI32, DType::kI64}) {
        for (Format f : kAllFormats) {
          std::optional<Tensor> src = Build(a, f, cc.p, idx, dtype);
          if (!src.has_value()) continue;
          SCOPED_TRACE(
              StrCat(cc.name, " ", DTypeName(dtype), " ", FormatName(f), " ", DTypeName(idx)));
          const FormatParams tp{cc.p.C, cc.p.R, cc.p.n, cc.p.m};
          // Every format keeps its index dtype (N:M too, as the host does).
          std::optional<Tensor> want = Build(at, f, tp, idx, dtype);
          absl::StatusOr<Tensor> got = gpu.Transpose(ToDevice(*src));
          if (!want.has_value()) {
            EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
            continue;
          }
          ASSERT_TRUE(got.ok()) << got.status();
          ExpectIdentical(*got, *want);
          if (cpu != nullptr) {
            absl::StatusOr<Tensor> ref = cpu->Transpose(*src);
            ASSERT_TRUE(ref.ok()) << ref.status();
            ExpectIdentical(*got, *ref);
          }
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

TEST_F(CudaFormatsTest, TransposeOfEveryFormatMatchesTheRules) {
  RunTransposes(*gpu_, nullptr, 13);
}

TEST_F(CudaFormatsTest, TransposeOfEveryFormatMatchesTheCpuBackend) {
  RunTransposes(*gpu_, cpu_.get(), 14);
}

TEST_F(CudaFormatsTest, TransposeKeepsStoredBsrBlocksAndVectors) {
  // A stored all-zero block stays stored: the transpose moves blocks as they are.
  Tensor bsr = BuildBsr(Mat{2, 4, {1, 0, 0, 2, 0, 0, 3, 0}}, 2, 2, DType::kI32);
  std::span<float> v = bsr.data<float>("values");
  std::fill(v.begin(), v.begin() + 4, 0.0f);
  absl::StatusOr<Tensor> got = gpu_->Transpose(ToDevice(bsr));
  ASSERT_TRUE(got.ok()) << got.status();
  const Tensor h = ToHost(*got);
  EXPECT_EQ(h.desc().nnz, 2);
  EXPECT_EQ(test::GetIndices(h, "block_row_ptr"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(test::GetIndices(h, "block_col_idx"), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(test::GetValues(h), (std::vector<float>{0, 0, 0, 0, 0, 3, 2, 0}));
  const Tensor vec = test::MakeDense({5}, {1, 2, 3, 4, 5});
  absl::StatusOr<Tensor> vt = gpu_->Transpose(ToDevice(vec));
  ASSERT_TRUE(vt.ok()) << vt.status();
  ExpectIdentical(*vt, vec);
}

// ------------------------------------------------------------- pruning

// Row-major positions of `a`'s non-zeros ranked by |w| descending, ties by
// position (a stable sort of the row-major order).
std::vector<int64_t> RankByMagnitude(const Mat& a, std::vector<int64_t> positions) {
  std::stable_sort(positions.begin(), positions.end(),
                   [&](int64_t x, int64_t y) { return std::abs(a.v[x]) > std::abs(a.v[y]); });
  return positions;
}

int64_t Kept(double sparsity, int64_t total) {
  return total - static_cast<int64_t>(std::llround(sparsity * static_cast<double>(total)));
}

Tensor NaiveMagnitude(const Mat& a, double sparsity, bool per_row) {
  std::vector<bool> keep(a.v.size(), false);
  auto take = [&](std::vector<int64_t> pos, int64_t kept) {
    pos = RankByMagnitude(a, std::move(pos));
    for (int64_t i = 0; i < std::min<int64_t>(kept, pos.size()); ++i) keep[pos[i]] = true;
  };
  if (per_row) {
    for (int64_t r = 0; r < a.rows; ++r) {
      std::vector<int64_t> pos;
      for (int64_t c = 0; c < a.cols; ++c) {
        if (a.at(r, c) != 0.0f) pos.push_back(r * a.cols + c);
      }
      take(pos, Kept(sparsity, a.cols));
    }
  } else {
    std::vector<int64_t> pos;
    for (int64_t i = 0; i < static_cast<int64_t>(a.v.size()); ++i) {
      if (a.v[i] != 0.0f) pos.push_back(i);
    }
    take(pos, Kept(sparsity, a.rows * a.cols));
  }
  Mat kept{a.rows, a.cols, std::vector<float>(a.v.size(), 0.0f)};
  for (size_t i = 0; i < a.v.size(); ++i) {
    if (keep[i]) kept.v[i] = a.v[i];
  }
  return BuildCsrLike(kept, DType::kI32, false);
}

Tensor NaiveNm(const Mat& a, int n, int m) {
  std::vector<std::vector<int>> pos;
  std::vector<std::vector<float>> val;
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t g = 0; g < a.cols / m; ++g) {
      std::vector<int64_t> cand(m);
      std::iota(cand.begin(), cand.end(), r * a.cols + g * m);
      std::vector<int64_t> best = RankByMagnitude(a, cand);
      best.resize(n);
      std::sort(best.begin(), best.end());
      pos.emplace_back();
      val.emplace_back();
      for (int64_t i : best) {
        pos.back().push_back(static_cast<int>(i - (r * a.cols + g * m)));
        val.back().push_back(a.v[i]);
      }
    }
  }
  return NmFromChoice(
      a, n, m,
      NarrowestIndexType(
          {Format::kNm, DType::kF32, DType::kI32, {a.rows, a.cols}, a.rows * (a.cols / m) * n}),
      pos, val);
}

Tensor NaiveBlocks(const Mat& a, int64_t R, int64_t C, double sparsity) {
  const int64_t nbr = (a.rows + R - 1) / R, nbc = (a.cols + C - 1) / C;
  std::vector<double> norm(nbr * nbc, 0.0);
  for (int64_t q = 0; q < nbr * nbc; ++q) {
    double s = 0.0;
    for (int64_t r = (q / nbc) * R; r < std::min(a.rows, (q / nbc + 1) * R); ++r) {
      for (int64_t c = (q % nbc) * C; c < std::min(a.cols, (q % nbc + 1) * C); ++c) {
        const double x = a.at(r, c);
        s += x * x;
      }
    }
    norm[q] = std::sqrt(s);
  }
  std::vector<int64_t> order(nbr * nbc);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t x, int64_t y) { return norm[x] > norm[y]; });
  std::vector<bool> keep(order.size(), false);
  const int64_t kept = Kept(sparsity, nbr * nbc);
  for (int64_t i = 0; i < std::min<int64_t>(kept, order.size()); ++i) {
    if (norm[order[i]] != 0.0) keep[order[i]] = true;
  }
  std::vector<int64_t> brp(nbr + 1, 0), bci;
  std::vector<float> val;
  for (int64_t q = 0; q < nbr * nbc; ++q) {
    if (keep[q]) {
      bci.push_back(q % nbc);
      for (int64_t i = 0; i < R; ++i) {
        for (int64_t j = 0; j < C; ++j) {
          const int64_t r = (q / nbc) * R + i, c = (q % nbc) * C + j;
          val.push_back(r < a.rows && c < a.cols ? a.at(r, c) : 0.0f);  // stored values as they are
        }
      }
    }
    brp[q / nbc + 1] = static_cast<int64_t>(bci.size());
  }
  TensorDesc d = Desc(Format::kBsr, a, static_cast<int64_t>(bci.size()), DType::kI32);
  d.block_rows = R;
  d.block_cols = C;
  Tensor t = test::MustAllocate(d);
  test::SetIndices(t, "block_row_ptr", brp);
  test::SetIndices(t, "block_col_idx", bci);
  test::SetValues(t, val);
  return t;
}

struct PruneCase {
  const char* name;
  int64_t rows, cols;
  double density;
};

std::vector<PruneCase> PruneCases() {
  return {{"random", 24, 64, 0.6}, {"rows0", 0, 32, 0.5},         {"dense_full", 8, 32, 1.0},
          {"nnz0", 4, 32, 0.0},    {"edge_blocks", 131, 96, 0.3}, {"one_row", 1, 64, 0.8},
          {"tall", 300, 32, 0.1}};
}

// Runs every prune of `a` given as format `from` on both backends and
// against the naive result.
void CheckPrunes(Backend& gpu, Backend& cpu, const Mat& a, Format from, DType dtype,
                 bool with_cpu) {
  std::optional<Tensor> src = Build(a, from, {4, 4, 0, 0}, DType::kI32, dtype);
  ASSERT_TRUE(src.has_value());
  const Mat clean = Represented(a, from);
  const Tensor dsrc = ToDevice(*src);
  auto run = [&](const PruneOptions& o, const Tensor& naive) {
    absl::StatusOr<Tensor> got = gpu.Prune(dsrc, o);
    ASSERT_TRUE(got.ok()) << got.status();
    ExpectIdentical(*got, Cast(naive, dtype));
    if (with_cpu) {
      absl::StatusOr<Tensor> want = cpu.Prune(*src, o);
      ASSERT_TRUE(want.ok()) << want.status();
      ExpectIdentical(*got, *want);
    }
  };
  for (bool per_row : {false, true}) {
    for (double s : {0.0, 0.3, 0.5, 0.77, 0.9, 1.0}) {
      SCOPED_TRACE(StrCat("magnitude sparsity ", s, per_row ? " per row" : ""));
      PruneOptions o;
      o.mode = PruneMode::kMagnitude;
      o.sparsity = s;
      o.per_row = per_row;
      run(o, NaiveMagnitude(clean, s, per_row));
      if (::testing::Test::HasFailure()) return;
    }
  }
  for (auto [n, m] : {std::pair{1, 4}, {2, 4}, {2, 8}, {4, 8}, {4, 16}, {8, 32}}) {
    if (a.cols % m != 0) continue;
    SCOPED_TRACE(StrCat("n:m ", n, ":", m));
    PruneOptions o;
    o.mode = PruneMode::kNm;
    o.nm_n = n;
    o.nm_m = m;
    run(o, NaiveNm(clean, n, m));
    if (::testing::Test::HasFailure()) return;
  }
  for (auto [R, C] :
       {std::pair<int64_t, int64_t>{16, 16}, {32, 32}, {64, 64}, {128, 128}, {3, 5}}) {
    for (double s : {0.0, 0.5, 0.8, 1.0}) {
      SCOPED_TRACE(StrCat("block ", R, "x", C, " sparsity ", s));
      PruneOptions o;
      o.mode = PruneMode::kBlock;
      o.block_rows = R;
      o.block_cols = C;
      o.sparsity = s;
      run(o, NaiveBlocks(clean, R, C, s));
      if (::testing::Test::HasFailure()) return;
    }
  }
}

TEST_F(CudaFormatsTest, EveryPruneModeMatchesTheRules) {
  std::mt19937_64 rng(21);
  for (const PruneCase& pc : PruneCases()) {
    const Mat a = RandomMat(pc.rows, pc.cols, pc.density, rng);
    for (DType dtype : kValueTypes) {
      for (Format from : {Format::kDense, Format::kCsr, Format::kCoo, Format::kBsr}) {
        SCOPED_TRACE(StrCat(pc.name, " ", DTypeName(dtype), " from ", FormatName(from)));
        CheckPrunes(*gpu_, *cpu_, a, from, dtype, false);
        if (HasFailure()) return;
      }
    }
  }
}

TEST_F(CudaFormatsTest, EveryPruneModeMatchesTheCpuBackend) {
  std::mt19937_64 rng(22);
  for (const PruneCase& pc : PruneCases()) {
    const Mat a = RandomMat(pc.rows, pc.cols, pc.density, rng);
    for (DType dtype : kValueTypes) {
      for (Format from : {Format::kDense, Format::kCsr}) {
        SCOPED_TRACE(StrCat(pc.name, " ", DTypeName(dtype), " from ", FormatName(from)));
        CheckPrunes(*gpu_, *cpu_, a, from, dtype, true);
        if (HasFailure()) return;
      }
    }
  }
}

TEST_F(CudaFormatsTest, BadPruneOptionsAreInvalidArgument) {
  const Tensor d = ToDevice(BuildDense(Mat{2, 8, std::vector<float>(16, 1.0f)}));
  PruneOptions o;
  o.sparsity = 1.5;
  EXPECT_EQ(gpu_->Prune(d, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.mode = PruneMode::kNm;
  o.nm_n = 2;
  o.nm_m = 3;
  EXPECT_EQ(gpu_->Prune(d, o).status().code(), absl::StatusCode::kInvalidArgument);
  o = {};
  o.mode = PruneMode::kBlock;
  o.sparsity = 0.5;
  EXPECT_EQ(gpu_->Prune(d, o).status().code(), absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- SpMM

struct SpmmShape {
  const char* name;
  int64_t m, k, n;
  double density;
  FormatParams p;  // of the sparse operand (its stored shape must suit them)
};

std::vector<SpmmShape> SpmmShapes() {
  return {
      {"random", 24, 32, 9, 0.3, {3, 5, 2, 4}},
      {"m0", 0, 16, 4, 0.5, {2, 2, 2, 4}},
      {"k0", 8, 0, 5, 0.5, {2, 2, 1, 2}},
      {"n0", 8, 16, 0, 0.5, {2, 2, 2, 4}},
      {"one", 4, 4, 1, 1.0, {1, 1, 2, 4}},
      {"bsr16_edge", 40, 64, 33, 0.2, {16, 16, 4, 8}},
      {"bsr32", 64, 96, 16, 0.2, {32, 32, 4, 16}},
      {"bsr64_edge", 100, 128, 8, 0.1, {64, 64, 8, 32}},
      {"bsr128_edge", 130, 256, 40, 0.05, {128, 128, 1, 4}},
      {"wide_n", 32, 32, 130, 0.3, {3, 5, 2, 8}},
  };
}

struct SpmmForm {
  bool a_sparse, ta, tb, epilogue;
};

constexpr SpmmForm kForms[] = {
    {true, false, false, false}, {true, false, false, true}, {true, true, false, false},
    {true, false, true, true},   {true, true, true, true},   {false, false, false, false},
    {false, true, true, true},   {false, false, true, true}, {false, true, false, false},
};

struct SpmmOperands {
  Tensor a, b, c, bias;
  Mat da, db;  // op-free dense copies of a and b
  SpmmForm form;
  float alpha = 1, beta = 0;
  std::optional<float> clamp;
};

std::vector<float> RandomValues(int64_t count, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> q(-32, 32);
  std::vector<float> v(count);
  for (float& x : v) x = static_cast<float>(q(rng)) / 32.0f;
  return v;
}

// nullopt when the sparse operand's stored shape does not suit the format.
std::optional<SpmmOperands> MakeSpmm(const SpmmShape& s, Format f, const SpmmForm& form,
                                     DType dtype, DType idx, std::mt19937_64& rng) {
  SpmmOperands o;
  o.form = form;
  const bool sparse_t = form.a_sparse ? form.ta : form.tb;
  int64_t sr = form.a_sparse ? s.m : s.k, sc = form.a_sparse ? s.k : s.n;
  if (sparse_t) std::swap(sr, sc);
  if (f == Format::kNm && (s.p.m == 0 || sc % s.p.m != 0)) return std::nullopt;
  const Mat sparse =
      RandomMat(sr, sc, s.density, rng, f == Format::kNm ? s.p.n : 0, f == Format::kNm ? s.p.m : 0);
  int64_t dr = form.a_sparse ? s.k : s.m, dc = form.a_sparse ? s.n : s.k;
  if (form.a_sparse ? form.tb : form.ta) std::swap(dr, dc);
  const Mat dense{dr, dc, RandomValues(dr * dc, rng)};
  std::optional<Tensor> st = Build(sparse, f, s.p, idx, dtype);
  if (!st.has_value()) return std::nullopt;
  Tensor dt = Cast(BuildDense(dense), dtype);
  o.da = form.a_sparse ? sparse : dense;
  o.db = form.a_sparse ? dense : sparse;
  o.a = form.a_sparse ? std::move(*st) : std::move(dt);
  o.b = form.a_sparse ? std::move(dt) : std::move(*st);
  if (form.epilogue) {
    o.alpha = -1.25f;
    o.beta = 0.5f;
    o.clamp = 0.3f;
    o.c = test::MakeDense({s.m, s.n}, RandomValues(s.m * s.n, rng));
    o.bias = test::MakeDense({s.n}, RandomValues(s.n, rng));
  }
  return o;
}

SpmmArgs ArgsOf(const SpmmOperands& o, const Tensor& a, const Tensor& b, const Tensor& c,
                const Tensor& bias) {
  SpmmArgs args;
  args.a = &a;
  args.b = &b;
  args.transpose_a = o.form.ta;
  args.transpose_b = o.form.tb;
  args.alpha = o.alpha;
  args.beta = o.beta;
  if (o.form.epilogue) {
    args.c = &c;
    args.epilogue.bias = &bias;
    args.epilogue.relu = true;
    args.epilogue.clamp_max = o.clamp;
  }
  return args;
}

// Naive float64 product with the epilogue, and the scale of its terms.
void NaiveSpmm(const SpmmOperands& o, int64_t m, int64_t k, int64_t n, std::vector<double>* out,
               std::vector<double>* scale) {
  auto opa = [&](int64_t i, int64_t l) { return o.form.ta ? o.da.at(l, i) : o.da.at(i, l); };
  auto opb = [&](int64_t l, int64_t j) { return o.form.tb ? o.db.at(j, l) : o.db.at(l, j); };
  out->assign(m * n, 0.0);
  scale->assign(m * n, 1e-6);
  const std::vector<float> c = o.form.epilogue ? test::GetValues(o.c) : std::vector<float>();
  const std::vector<float> bias = o.form.epilogue ? test::GetValues(o.bias) : std::vector<float>();
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0, mag = 0;
      for (int64_t l = 0; l < k; ++l) {
        acc += static_cast<double>(opa(i, l)) * opb(l, j);
        mag += std::abs(static_cast<double>(opa(i, l)) * opb(l, j));
      }
      double v = o.alpha * acc;
      double sc = std::abs(o.alpha) * mag + 1e-6;
      if (o.form.epilogue) {
        v += o.beta * c[i * n + j];
        v += bias[j];
        v = std::min<double>(std::max(v, 0.0), *o.clamp);
        sc += std::abs(o.beta * c[i * n + j]) + std::abs(bias[j]);
      }
      (*out)[i * n + j] = v;
      (*scale)[i * n + j] = sc;
    }
  }
}

void CompareSpmm(Backend& gpu, Backend* cpu, const SpmmShape& s, const SpmmOperands& o) {
  const Tensor da = ToDevice(o.a), db = ToDevice(o.b);
  const Tensor dc = o.form.epilogue ? ToDevice(o.c) : Tensor();
  const Tensor dbias = o.form.epilogue ? ToDevice(o.bias) : Tensor();
  absl::StatusOr<Tensor> got = gpu.Spmm(ArgsOf(o, da, db, dc, dbias));
  ASSERT_TRUE(got.ok()) << got.status();
  const Tensor h = ToHost(*got);
  ASSERT_EQ(h.desc().shape, (std::vector<int64_t>{s.m, s.n}));
  std::vector<double> want, scale;
  NaiveSpmm(o, s.m, s.k, s.n, &want, &scale);
  const std::vector<float> g = test::GetValues(h);
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_FALSE(std::isnan(g[i])) << "element " << i << " not written (poison left)";
    ASSERT_NEAR(g[i], want[i], 3e-5 * scale[i]) << "element " << i;
  }
  if (cpu != nullptr) {
    absl::StatusOr<Tensor> ref = cpu->Spmm(ArgsOf(o, o.a, o.b, o.c, o.bias));
    ASSERT_TRUE(ref.ok()) << ref.status();
    const std::vector<float> w = test::GetValues(*ref);
    ASSERT_EQ(w.size(), g.size());
    for (size_t i = 0; i < g.size(); ++i) {
      ASSERT_NEAR(g[i], w[i], 3e-5 * scale[i]) << "element " << i << " vs cpu";
    }
  }
}

void RunSpmmMatrix(Backend& gpu, Backend* cpu, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const SpmmShape& s : SpmmShapes()) {
    for (Format f : {Format::kCoo, Format::kCsr, Format::kCsc, Format::kBsr, Format::kNm}) {
      for (DType dtype : kValueTypes) {
        int variant = 0;
        for (const SpmmForm& form : kForms) {
          const DType idx = variant++ % 2 == 0 ? DType::kI32 : DType::kI64;
          std::optional<SpmmOperands> o = MakeSpmm(s, f, form, dtype, idx, rng);
          if (!o.has_value()) continue;
          SCOPED_TRACE(StrCat(s.name, " ", FormatName(f), " ", DTypeName(dtype), " ",
                              DTypeName(idx), form.a_sparse ? " sparse_a" : " sparse_b",
                              form.ta ? " ta" : "", form.tb ? " tb" : "",
                              form.epilogue ? " epilogue" : ""));
          CompareSpmm(gpu, cpu, s, *o);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

TEST_F(CudaFormatsTest, SpmmOfEveryFormatAndOperandFormMatchesNaiveProduct) {
  RunSpmmMatrix(*gpu_, nullptr, 31);
}

TEST_F(CudaFormatsTest, SpmmOfEveryFormatAndOperandFormMatchesTheCpuBackend) {
  RunSpmmMatrix(*gpu_, cpu_.get(), 32);
}

TEST(CudaFormatsNoGpuTest, ConvertWithoutGpuFailsCleanly) {
  if (HaveGpu()) GTEST_SKIP() << "a GPU is present";
  EXPECT_EQ(MakeCudaBackend({}).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace sparsed
