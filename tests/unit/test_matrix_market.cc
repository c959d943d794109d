// Matrix Market reading and writing: every header variant against dense
// matrices written out by hand, every rejection, and write/read round trips.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "sparsed/io/matrix_market.h"
#include "sparsed/tensor.h"

namespace sparsed::io {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

absl::StatusOr<Tensor> Parse(const std::string& text) {
  std::istringstream in(text);
  return ParseMatrixMarket(in, "t.mtx");
}

struct Triplet {
  int64_t row, col;
  float value;
  bool operator==(const Triplet& o) const {
    return row == o.row && col == o.col &&
           std::bit_cast<uint32_t>(value) == std::bit_cast<uint32_t>(o.value);
  }
};
std::ostream& operator<<(std::ostream& os, const Triplet& t) {
  return os << "(" << t.row << ", " << t.col << ", " << t.value << ")";
}

// COO/CSR entries in storage order (CSR rows expanded from row_ptr).
std::vector<Triplet> Triplets(const Tensor& t) {
  std::vector<Triplet> out;
  VisitIndexType(t.desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    auto ci = t.data<I>("col_idx");
    auto v = t.data<float>("values");
    if (t.format() == Format::kCoo) {
      auto ri = t.data<I>("row_idx");
      for (int64_t k = 0; k < t.desc().nnz; ++k) out.push_back({ri[k], ci[k], v[k]});
    } else {
      auto rp = t.data<I>("row_ptr");
      for (int64_t i = 0; i < t.desc().rows(); ++i) {
        for (I k = rp[i]; k < rp[i + 1]; ++k) out.push_back({i, ci[k], v[k]});
      }
    }
  });
  return out;
}

// Row-major dense copy of any tensor (duplicates summed).
std::vector<float> Densify(const Tensor& t) {
  if (t.format() == Format::kDense) {
    auto v = t.data<float>("values");
    return {v.begin(), v.end()};
  }
  std::vector<float> d(static_cast<size_t>(t.desc().rows() * t.desc().cols()), 0.0f);
  for (const Triplet& e : Triplets(t)) d[e.row * t.desc().cols() + e.col] += e.value;
  return d;
}

// ---------------------------------------------------------------------------
// Header variants.

struct Variant {
  std::string name;
  std::string text;
  Format format;
  int64_t rows, cols, nnz;   // nnz: stored entries after expansion (sparse)
  std::vector<float> dense;  // row-major, written by hand
};

std::vector<Variant> Variants() {
  const std::string c = "%%MatrixMarket matrix coordinate ";
  const std::string a = "%%MatrixMarket matrix array ";
  return {
      {"coord real general",
       c + "real general\n% a comment\n3 4 4\n3 1 -2.5\n1 2 1e3\n2 4 .25\n1 1 +7\n",
       Format::kCoo,
       3,
       4,
       4,
       {7, 1000, 0, 0,  //
        0, 0, 0, 0.25,  //
        -2.5, 0, 0, 0}},
      {"coord real symmetric",
       c + "real symmetric\n3 3 4\n1 1 1.5\n2 1 -2\n3 2 0.5\n3 3 4\n",
       Format::kCoo,
       3,
       3,
       6,
       {1.5, -2, 0,  //
        -2, 0, 0.5,  //
        0, 0.5, 4}},
      {"coord real skew-symmetric",
       c + "real skew-symmetric\n3 3 3\n2 1 3\n3 1 -1.5\n3 2 2\n",
       Format::kCoo,
       3,
       3,
       6,
       {0, -3, 1.5,  //
        3, 0, -2,    //
        -1.5, 2, 0}},
      {"coord integer general",
       c + "integer general\n2 3 3\n2 3 -4\n1 1 9\n1 3 12\n",
       Format::kCoo,
       2,
       3,
       3,
       {9, 0, 12,  //
        0, 0, -4}},
      {"coord integer symmetric",
       c + "integer symmetric\n3 3 3\n1 1 4\n2 1 -1\n3 2 5\n",
       Format::kCoo,
       3,
       3,
       5,
       {4, -1, 0,  //
        -1, 0, 5,  //
        0, 5, 0}},
      {"coord integer skew-symmetric",
       c + "integer skew-symmetric\n2 2 2\n1 1 0\n2 1 7\n",
       Format::kCoo,
       2,
       2,
       3,
       {0, -7,  //
        7, 0}},
      {"coord pattern general",
       c + "pattern general\n2 3 3\n2 1\n1 3\n2 2\n",
       Format::kCoo,
       2,
       3,
       3,
       {0, 0, 1,  //
        1, 1, 0}},
      {"coord pattern symmetric",
       c + "pattern symmetric\n3 3 3\n1 1\n3 1\n3 2\n",
       Format::kCoo,
       3,
       3,
       5,
       {1, 0, 1,  //
        0, 0, 1,  //
        1, 1, 0}},
      {"array real general",
       a + "real general\n2 3\n1\n2\n3\n4\n5\n6.5\n",
       Format::kDense,
       2,
       3,
       0,
       {1, 3, 5,  //
        2, 4, 6.5}},
      {"array real symmetric",
       a + "real symmetric\n3 3\n1\n2\n3\n4\n5\n6\n",
       Format::kDense,
       3,
       3,
       0,
       {1, 2, 3,  //
        2, 4, 5,  //
        3, 5, 6}},
      {"array real skew-symmetric",
       a + "real skew-symmetric\n3 3\n1\n2\n3\n",
       Format::kDense,
       3,
       3,
       0,
       {0, -1, -2,  //
        1, 0, -3,   //
        2, 3, 0}},
      {"array integer general",
       a + "integer general\n3 1\n-1\n0\n8\n",
       Format::kDense,
       3,
       1,
       0,
       {-1, 0, 8}},
      {"array integer symmetric",
       a + "integer symmetric\n2 2\n1\n-2\n3\n",
       Format::kDense,
       2,
       2,
       0,
       {1, -2,  //
        -2, 3}},
      {"array integer skew-symmetric",
       a + "integer skew-symmetric\n2 2\n5\n",
       Format::kDense,
       2,
       2,
       0,
       {0, -5,  //
        5, 0}},
  };
}

// Regression (found by fuzz_matrix_market): an empty array matrix with a huge
// other side used to spin through 1.4e13 empty column iterations.
TEST(ParseMatrixMarket, EmptyArrayWithAHugeSideReturnsAtOnce) {
  absl::StatusOr<Tensor> t = Parse("%%MatrixMarket matrix array real general\n0 14666666666666\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->desc().shape, (std::vector<int64_t>{0, 14666666666666}));
  EXPECT_EQ(t->desc().numel(), 0);
  std::ostringstream out;  // and writing it back is as quick
  ASSERT_TRUE(WriteMatrixMarket(*t, out).ok());
  EXPECT_EQ(out.str(), "%%MatrixMarket matrix array real general\n0 14666666666666\n");
}

TEST(ParseMatrixMarket, EveryHeaderVariant) {
  for (const Variant& v : Variants()) {
    SCOPED_TRACE(v.name);
    absl::StatusOr<Tensor> t = Parse(v.text);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->format(), v.format);
    EXPECT_EQ(t->desc().dtype, DType::kF32);
    EXPECT_THAT(t->desc().shape, ElementsAreArray({v.rows, v.cols}));
    if (v.format == Format::kCoo) {
      EXPECT_EQ(t->desc().nnz, v.nnz);
      EXPECT_EQ(t->desc().index_dtype, DType::kI32);
    }
    EXPECT_THAT(Densify(*t), ElementsAreArray(v.dense));
  }
}

TEST(ParseMatrixMarket, EntriesSortedRowMajorWithDuplicatesKeptInFileOrder) {
  absl::StatusOr<Tensor> t = Parse(
      "%%MatrixMarket matrix coordinate real general\n3 3 5\n2 2 1\n1 3 5\n2 2 3\n1 1 -1\n2 1 "
      "4\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Triplets(*t),
              ElementsAreArray<Triplet>({{0, 0, -1}, {0, 2, 5}, {1, 0, 4}, {1, 1, 1}, {1, 1, 3}}));
}

TEST(ParseMatrixMarket, SymmetricMirrorFollowsItsEntryAndSortsIntoPlace) {
  absl::StatusOr<Tensor> t =
      Parse("%%MatrixMarket matrix coordinate real symmetric\n3 3 2\n3 1 2\n2 2 6\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Triplets(*t), ElementsAreArray<Triplet>({{0, 2, 2}, {1, 1, 6}, {2, 0, 2}}));
}

TEST(ParseMatrixMarket, LenientWhitespaceCaseCommentsAndCrlf) {
  absl::StatusOr<Tensor> t = Parse(
      "%%matrixmarket MATRIX Coordinate REAL General\r\n%\r\n\r\n  2\t2   2 \r\n% mid comment\r\n"
      "\t1 2   3.5e-1\r\n\r\n2 1 -0\r\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(Triplets(*t), ElementsAreArray<Triplet>({{0, 1, 0.35f}, {1, 0, -0.0f}}));
}

TEST(ParseMatrixMarket, EmptyMatrices) {
  absl::StatusOr<Tensor> t = Parse("%%MatrixMarket matrix coordinate real general\n0 0 0\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->desc().shape, ElementsAreArray({0, 0}));
  EXPECT_EQ(t->desc().nnz, 0);
  t = Parse("%%MatrixMarket matrix array real general\n0 5\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->desc().shape, ElementsAreArray({0, 5}));
}

TEST(ParseMatrixMarket, WideIndicesOnlyWhenNeeded) {
  const int64_t max32 = std::numeric_limits<int32_t>::max();
  absl::StatusOr<Tensor> t =
      Parse("%%MatrixMarket matrix coordinate real general\n2147483647 3 1\n2147483647 3 1\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->desc().index_dtype, DType::kI32);
  EXPECT_THAT(Triplets(*t), ElementsAreArray<Triplet>({{max32 - 1, 2, 1}}));
  t = Parse("%%MatrixMarket matrix coordinate real general\n5 3000000000 1\n4 3000000000 2\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->desc().index_dtype, DType::kI64);
  EXPECT_THAT(Triplets(*t), ElementsAreArray<Triplet>({{3, 2999999999, 2}}));
}

// ---------------------------------------------------------------------------
// Rejections: INVALID_ARGUMENT naming the source, the line and the text.

struct Bad {
  std::string text;
  std::vector<std::string> message_parts;
};

TEST(ParseMatrixMarket, RejectsBadInputNamingLineAndValue) {
  const std::string cg = "%%MatrixMarket matrix coordinate real general\n";
  const std::vector<Bad> cases = {
      {"", {"t.mtx:1:", "missing '%%MatrixMarket'"}},
      {"3 3 1\n1 1 1\n", {"t.mtx:1:", "missing '%%MatrixMarket'", "3 3 1"}},
      {"%%MatrixMarket matrix coordinate complex general\n", {"t.mtx:1:", "complex"}},
      {"%%MatrixMarket matrix coordinate real hermitian\n", {"t.mtx:1:", "hermitian"}},
      {"%%MatrixMarket matrix sparse real general\n", {"t.mtx:1:", "'sparse'"}},
      {"%%MatrixMarket vector coordinate real general\n", {"t.mtx:1:", "'vector'"}},
      {"%%MatrixMarket matrix coordinate real\n", {"t.mtx:1:", "header must be"}},
      {"%%MatrixMarket matrix coordinate float general\n", {"t.mtx:1:", "'float'"}},
      {"%%MatrixMarket matrix coordinate real diagonal\n", {"t.mtx:1:", "'diagonal'"}},
      {"%%MatrixMarket matrix array pattern general\n2 2\n", {"t.mtx:1:", "pattern"}},
      {"%%MatrixMarket matrix coordinate pattern skew-symmetric\n", {"t.mtx:1:", "skew"}},
      {cg + "% only comments\n", {"t.mtx:2:", "missing size line"}},
      {cg + "3 3\n", {"t.mtx:2:", "size line", "'3 3'"}},
      {cg + "3 3 1 1\n", {"t.mtx:2:", "size line", "'3 3 1 1'"}},
      {cg + "3 x 1\n", {"t.mtx:2:", "'x'"}},
      {cg + "-3 3 1\n", {"t.mtx:2:", "rows -3 is negative"}},
      {cg + "3 -1 0\n", {"t.mtx:2:", "columns -1 is negative"}},
      {cg + "3 3 -1\n", {"t.mtx:2:", "entries -1 is negative"}},
      {cg + "2 2 5\n", {"t.mtx:2:", "entries 5 exceed rows*cols = 4"}},
      {cg + "4294967296 4294967296 1\n", {"t.mtx:2:", "too large"}},
      {"%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n", {"t.mtx:2:", "square"}},
      {"%%MatrixMarket matrix array real skew-symmetric\n3 2\n", {"t.mtx:2:", "square"}},
      {cg + "3 3 2\n1 1 1\n4 1 1\n", {"t.mtx:4:", "row index 4", "[1, 3]", "'4 1 1'"}},
      {cg + "3 3 1\n1 0 1\n", {"t.mtx:3:", "column index 0", "'1 0 1'"}},
      {cg + "3 3 1\n-1 1 1\n", {"t.mtx:3:", "row index -1"}},
      {cg + "3 3 1\n1.5 1 1\n", {"t.mtx:3:", "row index '1.5'"}},
      {cg + "3 3 1\n1 1 abc\n", {"t.mtx:3:", "value 'abc'"}},
      {cg + "3 3 1\n1 1 1.5x\n", {"t.mtx:3:", "value '1.5x'"}},
      {cg + "3 3 1\n1 1 1e999\n", {"t.mtx:3:", "value '1e999'"}},
      {cg + "3 3 1\n1 1\n", {"t.mtx:3:", "expected 3 fields", "'1 1'"}},
      {cg + "3 3 1\n1 1 2 3\n", {"t.mtx:3:", "expected 3 fields", "'1 1 2 3'"}},
      {"%%MatrixMarket matrix coordinate pattern general\n3 3 1\n1 1 1\n",
       {"t.mtx:3:", "expected 2 fields", "'1 1 1'"}},
      {"%%MatrixMarket matrix coordinate integer general\n3 3 1\n1 1 2.5\n",
       {"t.mtx:3:", "value '2.5' is not an integer"}},
      {cg + "3 3 3\n1 1 1\n2 2 2\n", {"t.mtx:4:", "expected 3 entries", "ends after 2"}},
      {cg + "3 3 1\n1 1 1\n\n2 2 2\n", {"t.mtx:5:", "more entries than the 1", "'2 2 2'"}},
      {"%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 2 3\n",
       {"t.mtx:3:", "non-zero diagonal", "'2 2 3'"}},
      {"%%MatrixMarket matrix coordinate real symmetric\n2 2 3\n2 1 1\n2 1 1\n2 1 1\n",
       {"t.mtx:", "6 entries", "rows*cols = 4"}},
      {"%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n",
       {"t.mtx:5:", "expected 4 values", "ends after 3"}},
      {"%%MatrixMarket matrix array real general\n1 2\n1\n2\n3\n",
       {"t.mtx:5:", "more values than the 2", "'3'"}},
      {"%%MatrixMarket matrix array real general\n1 2\n1 2\n", {"t.mtx:3:", "one value per line"}},
      {"%%MatrixMarket matrix array integer symmetric\n2 2\n1\nx\n3\n", {"t.mtx:4:", "'x'"}},
  };
  for (const Bad& b : cases) {
    SCOPED_TRACE(b.text);
    absl::StatusOr<Tensor> t = Parse(b.text);
    ASSERT_FALSE(t.ok());
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& part : b.message_parts) {
      EXPECT_THAT(std::string(t.status().message()), HasSubstr(part));
    }
  }
}

TEST(ParseMatrixMarket, LyingSizeLineFailsWithoutHugeAllocation) {
  // Reserving for the declared sizes would need petabytes; the reader must
  // grow with the entries that are actually there and then report the gap.
  absl::StatusOr<Tensor> t = Parse(
      "%%MatrixMarket matrix coordinate real general\n1000000000 1000000000 "
      "1000000000000000\n1 1 1\n");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()),
              AllOf(HasSubstr("expected 1000000000000000 entries"), HasSubstr("ends after 1")));
  t = Parse("%%MatrixMarket matrix array real general\n1000000000 1000000\n1\n");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("ends after 1"));
}

TEST(ReadMatrixMarket, MissingFileIsNotFound) {
  absl::StatusOr<Tensor> t = ReadMatrixMarket("/nonexistent/dir/x.mtx");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("/nonexistent/dir/x.mtx"));
}

TEST(ReadMatrixMarket, ErrorsNameThePath) {
  absl::StatusOr<Tensor> t = ReadMatrixMarket(SPARSED_TEST_DATA "/README.md");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("README.md:1:"));
}

// ---------------------------------------------------------------------------
// Round trips.

// Finite floats of every magnitude and sign, plus zeros, subnormals and infs.
float RandomFloat(std::mt19937_64& rng) {
  while (true) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (!std::isnan(f)) return f;
  }
}

template <class I>
Tensor RandomCoo(std::mt19937_64& rng, int64_t rows, int64_t cols, int64_t nnz) {
  std::vector<Triplet> e;
  for (int64_t k = 0; k < nnz; ++k) {
    e.push_back(
        {static_cast<int64_t>(rng() % rows), static_cast<int64_t>(rng() % cols), RandomFloat(rng)});
  }
  // Row-major, duplicates allowed (kept in generation order).
  std::stable_sort(e.begin(), e.end(), [](const Triplet& a, const Triplet& b) {
    return std::tie(a.row, a.col) < std::tie(b.row, b.col);
  });
  const DType idx = sizeof(I) == 8 ? DType::kI64 : DType::kI32;
  Tensor t = *Tensor::Allocate({Format::kCoo, DType::kF32, idx, {rows, cols}, nnz});
  for (int64_t k = 0; k < nnz; ++k) {
    t.data<I>("row_idx")[k] = static_cast<I>(e[k].row);
    t.data<I>("col_idx")[k] = static_cast<I>(e[k].col);
    t.data<float>("values")[k] = e[k].value;
  }
  return t;
}

template <class I>
Tensor RandomCsr(std::mt19937_64& rng, int64_t rows, int64_t cols, int64_t nnz) {
  Tensor coo = RandomCoo<I>(rng, rows, cols, nnz);
  const DType idx = sizeof(I) == 8 ? DType::kI64 : DType::kI32;
  Tensor t = *Tensor::Allocate({Format::kCsr, DType::kF32, idx, {rows, cols}, nnz});
  auto rp = t.data<I>("row_ptr");
  std::fill(rp.begin(), rp.end(), 0);
  for (I r : coo.data<I>("row_idx")) ++rp[r + 1];
  for (int64_t i = 0; i < rows; ++i) rp[i + 1] += rp[i];
  std::copy_n(coo.data<I>("col_idx").begin(), nnz, t.data<I>("col_idx").begin());
  std::copy_n(coo.data<float>("values").begin(), nnz, t.data<float>("values").begin());
  return t;
}

absl::StatusOr<Tensor> RoundTrip(const Tensor& t) {
  std::stringstream s;
  if (absl::Status st = WriteMatrixMarket(t, s); !st.ok()) return st;
  return ParseMatrixMarket(s, "roundtrip");
}

TEST(WriteMatrixMarket, SparseRoundTripIsBitExact) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t rows = 1 + rng() % 40, cols = 1 + rng() % 40;
    const int64_t nnz = rng() % (rows * cols / 2 + 1);
    std::vector<Tensor> inputs;
    inputs.push_back(RandomCoo<int32_t>(rng, rows, cols, nnz));
    inputs.push_back(RandomCoo<int64_t>(rng, rows, cols, nnz));
    inputs.push_back(RandomCsr<int32_t>(rng, rows, cols, nnz));
    inputs.push_back(RandomCsr<int64_t>(rng, rows, cols, nnz));
    for (const Tensor& in : inputs) {
      SCOPED_TRACE(testing::Message()
                   << FormatName(in.format()) << " " << DTypeName(in.desc().index_dtype) << " "
                   << rows << "x" << cols << " nnz " << nnz);
      absl::StatusOr<Tensor> out = RoundTrip(in);
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ(out->format(), Format::kCoo);
      EXPECT_EQ(out->desc().index_dtype, DType::kI32);
      EXPECT_EQ(out->desc().shape, in.desc().shape);
      EXPECT_EQ(out->desc().nnz, nnz);
      EXPECT_EQ(Triplets(*out), Triplets(in));
    }
  }
}

TEST(WriteMatrixMarket, DenseRoundTripIsBitExact) {
  std::mt19937_64 rng(7);
  for (std::vector<int64_t> shape : std::vector<std::vector<int64_t>>{{5, 7}, {1, 1}, {9, 2}}) {
    Tensor in = *Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, shape, 0});
    for (float& v : in.data<float>("values")) v = RandomFloat(rng);
    absl::StatusOr<Tensor> out = RoundTrip(in);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->format(), Format::kDense);
    EXPECT_EQ(out->desc().shape, shape);
    auto a = in.data<float>("values"), b = out->data<float>("values");
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      EXPECT_EQ(std::bit_cast<uint32_t>(a[k]), std::bit_cast<uint32_t>(b[k])) << k;
    }
  }
}

TEST(WriteMatrixMarket, DenseVectorIsAColumn) {
  Tensor in = *Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {3}, 0});
  const float vals[] = {0.1f, -2.0f, 1.0f / 3};
  std::copy(std::begin(vals), std::end(vals), in.data<float>("values").begin());
  std::stringstream s;
  ASSERT_TRUE(WriteMatrixMarket(in, s).ok());
  EXPECT_EQ(s.str(),
            "%%MatrixMarket matrix array real general\n3 1\n0.100000001\n-2\n0.333333343\n");
  absl::StatusOr<Tensor> out = ParseMatrixMarket(s);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->desc().shape, ElementsAreArray({3, 1}));
  EXPECT_THAT(Densify(*out), ElementsAreArray(vals));
}

TEST(WriteMatrixMarket, ExactTextForCsr) {
  // [[0, 1.5], [0, 0], [-2, 3]]
  Tensor t = *Tensor::Allocate({Format::kCsr, DType::kF32, DType::kI64, {3, 2}, 3});
  const int64_t rp[] = {0, 1, 1, 3}, ci[] = {1, 0, 1};
  const float v[] = {1.5f, -2, 3};
  std::copy(std::begin(rp), std::end(rp), t.data<int64_t>("row_ptr").begin());
  std::copy(std::begin(ci), std::end(ci), t.data<int64_t>("col_idx").begin());
  std::copy(std::begin(v), std::end(v), t.data<float>("values").begin());
  std::stringstream s;
  ASSERT_TRUE(WriteMatrixMarket(t, s).ok());
  EXPECT_EQ(s.str(),
            "%%MatrixMarket matrix coordinate real general\n3 2 3\n1 2 1.5\n3 1 -2\n3 2 3\n");
}

TEST(WriteMatrixMarket, RejectsInconsistentTensors) {
  Tensor coo = *Tensor::Allocate({Format::kCoo, DType::kF32, DType::kI32, {2, 2}, 1});
  coo.data<int32_t>("row_idx")[0] = 2;
  coo.data<int32_t>("col_idx")[0] = 0;
  coo.data<float>("values")[0] = 1;
  std::stringstream s;
  absl::Status st = WriteMatrixMarket(coo, s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("(2, 0)"));

  Tensor csr = *Tensor::Allocate({Format::kCsr, DType::kF32, DType::kI32, {2, 2}, 1});
  const int32_t rp[] = {0, 2, 1};
  std::copy(std::begin(rp), std::end(rp), csr.data<int32_t>("row_ptr").begin());
  csr.data<int32_t>("col_idx")[0] = 0;
  st = WriteMatrixMarket(csr, s);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(st.message()), HasSubstr("row_ptr"));
}

TEST(WriteMatrixMarket, FileRoundTripOfRealMatrix) {
  // Everything the reader produced must survive being written and re-read.
  absl::StatusOr<Tensor> in = ReadMatrixMarket(SPARSED_TEST_DATA "/bcsstk13.mtx");
  ASSERT_TRUE(in.ok()) << in.status();
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sparsed_mm_roundtrip_" + std::to_string(getpid()) + ".mtx"))
                               .string();
  ASSERT_TRUE(WriteMatrixMarket(*in, path).ok());
  absl::StatusOr<Tensor> out = ReadMatrixMarket(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->desc().shape, in->desc().shape);
  EXPECT_EQ(Triplets(*out), Triplets(*in));
}

}  // namespace
}  // namespace sparsed::io
