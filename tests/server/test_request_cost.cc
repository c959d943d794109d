// Request cost estimates against hand-worked counts, and the refusal.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/request_cost.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

Tensor Described(TensorDesc d) {
  // Only descriptions are read: a zero-byte view is not needed, but a real
  // (small) allocation keeps the args valid; shapes here are small.
  auto t = Tensor::Allocate(d);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

TEST(RequestCostTest, SpmmCountsEachStoredEntryTimesTheOtherExtent) {
  // A: CSR 30 x 20 with 50 entries; B dense 20 x 7. 50 * 7 products, the
  // 30 x 7 output written twice (accumulate, epilogue), the pointers, B read.
  Tensor a = Described({Format::kCsr, DType::kF32, DType::kI32, {30, 20}, 50});
  Tensor b = Described({Format::kDense, DType::kF32, DType::kI32, {20, 7}, 0});
  SpmmArgs args;
  args.a = &a;
  args.b = &b;
  EXPECT_DOUBLE_EQ(SpmmWork(args), 50.0 * 7 + 2 * 30 * 7 + 30 + 20 + 20 * 7);
  // D · S: D dense 9 x 30, S = A (30 x 20): each entry meets a column of D (9).
  Tensor d = Described({Format::kDense, DType::kF32, DType::kI32, {9, 30}, 0});
  args.a = &d;
  args.b = &a;
  EXPECT_DOUBLE_EQ(SpmmWork(args), 50.0 * 9 + 2 * 9 * 20 + 30 + 20 + 9 * 30);
}

TEST(RequestCostTest, DenseMatmulAndSddmm) {
  Tensor a = Described({Format::kDense, DType::kF32, DType::kI32, {40, 16}, 0});
  Tensor b = Described({Format::kDense, DType::kF32, DType::kI32, {16, 8}, 0});
  DenseMatmulArgs mm;
  mm.a = &a;
  mm.b = &b;
  mm.row_begin = 10;
  mm.row_end = 30;
  EXPECT_DOUBLE_EQ(DenseMatmulWork(mm), 20.0 * 16 * 8 + 20 * 8);
  Tensor pattern = Described({Format::kCsr, DType::kF32, DType::kI32, {40, 8}, 33});
  SddmmArgs sd;
  sd.a = &a;
  sd.b = &b;
  sd.pattern = &pattern;
  EXPECT_DOUBLE_EQ(SddmmWork(sd), 33.0 * 16 + 40 * 16 + 16 * 8);
}

TEST(RequestCostTest, LayerCreationIsItsWeights) {
  train::LayerConfig dense;
  dense.in_features = 1'000'000;
  dense.out_features = 1'000'000;
  EXPECT_DOUBLE_EQ(CreateLayerWork(dense), 4e12);
  train::LayerConfig random = dense;
  random.init = train::InitKind::kRandomPattern;
  random.sparsity = 0.999999;
  EXPECT_NEAR(CreateLayerWork(random), 4e6 + 1e6, 1e3);
}

TEST(RequestCostTest, RefusalNamesTheEstimateAndTheLimit) {
  EXPECT_TRUE(CheckWork(1e12, 1e12, "Spmm").ok());
  EXPECT_TRUE(CheckWork(1e30, 0, "Spmm").ok());  // 0: no limit
  const absl::Status s = CheckWork(4e12, 1e12, "CreateLayer");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("CreateLayer: estimated cost 4e+12 operations"));
  EXPECT_THAT(s.message(), HasSubstr("max_request_work = 1e+12"));
}

}  // namespace
}  // namespace sparsed::server
