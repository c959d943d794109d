// SpmmOutDType: the API default and the checks of SpmmRequest.out_dtype.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/op_requests.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

v1::SpmmRequest WithOutDType(int value) {
  v1::SpmmRequest req;
  req.set_out_dtype(static_cast<v1::DType>(value));
  return req;
}

TEST(SpmmOutDTypeTest, UnspecifiedFollowsMatchingSixteenBitInputsElseF32) {
  const v1::SpmmRequest req;  // DTYPE_UNSPECIFIED
  EXPECT_EQ(*SpmmOutDType(req, DType::kF16, DType::kF16), DType::kF16);
  EXPECT_EQ(*SpmmOutDType(req, DType::kBF16, DType::kBF16), DType::kBF16);
  EXPECT_EQ(*SpmmOutDType(req, DType::kF32, DType::kF32), DType::kF32);
  EXPECT_EQ(*SpmmOutDType(req, DType::kF16, DType::kBF16), DType::kF32);
  EXPECT_EQ(*SpmmOutDType(req, DType::kF16, DType::kF32), DType::kF32);
  EXPECT_EQ(*SpmmOutDType(req, DType::kF32, DType::kBF16), DType::kF32);
}

TEST(SpmmOutDTypeTest, ExplicitValueTypesAreHonoured) {
  for (DType in : {DType::kF32, DType::kF16, DType::kBF16}) {
    EXPECT_EQ(*SpmmOutDType(WithOutDType(v1::F32), in, in), DType::kF32);
    EXPECT_EQ(*SpmmOutDType(WithOutDType(v1::F16), in, in), DType::kF16);
    EXPECT_EQ(*SpmmOutDType(WithOutDType(v1::BF16), in, in), DType::kBF16);
  }
}

TEST(SpmmOutDTypeTest, OtherValuesAreInvalidAndNamed) {
  for (const auto& [value, text] :
       std::vector<std::pair<int, std::string>>{{v1::I32, "out_dtype = I32"},
                                                {v1::I64, "out_dtype = I64"},
                                                {9, "out_dtype = 9"},
                                                {-1, "out_dtype = -1"}}) {
    absl::StatusOr<DType> d = SpmmOutDType(WithOutDType(value), DType::kF16, DType::kF16);
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << value;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr(text));
    EXPECT_THAT(std::string(d.status().message()), HasSubstr("F32, F16 or BF16"));
  }
}

}  // namespace
}  // namespace sparsed::server
