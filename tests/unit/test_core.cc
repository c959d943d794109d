// Core types: descriptions, component layout, memory accounting, devices.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sparsed/buffer.h"
#include "sparsed/device.h"
#include "sparsed/parallel.h"
#include "sparsed/tensor.h"

namespace sparsed {
namespace {

using ::testing::HasSubstr;

TensorDesc Csr(int64_t rows, int64_t cols, int64_t nnz) {
  return {Format::kCsr, DType::kF32, DType::kI32, {rows, cols}, nnz};
}

TEST(ValidateDesc, AcceptsWellFormed) {
  EXPECT_TRUE(ValidateDesc(Csr(3, 4, 12)).ok());
  EXPECT_TRUE(ValidateDesc(Csr(0, 0, 0)).ok());
  EXPECT_TRUE(ValidateDesc({Format::kDense, DType::kF32, DType::kI32, {7}, 0}).ok());
}

TEST(ValidateDesc, RejectsEachRule) {
  auto msg = [](const TensorDesc& d) { return std::string(ValidateDesc(d, "h").message()); };
  EXPECT_THAT(msg(Csr(3, 4, 13)), HasSubstr("h.nnz = 13"));
  EXPECT_THAT(msg(Csr(3, 4, -1)), HasSubstr("h.nnz = -1"));
  EXPECT_THAT(msg(Csr(-3, 4, 0)), HasSubstr("h.shape[0] = -3"));
  EXPECT_THAT(msg({Format::kCsr, DType::kF32, DType::kI32, {3}, 0}), HasSubstr("h.shape"));
  EXPECT_THAT(msg({Format::kDense, DType::kF32, DType::kI32, {1, 2, 3}, 0}), HasSubstr("h.shape"));
  EXPECT_TRUE(ValidateDesc({Format::kCsr, DType::kF16, DType::kI32, {3, 3}, 0}, "h").ok());
  EXPECT_THAT(msg({Format::kCsr, DType::kI32, DType::kI32, {3, 3}, 0}), HasSubstr("h.dtype = i32"));
  EXPECT_THAT(msg({Format::kCsr, DType::kF32, DType::kF32, {3, 3}, 0}), HasSubstr("h.index_dtype"));
  EXPECT_THAT(msg({static_cast<Format>(9), DType::kF32, DType::kI32, {3, 3}, 0}),
              HasSubstr("h.format = 9"));
  EXPECT_THAT(msg(Csr(int64_t{1} << 40, 2, 0)), HasSubstr("i32 cannot index"));
  EXPECT_THAT(
      msg({Format::kDense, DType::kF32, DType::kI32, {int64_t{1} << 40, int64_t{1} << 40}, 0}),
      HasSubstr("too large"));
  TensorDesc wide = Csr(int64_t{1} << 40, 2, 0);
  wide.index_dtype = DType::kI64;
  EXPECT_TRUE(ValidateDesc(wide).ok());
}

TEST(ComponentsOf, CountsPerFormat) {
  auto csr = ComponentsOf(Csr(3, 4, 5));
  ASSERT_TRUE(csr.ok());
  ASSERT_EQ(csr->size(), 3u);
  EXPECT_EQ((*csr)[0].name, "row_ptr");
  EXPECT_EQ((*csr)[0].count, 4);
  EXPECT_EQ((*csr)[1].bytes(), 5 * 4);
  TensorDesc coo{Format::kCoo, DType::kF32, DType::kI64, {3, 4}, 5};
  auto c = ComponentsOf(coo);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0].name, "row_idx");
  EXPECT_EQ((*c)[0].bytes(), 5 * 8);
}

TEST(Buffer, AccountsBytesAndHonoursLimit) {
  MemoryAccount& acct = MemoryAccount::For(Device::Cpu());
  const int64_t before = acct.in_use();
  {
    auto b = Buffer::Allocate(1000);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(acct.in_use(), before + 1000);
    Buffer moved = std::move(*b);
    EXPECT_EQ(moved.size(), 1000);
    EXPECT_EQ(acct.in_use(), before + 1000);
  }
  EXPECT_EQ(acct.in_use(), before);
  acct.set_limit(before + 100);
  auto too_big = Buffer::Allocate(101);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  acct.set_limit(0);
  EXPECT_EQ(acct.in_use(), before);
}

TEST(Device, ParsesAndPrints) {
  EXPECT_EQ(ParseDevice("cpu")->ToString(), "cpu");
  EXPECT_EQ(ParseDevice("cuda:3")->ToString(), "cuda:3");
  EXPECT_FALSE(ParseDevice("cuda:").ok());
  EXPECT_FALSE(ParseDevice("cuda:x").ok());
  EXPECT_FALSE(ParseDevice("gpu").ok());
}

TEST(ParallelFor, CoversRangeExactlyOnce) {
  std::vector<int> hits(10007, 0);
  ParallelFor(hits.size(), 3, 4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) hits[i]++;
  });
  for (int h : hits) ASSERT_EQ(h, 1);
}

}  // namespace
}  // namespace sparsed
