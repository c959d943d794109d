// Operand resolution against the backend's device, without a GPU: a held
// tensor on the host is refused for a CUDA backend, inline operands and
// MoveToDevice keep host tensors as they are.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "server/tensor_access.h"
#include "server/tensor_store.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/device_memory.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

Tensor Iota(int64_t n) {
  auto t = Tensor::Allocate(TensorDesc{Format::kDense, DType::kF32, DType::kI32, {n}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  auto x = t->data<float>("values");
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<float>(i) + 0.5f;
  return std::move(t).value();
}

TEST(ResolveOperandTest, HeldTensorOnAnotherDeviceNamesFieldAndBothDevices) {
  TensorStore store;
  auto held = store.Insert("", Iota(8), "w", {});
  ASSERT_TRUE(held.ok()) << held.status();
  v1::Operand op;
  op.mutable_ref()->set_name("w");

  auto same = ResolveOperand(store, Caller{}, op, "b", Device::Cpu());
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->get(), held->get());  // the held tensor itself, not a copy

  auto other = ResolveOperand(store, Caller{}, op, "b", Device::Cuda(1));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument) << other.status();
  const std::string msg(other.status().message());
  EXPECT_THAT(msg, HasSubstr("b.ref"));
  EXPECT_THAT(msg, HasSubstr((*held)->id));
  EXPECT_THAT(msg, HasSubstr("cpu"));
  EXPECT_THAT(msg, HasSubstr("cuda:1"));
}

TEST(ResolveOperandTest, InlineOperandIsValidatedAndLandsOnTheDevice) {
  TensorStore store;
  const Tensor src = Iota(5);
  v1::Operand op;
  auto msg = api::ToInline(src);
  ASSERT_TRUE(msg.ok()) << msg.status();
  *op.mutable_inline_() = *msg;
  auto got = ResolveOperand(store, Caller{}, op, "a", Device::Cpu());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->tensor.device(), Device::Cpu());
  auto x = (*got)->tensor.data<float>("values");
  ASSERT_EQ(x.size(), 5u);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], static_cast<float>(i) + 0.5f);
  EXPECT_EQ(store.size(), 0);  // inline operands are not held

  // A malformed inline operand is refused under its field name.
  op.mutable_inline_()->mutable_components(0)->mutable_data()->resize(3);
  auto bad = ResolveOperand(store, Caller{}, op, "a", Device::Cpu());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("a.inline"));
}

// Issue 17: a BSR block of three sides was silently cut to two.
TEST(ResolveOperandTest, BlockWithThreeSidesIsRefusedNotTruncated) {
  TensorStore store;
  TensorDesc d{Format::kBsr, DType::kF32, DType::kI32, {4, 4}, 1};
  d.block_rows = d.block_cols = 2;
  absl::StatusOr<Tensor> t = Tensor::Allocate(d);
  ASSERT_TRUE(t.ok()) << t.status();
  const int32_t ptr[] = {0, 1, 1};
  std::copy(std::begin(ptr), std::end(ptr), t->data<int32_t>("block_row_ptr").begin());
  t->data<int32_t>("block_col_idx")[0] = 1;
  for (float& v : t->data<float>("values")) v = 1.5f;
  auto msg = api::ToInline(*t);
  ASSERT_TRUE(msg.ok()) << msg.status();
  v1::Operand op;
  *op.mutable_inline_() = *msg;
  ASSERT_TRUE(ResolveOperand(store, Caller{}, op, "a", Device::Cpu()).ok());
  op.mutable_inline_()->mutable_desc()->add_block(7);
  auto bad = ResolveOperand(store, Caller{}, op, "a", Device::Cpu());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("a.inline.desc.block = [2, 2, 7]"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("3 entries"));
}

TEST(MoveToDeviceTest, SameDeviceKeepsTheBuffers) {
  Tensor t = Iota(4);
  const void* before = t.component("values")->data();
  auto moved = MoveToDevice(std::move(t), Device::Cpu());
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->component("values")->data(), before);
}

TEST(CopyBytesTest, HostToHostCopies) {
  const char src[] = "sparsed";
  char dst[sizeof(src)] = {};
  ASSERT_TRUE(CopyBytes(dst, Device::Cpu(), src, Device::Cpu(), sizeof(src)).ok());
  EXPECT_STREQ(dst, "sparsed");
  EXPECT_TRUE(CopyBytes(nullptr, Device::Cpu(), nullptr, Device::Cpu(), 0).ok());
}

TEST(CheckNameAndLabelsTest, LayerEntryNamesAndLabelsAreReserved) {
  google::protobuf::Map<std::string, std::string> labels;
  labels["team"] = "a";
  EXPECT_TRUE(CheckNameAndLabels("weights/layer/1", labels, "header").ok());
  absl::Status s = CheckNameAndLabels("layer/fc1/weight", labels, "header");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("header.name = 'layer/fc1/weight'"), std::string::npos) << s;
  labels["sparsed.layer.role"] = "weight";
  s = CheckNameAndLabels("w", labels, "output");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("output.labels['sparsed.layer.role']"), std::string::npos) << s;
}

// Another tenant's tensor is NOT_FOUND, by id and by name, with the message a
// tensor that does not exist gets (existence is not leaked).
TEST(ResolveOperandTest, AnotherTenantsTensorIsNotFound) {
  TensorStore store;
  auto held = store.Insert("alice", Iota(8), "w", {});
  ASSERT_TRUE(held.ok());
  const Caller alice{"alice", Role::kUser}, bob{"bob", Role::kAdmin};
  v1::Operand by_id, by_name;
  by_id.mutable_ref()->set_id((*held)->id);
  by_name.mutable_ref()->set_name("w");
  EXPECT_TRUE(ResolveOperand(store, alice, by_id, "a", Device::Cpu()).ok());
  EXPECT_TRUE(ResolveOperand(store, alice, by_name, "a", Device::Cpu()).ok());
  auto other = ResolveOperand(store, bob, by_id, "a", Device::Cpu());
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.status().message(), StrCat("no tensor with id '", (*held)->id, "'"));
  auto other_name = ResolveOperand(store, bob, by_name, "a", Device::Cpu());
  EXPECT_EQ(other_name.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other_name.status().message(), "no tensor named 'w'");
  auto nobody = ResolveOperand(store, Caller{}, by_name, "a", Device::Cpu());
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sparsed::server
