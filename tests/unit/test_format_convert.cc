// Convert between every pair of the six formats and Transpose of every format,
// against the naive encoder/decoder of format_test_util.h: results must be
// byte-identical to the naive encoding and round trips exact, for f32, f16 and
// bf16 values (random bit patterns, NaN and Inf included) and i32/i64 indices.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <random>

#include "format_test_util.h"
#include "sparsed/convert.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

using test::FormatParams;
using test::Matrix;
using ::testing::HasSubstr;

struct Case {
  std::string name;
  int64_t rows, cols;
  double density;
  int64_t block_rows, block_cols;
  int nm_n = 0, nm_m = 0;  // 0: N:M does not apply (cols not a multiple of any m)
};

std::vector<Case> Cases() {
  return {
      {"empty_0x0", 0, 0, 0.5, 2, 2, 2, 4},
      {"zero_rows", 0, 8, 0.5, 3, 5, 2, 4},
      {"zero_cols", 5, 0, 0.5, 2, 2, 1, 4},
      {"one_by_one", 1, 1, 1.0, 1, 1},
      {"one_by_one_zero", 1, 1, 0.0, 2, 3},
      {"all_zero", 6, 8, 0.0, 2, 4, 2, 4},
      {"full", 5, 7, 1.0, 2, 3},
      {"full_groups_4_8", 4, 16, 1.0, 4, 4, 4, 8},
      {"ragged_blocks_3x5", 10, 13, 0.3, 3, 5},
      {"blocks_1x1_1_4", 9, 12, 0.5, 1, 1, 1, 4},
      {"blocks_16_1_2", 40, 50, 0.3, 16, 16, 1, 2},
      {"blocks_32_2_8", 70, 64, 0.2, 32, 32, 2, 8},
      {"blocks_64_4_16", 130, 96, 0.1, 64, 64, 4, 16},
      {"blocks_128_8_32", 150, 160, 0.05, 128, 128, 8, 32},
      {"rect_blocks_5x3_4_8", 20, 24, 0.5, 5, 3, 4, 8},
      {"rect_blocks_3x5_2_4", 11, 20, 0.5, 3, 5, 2, 4},
      {"nm_2_4_partial_word", 7, 72, 0.7, 4, 8, 2, 4},  // 18 groups: 3 words, half unused
      {"nm_2_4_full_word", 3, 32, 0.9, 2, 2, 2, 4},
      {"tall", 60, 4, 0.6, 7, 2, 2, 4},
      {"sparse_rows_cols_empty", 33, 40, 0.02, 4, 4, 2, 8},
  };
}

FormatParams ParamsFor(const Case& c, DType idx) {
  return {idx, c.block_rows, c.block_cols, c.nm_n, c.nm_m};
}

// Options Convert needs for target `to` (only that target's options).
ConvertOptions OptionsFor(const Case& c, Format to, std::optional<DType> idx) {
  ConvertOptions o;
  o.index_dtype = idx;
  if (to == Format::kBsr) {
    o.block_rows = c.block_rows;
    o.block_cols = c.block_cols;
  }
  if (to == Format::kNm) {
    o.nm_n = c.nm_n;
    o.nm_m = c.nm_m;
  }
  return o;
}

using PairParam = std::tuple<Format, Format, DType, DType>;

class ConvertPairTest : public ::testing::TestWithParam<PairParam> {};

TEST_P(ConvertPairTest, MatchesNaiveEncodingAndRoundTripsExactly) {
  const auto [from, to, dtype, idx] = GetParam();
  std::mt19937_64 rng(2024);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    const Matrix x = test::RandomMatrix(c.rows, c.cols, c.density, dtype, rng, c.nm_n, c.nm_m);
    if ((from == Format::kNm || to == Format::kNm) && c.nm_m == 0) continue;
    const FormatParams p = ParamsFor(c, idx);
    const Tensor src = test::Encode(x, from, p);
    ASSERT_TRUE(ValidateTensor(src).ok()) << ValidateTensor(src);
    ASSERT_EQ(test::Decode(src), x);  // the test's own encoder and decoder agree

    absl::StatusOr<Tensor> out = Convert(src, to, OptionsFor(c, to, idx));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(ValidateTensor(*out).ok()) << ValidateTensor(*out);
    test::ExpectSameTensor(*out, test::Encode(x, to, p));
    EXPECT_EQ(test::Decode(*out), x);

    absl::StatusOr<Tensor> back = Convert(*out, from, OptionsFor(c, from, idx));
    ASSERT_TRUE(back.ok()) << back.status();
    test::ExpectSameTensor(*back, src);

    // Unset index dtype: the narrowest, i32 for these small matrices.
    absl::StatusOr<Tensor> narrow = Convert(src, to, OptionsFor(c, to, std::nullopt));
    ASSERT_TRUE(narrow.ok()) << narrow.status();
    test::ExpectSameTensor(*narrow, test::Encode(x, to, ParamsFor(c, DType::kI32)));
  }
}

std::string PairName(const ::testing::TestParamInfo<PairParam>& info) {
  const auto& [from, to, dtype, idx] = info.param;
  return StrCat(FormatName(from), "_to_", FormatName(to), "_", DTypeName(dtype), "_",
                DTypeName(idx));
}

INSTANTIATE_TEST_SUITE_P(
    AllPairs, ConvertPairTest,
    ::testing::Combine(::testing::ValuesIn(kAllFormats), ::testing::ValuesIn(kAllFormats),
                       ::testing::Values(DType::kF32, DType::kF16, DType::kBF16),
                       ::testing::Values(DType::kI32, DType::kI64)),
    PairName);

// ---------------------------------------------------------------------------
// 2:4 metadata, bit by bit.

TEST(ConvertNm, Packed24MetadataBitByBit) {
  std::mt19937_64 rng(77);
  for (int64_t cols : {4, 28, 32, 36, 64, 100}) {
    const int64_t rows = 5, groups = cols / 4, words = (groups + 7) / 8;
    const Matrix x = test::RandomMatrix(rows, cols, 0.6, DType::kF32, rng, 2, 4);
    ConvertOptions o;
    o.nm_n = 2;
    o.nm_m = 4;
    absl::StatusOr<Tensor> t = Convert(test::Encode(x, Format::kDense, {}), Format::kNm, o);
    ASSERT_TRUE(t.ok()) << t.status();
    std::span<const int32_t> meta = t->data<int32_t>("meta");
    ASSERT_EQ(static_cast<int64_t>(meta.size()), rows * words);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t w = 0; w < words; ++w) {
        const uint32_t word = static_cast<uint32_t>(meta[r * words + w]);
        for (int bit = 0; bit < 32; ++bit) {
          // Bit `bit` of word w is bit (bit % 2) of kept position (bit % 4) / 2
          // of group 8w + bit / 4; bits past the last group are 0.
          const int64_t g = 8 * w + bit / 4;
          int want = 0;
          if (g < groups) {
            const std::vector<int> kept = test::KeptPositions(x, r, g, 2, 4);
            want = (kept[(bit % 4) / 2] >> (bit % 2)) & 1;
          }
          ASSERT_EQ(static_cast<int>((word >> bit) & 1u), want)
              << "cols " << cols << " row " << r << " word " << w << " bit " << bit;
        }
      }
    }
  }
}

TEST(ConvertNm, ZeroFillTakesLowestUnusedPositions) {
  // Row 0: groups {}, {0}, {1}, {3}, {2, 3}, {0, 2}, {1, 2}, {0, 1}.
  const std::vector<std::vector<int>> nonzeros = {{},     {0},    {1},    {3},
                                                  {2, 3}, {0, 2}, {1, 2}, {0, 1}};
  const std::vector<std::pair<int, int>> kept = {{0, 1}, {0, 1}, {0, 1}, {0, 3},
                                                 {2, 3}, {0, 2}, {1, 2}, {0, 1}};
  std::vector<float> v(32, 0.0f);
  for (size_t g = 0; g < nonzeros.size(); ++g) {
    for (int p : nonzeros[g]) v[g * 4 + p] = static_cast<float>(10 * g + p + 1);
  }
  ConvertOptions o;
  o.nm_n = 2;
  o.nm_m = 4;
  absl::StatusOr<Tensor> t = Convert(test::MakeDense({1, 32}, v), Format::kNm, o);
  ASSERT_TRUE(t.ok()) << t.status();
  const uint32_t word = static_cast<uint32_t>(t->data<int32_t>("meta")[0]);
  const std::vector<float> values = test::GetValues(*t);
  for (size_t g = 0; g < kept.size(); ++g) {
    EXPECT_EQ((word >> (4 * g)) & 3u, static_cast<uint32_t>(kept[g].first)) << g;
    EXPECT_EQ((word >> (4 * g + 2)) & 3u, static_cast<uint32_t>(kept[g].second)) << g;
    EXPECT_EQ(values[2 * g], v[g * 4 + kept[g].first]) << g;
    EXPECT_EQ(values[2 * g + 1], v[g * 4 + kept[g].second]) << g;
  }
}

TEST(ConvertNm, TooManyNonZerosInAGroupNamesRowAndGroup) {
  std::vector<float> v(2 * 12, 0.0f);
  v[12 + 8] = v[12 + 9] = v[12 + 11] = 1.0f;  // row 1, group 2: three non-zeros
  ConvertOptions o;
  o.nm_n = 2;
  o.nm_m = 4;
  const Tensor dense = test::MakeDense({2, 12}, v);
  for (Format from : {Format::kDense, Format::kCsr, Format::kCsc, Format::kBsr}) {
    SCOPED_TRACE(FormatName(from));
    ConvertOptions to_from;
    if (from == Format::kBsr) to_from.block_rows = to_from.block_cols = 2;
    absl::StatusOr<Tensor> src = Convert(dense, from, to_from);
    ASSERT_TRUE(src.ok()) << src.status();
    absl::Status s = Convert(*src, Format::kNm, o).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(
        std::string(s.message()),
        HasSubstr("row 1, group 2 (columns 8..11) has 3 non-zeros but 2:4 keeps at most 2"));
  }
  // 3:4 holds the same rows.
  o.nm_n = 3;
  EXPECT_TRUE(Convert(dense, Format::kNm, o).ok());
}

TEST(ConvertNm, StoredZerosCountAsEmpty) {
  // CSR row 0 stores 3 entries in group 0 but one is an explicit zero.
  Tensor csr = test::MakeCsr(1, 4, {0, 3}, {0, 1, 3}, {5.0f, 0.0f, 7.0f}, DType::kI32);
  ConvertOptions o;
  o.nm_n = 2;
  o.nm_m = 4;
  absl::StatusOr<Tensor> t = Convert(csr, Format::kNm, o);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(test::GetValues(*t), (std::vector<float>{5.0f, 7.0f}));
  EXPECT_EQ(t->data<int32_t>("meta")[0], 0 | (3 << 2));
}

// ---------------------------------------------------------------------------
// BSR specifics.

TEST(ConvertBsr, FromBsrDropsStoredZerosAndZeroBlocks) {
  // 2x4 with 2x2 blocks: block 0 holds an explicit 0 and a 3, block 1 is all 0.
  TensorDesc d{Format::kBsr, DType::kF32, DType::kI32, {2, 4}, 2};
  d.block_rows = d.block_cols = 2;
  Tensor bsr = test::MustAllocate(d);
  test::SetIndices(bsr, "block_row_ptr", {0, 2});
  test::SetIndices(bsr, "block_col_idx", {0, 1});
  test::SetValues(bsr, {0.0f, 3.0f, -0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f});
  absl::StatusOr<Tensor> csr = Convert(bsr, Format::kCsr);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_EQ(test::GetIndices(*csr, "row_ptr"), (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(test::GetIndices(*csr, "col_idx"), (std::vector<int64_t>{1}));
  EXPECT_EQ(test::GetValues(*csr), (std::vector<float>{3.0f}));
  // Stored blocks survive Transpose (the format stays BSR).
  absl::StatusOr<Tensor> t = Transpose(bsr);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->desc().nnz, 2);
}

TEST(ConvertBsr, ExplicitZeroEntryStillStoresItsBlock) {
  Tensor csr = test::MakeCsr(2, 4, {0, 1, 1}, {3}, {0.0f}, DType::kI64);
  ConvertOptions o;
  o.block_rows = 2;
  o.block_cols = 2;
  absl::StatusOr<Tensor> bsr = Convert(csr, Format::kBsr, o);
  ASSERT_TRUE(bsr.ok()) << bsr.status();
  EXPECT_EQ(bsr->desc().nnz, 1);
  EXPECT_EQ(test::GetIndices(*bsr, "block_col_idx"), (std::vector<int64_t>{1}));
  EXPECT_EQ(test::GetValues(*bsr), (std::vector<float>(4, 0.0f)));
}

// ---------------------------------------------------------------------------
// Option checks.

absl::Status ConvertStatus(const Tensor& t, Format to, const ConvertOptions& o) {
  return Convert(t, to, o).status();
}

#define EXPECT_INVALID(status, substr)                              \
  do {                                                              \
    absl::Status _s = (status);                                     \
    EXPECT_EQ(_s.code(), absl::StatusCode::kInvalidArgument) << _s; \
    EXPECT_THAT(std::string(_s.message()), HasSubstr(substr));      \
  } while (0)

TEST(ConvertOptions, RejectsOptionsOfAnotherTarget) {
  const Tensor d = test::MakeDense({4, 8}, std::vector<float>(32, 1.0f));
  ConvertOptions o;
  o.block_rows = 2;
  EXPECT_INVALID(ConvertStatus(d, Format::kCsr, o),
                 "options.block_rows = 2 is only for a bsr target, not csr");
  o = {};
  o.block_cols = 3;
  EXPECT_INVALID(ConvertStatus(d, Format::kNm, o),
                 "options.block_cols = 3 is only for a bsr target, not nm");
  o = {};
  o.nm_n = 2;
  EXPECT_INVALID(ConvertStatus(d, Format::kDense, o),
                 "options.nm_n = 2 is only for an nm target, not dense");
  o = {};
  o.block_rows = o.block_cols = 2;
  o.nm_m = 4;
  EXPECT_INVALID(ConvertStatus(d, Format::kBsr, o),
                 "options.nm_m = 4 is only for an nm target, not bsr");
}

TEST(ConvertOptions, BsrNeedsSaneBlocks) {
  const Tensor d = test::MakeDense({4, 8}, std::vector<float>(32, 1.0f));
  ConvertOptions o;
  EXPECT_INVALID(ConvertStatus(d, Format::kBsr, o), "options.block_rows = 0 must be >= 1");
  o.block_rows = 2;
  EXPECT_INVALID(ConvertStatus(d, Format::kBsr, o), "options.block_cols = 0 must be >= 1");
  o.block_cols = 2000;
  EXPECT_INVALID(ConvertStatus(d, Format::kBsr, o), "options.block[1] = 2000 is outside [1, 1024]");
  o.block_cols = 2;
  EXPECT_TRUE(ConvertStatus(d, Format::kBsr, o).ok());
}

TEST(ConvertOptions, NmNeedsSaneNAndM) {
  const Tensor d = test::MakeDense({2, 12}, std::vector<float>(24, 0.0f));
  for (auto [n, m] :
       std::vector<std::pair<int, int>>{{0, 0}, {0, 4}, {4, 4}, {5, 4}, {1, 1}, {2, 64}}) {
    ConvertOptions o;
    o.nm_n = n;
    o.nm_m = m;
    EXPECT_INVALID(ConvertStatus(d, Format::kNm, o),
                   StrCat("options.nm_n:nm_m = ", n, ":", m, " must satisfy 1 <= n < m <= 32"));
  }
  ConvertOptions o;
  o.nm_n = 2;
  o.nm_m = 8;
  EXPECT_INVALID(ConvertStatus(d, Format::kNm, o),
                 "options.nm_m = 8 does not divide tensor.shape[1] = 12");
}

TEST(Convert, RejectsInvalidSourceOfNewFormats) {
  Tensor csc = test::MustAllocate({Format::kCsc, DType::kF32, DType::kI32, {3, 2}, 1});
  test::SetIndices(csc, "col_ptr", {0, 1, 1});
  test::SetIndices(csc, "row_idx", {7});
  test::SetValues(csc, {1.0f});
  EXPECT_INVALID(ConvertStatus(csc, Format::kCsr, {}),
                 "tensor.row_idx[0] = 7 is outside [0, rows = 3) (column 0)");
}

// ---------------------------------------------------------------------------
// Transpose and TransposeView.

using TransposeParam = std::tuple<Format, DType, DType>;
class TransposeAllTest : public ::testing::TestWithParam<TransposeParam> {};

TEST_P(TransposeAllTest, MatchesNaiveEncodingOfTheTranspose) {
  const auto [format, dtype, idx] = GetParam();
  std::mt19937_64 rng(31);
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    Matrix x = test::RandomMatrix(c.rows, c.cols, c.density, dtype, rng);
    FormatParams p = ParamsFor(c, idx);
    if (format == Format::kNm) {
      // The transpose must fit n:m too: square matrices with a scaled
      // permutation pattern fit 1:m both ways.
      if (c.nm_m == 0 || c.cols == 0) continue;
      std::vector<int64_t> perm(c.cols);
      for (int64_t i = 0; i < c.cols; ++i) perm[i] = i;
      std::shuffle(perm.begin(), perm.end(), rng);
      x = Matrix{c.cols, c.cols, dtype, std::vector<uint32_t>(c.cols * c.cols, 0)};
      for (int64_t i = 0; i < c.cols; ++i)
        x.bits[i * c.cols + perm[i]] = test::RandomNonZeroBits(dtype, rng);
      p.nm_n = 1;
    }
    const Tensor in = test::Encode(x, format, p);
    absl::StatusOr<Tensor> t = Transpose(in);
    ASSERT_TRUE(t.ok()) << t.status();
    FormatParams tp = p;
    std::swap(tp.block_rows, tp.block_cols);  // BSR blocks become C x R
    test::ExpectSameTensor(*t, test::Encode(test::Transposed(x), format, tp));
    absl::StatusOr<Tensor> tt = Transpose(*t);
    ASSERT_TRUE(tt.ok()) << tt.status();
    test::ExpectSameTensor(*tt, in);
  }
}

std::string TransposeName(const ::testing::TestParamInfo<TransposeParam>& info) {
  const auto& [f, dtype, idx] = info.param;
  return StrCat(FormatName(f), "_", DTypeName(dtype), "_", DTypeName(idx));
}

INSTANTIATE_TEST_SUITE_P(All, TransposeAllTest,
                         ::testing::Combine(::testing::ValuesIn(kAllFormats),
                                            ::testing::Values(DType::kF32, DType::kF16,
                                                              DType::kBF16),
                                            ::testing::Values(DType::kI32, DType::kI64)),
                         TransposeName);

TEST(TransposeNm, PatternThatDoesNotFitIsRejected) {
  // Column 0 full: the transpose's row 0 has 4 non-zeros in group 0.
  std::vector<float> v(16, 0.0f);
  for (int r = 0; r < 4; ++r) v[r * 4] = 1.0f + r;
  ConvertOptions o;
  o.nm_n = 2;
  o.nm_m = 4;
  absl::StatusOr<Tensor> nm = Convert(test::MakeDense({4, 4}, v), Format::kNm, o);
  ASSERT_TRUE(nm.ok()) << nm.status();
  EXPECT_INVALID(Transpose(*nm).status(),
                 "the transpose does not fit 2:4: tensor row 0, group 0 (columns 0..3) has 4 "
                 "non-zeros");
  absl::StatusOr<Tensor> wide =
      Convert(test::MakeDense({3, 4}, std::vector<float>(12, 0.0f)), Format::kNm, o);
  ASSERT_TRUE(wide.ok()) << wide.status();
  EXPECT_INVALID(Transpose(*wide).status(), "has 3 columns, not a multiple of m = 4");
}

TEST(TransposeView, SharesMemoryAndEqualsTranspose) {
  std::mt19937_64 rng(5);
  for (DType idx : {DType::kI32, DType::kI64}) {
    const Matrix x = test::RandomMatrix(13, 9, 0.3, DType::kF16, rng);
    const Tensor csr = test::Encode(x, Format::kCsr, {idx});
    const Tensor csc = test::Encode(x, Format::kCsc, {idx});
    absl::StatusOr<Tensor> v1 = TransposeView(csr);  // CSC of xᵀ
    absl::StatusOr<Tensor> v2 = TransposeView(csc);  // CSR of xᵀ
    ASSERT_TRUE(v1.ok() && v2.ok());
    EXPECT_TRUE(v1->shares_memory());
    EXPECT_TRUE(csr.shares_memory());
    EXPECT_EQ(v1->component("col_ptr")->data(), csr.component("row_ptr")->data());
    EXPECT_EQ(v1->component("row_idx")->data(), csr.component("col_idx")->data());
    EXPECT_EQ(v1->component("values")->data(), csr.component("values")->data());
    EXPECT_EQ(v2->component("row_ptr")->data(), csc.component("col_ptr")->data());
    absl::StatusOr<Tensor> t1 = Transpose(csc), t2 = Transpose(csr);
    ASSERT_TRUE(t1.ok() && t2.ok());
    test::ExpectSameTensor(*v1, *t1);
    test::ExpectSameTensor(*v2, *t2);
    test::ExpectSameTensor(*v1, test::Encode(test::Transposed(x), Format::kCsc, {idx}));
  }
  // Writes through the view are seen by the source.
  Tensor csr = test::MakeCsr(2, 3, {0, 1, 2}, {2, 0}, {1.0f, 2.0f}, DType::kI32);
  absl::StatusOr<Tensor> v = TransposeView(csr);
  ASSERT_TRUE(v.ok());
  v->data<float>("values")[1] = 9.0f;
  EXPECT_EQ(test::GetValues(csr)[1], 9.0f);
  for (Format f : {Format::kDense, Format::kCoo, Format::kBsr, Format::kNm}) {
    FormatParams p{DType::kI32, 2, 2, 2, 4};
    EXPECT_INVALID(
        TransposeView(test::Encode(test::RandomMatrix(4, 4, 0.5, DType::kF32, rng, 2, 4), f, p))
            .status(),
        StrCat("a transpose view needs CSR or CSC, not ", FormatName(f)));
  }
}

}  // namespace
}  // namespace sparsed
