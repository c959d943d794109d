// Op graphs (Graphs.Run) without a daemon: every validation rule refused
// with its message (op index, field, value), the plan validation makes
// (repeats expanded, last uses, memory peak), the description-level cost
// formulas against request_cost.h, and the run of a plan on the CPU backend
// (results equal to the same backend calls made one by one, a failure or a
// deadline naming the step).
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "server/graph_op_checks.h"
#include "server/graph_run.h"
#include "server/graph_validate.h"
#include "server/request_cost.h"
#include "server/tensor_store.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/backend.h"
#include "sparsed/buffer.h"
#include "sparsed/cancel.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/str_cat.h"
#include "sparsed/training.h"

namespace sparsed::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

v1::RunRequest Parse(const std::string& json) {
  v1::RunRequest req;
  const auto s = google::protobuf::util::JsonStringToMessage(json, &req);
  EXPECT_TRUE(s.ok()) << s.ToString() << "\n" << json;
  return req;
}

// Dense f32 rows x cols with small distinct values; every third one 0.
Tensor Dense(int64_t rows, int64_t cols, float scale = 1.0f) {
  auto t = Tensor::Allocate(TensorDesc{Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  auto v = t->data<float>("values");
  for (int64_t i = 0; i < rows * cols; ++i) {
    v[i] = i % 3 == 0 ? 0.0f : scale * static_cast<float>((i * 7) % 11 - 5) / 8.0f;
  }
  return std::move(t).value();
}

Tensor Csr(int64_t rows, int64_t cols) {
  auto t = Convert(Dense(rows, cols, 0.5f), Format::kCsr);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

Tensor Vector(int64_t n, float value) {
  auto t = Tensor::Allocate(TensorDesc{Format::kDense, DType::kF32, DType::kI32, {n}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  for (float& v : t->data<float>("values")) v = value;
  return std::move(t).value();
}

class GraphValidateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Hold("x", Dense(6, 16));  // activations
    Hold("w", Csr(16, 16));   // square layer
    Hold("w2", Csr(16, 8));   // narrowing layer
    Hold("w3", Csr(12, 16));  // wrong inner dimension for x
    Hold("b", Vector(16, -0.25f));
    auto h = CastValues(Dense(6, 16), DType::kF16);
    ASSERT_TRUE(h.ok());
    Hold("x16", std::move(h).value());
  }
  void Hold(const std::string& name, Tensor t) {
    auto held = store_.Insert(caller_.tenant, std::move(t), name, {});
    ASSERT_TRUE(held.ok()) << held.status();
  }
  absl::StatusOr<GraphPlan> Validate(const std::string& json) {
    request_ = Parse(json);
    return ValidateGraph(request_, store_, &layers_, caller_, Device::Cpu(), limits_);
  }
  // Expects `code` and every piece in the message.
  void ExpectError(const std::string& json, absl::StatusCode code,
                   std::vector<std::string> pieces) {
    auto plan = Validate(json);
    ASSERT_FALSE(plan.ok()) << json;
    EXPECT_EQ(plan.status().code(), code) << plan.status();
    for (const std::string& p : pieces) {
      EXPECT_THAT(std::string(plan.status().message()), HasSubstr(p)) << json;
    }
  }

  TensorStore store_;
  LayerStore layers_;
  Caller caller_;
  GraphLimits limits_;
  v1::RunRequest request_;
};

// One layer h = relu(x · w + b), kept inline.
const char* kOneLayer = R"({
  "ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}}, "b": {"ref": {"name": "w"}},
                                 "bias": {"ref": {"name": "b"}}, "relu": true}}],
  "outputs": [{"output": "h", "inline": true}]})";

TEST_F(GraphValidateTest, AValidGraphBecomesAPlan) {
  auto plan = Validate(kOneLayer);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->steps.size(), 1u);
  const PlanStep& s = plan->steps[0];
  EXPECT_EQ(s.kind, GraphOpKind::kSpmm);
  EXPECT_EQ(s.label, "h");
  EXPECT_EQ(s.field, "ops[0]");
  EXPECT_EQ(s.out.shape, (std::vector<int64_t>{6, 16}));
  EXPECT_EQ(s.out_bytes, 6 * 16 * 4);
  EXPECT_TRUE(s.kept);
  EXPECT_EQ(plan->outputs, std::vector<int>{0});
  EXPECT_GT(plan->work, 0);
}

TEST_F(GraphValidateTest, EmptyGraphAndEmptyOutputs) {
  ExpectError(R"({"outputs": [{"output": "h"}]})", absl::StatusCode::kInvalidArgument,
              {"ops is empty"});
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}}]})",
              absl::StatusCode::kInvalidArgument, {"outputs is empty"});
}

TEST_F(GraphValidateTest, UnknownOutputIsNamed) {
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"output": "h9"}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].relu.x: no op is named 'h9'"});
}

TEST_F(GraphValidateTest, ForwardReferenceAndSelfReferenceAreRefused) {
  ExpectError(R"({"ops": [{"name": "h1", "relu": {"x": {"output": "h2"}}},
                          {"name": "h2", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h1"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].relu.x: output 'h2' is defined by ops[1], after this op"});
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"output": "h"}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].relu.x: output 'h' is this op's own"});
}

TEST_F(GraphValidateTest, DuplicateNamesAreRefused) {
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}},
                          {"name": "h", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].name = 'h' is already the name of ops[0]"});
  ExpectError(R"({"ops": [{"relu": {"x": {"ref": {"name": "x"}}}}], "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].name is empty"});
}

TEST_F(GraphValidateTest, ShapeMismatchNamesTheOperandAndBothShapes) {
  // h1 = x · w2 is 6x8; h1 · w needs 16 rows of w... w is 16x16: op(a) has 8 columns.
  ExpectError(R"({"ops": [
      {"name": "h1", "spmm": {"a": {"ref": {"name": "x"}}, "b": {"ref": {"name": "w2"}}}},
      {"name": "h2", "spmm": {"a": {"output": "h1"}, "b": {"ref": {"name": "w"}}}}],
      "outputs": [{"output": "h2"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].spmm.b: tensor 'w' is 16x16 but a (output 'h1') is 6x8",
               "op(a) has 8 columns and op(b) has 16 rows"});
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}},
                                                  "b": {"ref": {"name": "w3"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].spmm.b: tensor 'w3' is 12x16 but a (tensor 'x') is 6x16"});
  // Both dense, and a bias of the wrong length.
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}},
                                                  "b": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].spmm: a is tensor 'x'", "exactly one of a, b must be sparse"});
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}},
                                                  "b": {"ref": {"name": "w2"}},
                                                  "bias": {"ref": {"name": "b"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].spmm.bias: tensor 'b' (dense f32 [16]) must be dense f32 [8] or [1, 8]"});
  ExpectError(R"({"ops": [{"name": "h", "add": {"x": {"ref": {"name": "x"}},
                                                 "y": {"ref": {"name": "b"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].add.y: tensor 'b'", "x's shape 6x16"});
}

TEST_F(GraphValidateTest, DtypeMismatchIsRefused) {
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x16"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].relu.x: tensor 'x16' (dense f16 6x16) must be dense f32"});
  // A 16-bit result fed to an op that takes f32 only is caught through the propagated dtype.
  ExpectError(R"({"ops": [
      {"name": "h", "spmm": {"a": {"ref": {"name": "x"}}, "b": {"ref": {"name": "w"}},
                             "outDtype": "BF16"}},
      {"name": "g", "scale": {"x": {"output": "h"}, "factor": 2}}],
      "outputs": [{"output": "g"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].scale.x: output 'h' (dense bf16 6x16) must be dense f32"});
  ExpectError(R"({"ops": [{"name": "h", "cast": {"x": {"ref": {"name": "x"}}, "dtype": "I32"}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].cast.dtype = I32 is not a value type"});
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}},
                                                  "b": {"ref": {"name": "w"}},
                                                  "outDtype": "I64"}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].spmm: out_dtype = I64"});
}

TEST_F(GraphValidateTest, OpParametersAreCheckedWithTheirField) {
  ExpectError(R"({"ops": [{"name": "h", "convert": {"source": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].convert.to is missing"});
  ExpectError(R"({"ops": [{"name": "h", "prune": {"source": {"ref": {"name": "x"}},
                                                   "magnitude": {"sparsity": 1.5}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].prune.magnitude.sparsity = 1.5 is outside [0, 1]"});
  ExpectError(R"({"ops": [{"name": "h", "clamp": {"x": {"ref": {"name": "x"}}, "min": -1,
                                                   "max": 2}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].clamp.min = -1 is not supported"});
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].spmm.b is missing (set ref, inline or output)"});
  ExpectError(R"({"ops": [{"name": "h"}], "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0] ('h') sets no op"});
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}},
                                                  "b": {"ref": {"name": "w"}}, "beta": 1}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].spmm.c is missing but beta = 1"});
}

TEST_F(GraphValidateTest, UnknownHandleIsNotFoundNamingTheField) {
  ExpectError(R"({"ops": [{"name": "h", "spmm": {"a": {"ref": {"name": "x"}},
                                                  "b": {"ref": {"name": "nope"}}}}],
                  "outputs": [{"output": "h"}]})",
              absl::StatusCode::kNotFound, {"ops[0].spmm.b.ref", "nope"});
  // Another tenant's tensor is as unknown as a missing one.
  caller_.tenant = "other";
  ExpectError(kOneLayer, absl::StatusCode::kNotFound, {"ops[0].spmm.a.ref", "x"});
}

TEST_F(GraphValidateTest, BadInlineOperandIsNamed) {
  v1::InlineTensor bad = *api::ToInline(Vector(4, 1.0f));
  bad.mutable_components(0)->mutable_data()->resize(3);
  std::string text;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(bad, &text).ok());
  ExpectError(StrCat(R"({"ops": [{"name": "h", "relu": {"x": {"inline": )", text,
                     R"(}}}], "outputs": [{"output": "h", "inline": true}]})"),
              absl::StatusCode::kInvalidArgument, {"ops[0].relu.x.inline"});
}

TEST_F(GraphValidateTest, TooManyOpsOnceRepeatsAreExpanded) {
  std::string bindings;
  for (int i = 0; i < 4097; ++i) bindings += StrCat(i ? "," : "", R"({"operands": []})");
  ExpectError(StrCat(R"({"ops": [{"name": "y", "repeat": {"times": 4097,
                       "init": {"ref": {"name": "x"}}, "carry": "h", "bindings": [)",
                     bindings, R"(], "body": [{"name": "o", "relu": {"x": {"output": "h"}}}]}}],
                       "outputs": [{"output": "y"}]})"),
              absl::StatusCode::kInvalidArgument,
              {"the graph has 4097 ops once repeats are expanded",
               "ops[0].repeat: 4097 iterations x 1 ops", "more than the limit of 4096"});
  limits_.max_ops = 2;
  ExpectError(R"({"ops": [{"name": "a", "relu": {"x": {"ref": {"name": "x"}}}},
                          {"name": "b", "relu": {"x": {"output": "a"}}},
                          {"name": "c", "relu": {"x": {"output": "b"}}}],
                  "outputs": [{"output": "c"}]})",
              absl::StatusCode::kInvalidArgument, {"the graph has 3 ops", "limit of 2"});
}

// y = clamp(relu(h · w_i), 0, 32) repeated `times` times from h = x, with
// `bindings` bindings of w (each the held "w").
std::string Chain(int times, int bindings) {
  std::string b;
  for (int i = 0; i < bindings; ++i) {
    b += StrCat(i ? "," : "", R"({"operands": [{"ref": {"name": "w"}}]})");
  }
  return StrCat(R"({"ops": [{"name": "y", "repeat": {"times": )", times,
                R"(, "init": {"ref": {"name": "x"}}, "carry": "h", "params": ["w"],)",
                R"( "bindings": [)", b,
                R"(], "body": [{"name": "o", "spmm": {"a": {"output": "h"},
                   "b": {"output": "w"}, "relu": true, "clampMax": 32}}]}}],
                   "outputs": [{"output": "y", "inline": true}]})");
}

TEST_F(GraphValidateTest, RepeatExpandsIntoOneStepPerIteration) {
  auto plan = Validate(Chain(3, 3));
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(plan->steps[0].label, "y[0].o");
  EXPECT_EQ(plan->steps[2].label, "y[2].o");
  EXPECT_EQ(plan->steps[1].field, "ops[0].repeat.body[0] (iteration 1)");
  // Iteration 0 reads x; each later one the result before it, which is then freed.
  EXPECT_NE(plan->steps[0].in[0].tensor, nullptr);
  EXPECT_EQ(plan->steps[1].in[0].step, 0);
  EXPECT_EQ(plan->steps[2].in[0].step, 1);
  EXPECT_EQ(plan->steps[0].last_use, 1);
  EXPECT_EQ(plan->steps[1].last_use, 2);
  EXPECT_TRUE(plan->steps[2].kept);
  EXPECT_EQ(plan->outputs, std::vector<int>{2});
  // At most two 6x16 f32 results are alive at once.
  EXPECT_EQ(plan->peak_bytes, 2 * 6 * 16 * 4);
}

TEST_F(GraphValidateTest, RepeatWithWrongBindingCountsIsRefused) {
  ExpectError(Chain(3, 2), absl::StatusCode::kInvalidArgument,
              {"ops[0].repeat.bindings has 2 entries but times = 3 (one per iteration)"});
  // Two params, one operand per binding.
  std::string json = Chain(2, 2);
  json.replace(json.find(R"("params": ["w"])"), 15, R"("params": ["w", "v"])");
  ExpectError(json, absl::StatusCode::kInvalidArgument,
              {"ops[0].repeat.bindings[0].operands has 1 entries but params has 2"});
  ExpectError(R"({"ops": [{"name": "y", "repeat": {"times": 0, "body": [
                  {"name": "o", "relu": {"x": {"ref": {"name": "x"}}}}]}}],
                  "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].repeat.times = 0 must be at least 1"});
  ExpectError(R"({"ops": [{"name": "y", "repeat": {"times": 1, "bindings": [{}],
                  "init": {"ref": {"name": "x"}}, "body": [
                  {"name": "o", "relu": {"x": {"ref": {"name": "x"}}}}]}}],
                  "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].repeat.init is set but carry is empty"});
  ExpectError(R"({"ops": [{"name": "y", "repeat": {"times": 1, "bindings": [{}], "body": [
                  {"name": "o", "repeat": {"times": 1}}]}}],
                  "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].repeat.body[0]: repeats do not nest"});
}

TEST_F(GraphValidateTest, ABindingOfTheWrongShapeNamesTheIteration) {
  // A first weight of 12x16 fails at once.
  std::string json = Chain(3, 3);
  const size_t first = json.find(R"({"name": "w"})");
  json.replace(first, 13, R"({"name": "w3"})");
  ExpectError(json, absl::StatusCode::kInvalidArgument,
              {"ops[0].repeat.body[0].spmm.b: tensor 'w3' is 12x16", "(iteration 0)"});
  // A last weight of 16x8 narrows the result to 6x8: valid.
  json = Chain(3, 3);
  json.replace(json.rfind(R"({"name": "w"})"), 13, R"({"name": "w2"})");
  auto plan = Validate(json);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->steps[2].out.shape, (std::vector<int64_t>{6, 8}));
  // A first weight of 16x8 makes a 6x8 carry that the second cannot take.
  json = Chain(3, 3);
  json.replace(json.find(R"({"name": "w"})"), 13, R"({"name": "w2"})");
  ExpectError(
      json, absl::StatusCode::kInvalidArgument,
      {"ops[0].repeat.body[0].spmm.b: tensor 'w' is 16x16 but a (carry 'h'", "(iteration 1)"});
}

TEST_F(GraphValidateTest, RepeatLocalsStayInside) {
  ExpectError(R"({"ops": [{"name": "y", "repeat": {"times": 1, "bindings": [{}],
                  "init": {"ref": {"name": "x"}}, "carry": "h",
                  "body": [{"name": "o", "relu": {"x": {"output": "h"}}}]}},
                  {"name": "z", "relu": {"x": {"output": "o"}}}],
                  "outputs": [{"output": "z"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].relu.x: 'o' is local to the repeat ops[0] ('y')"});
  ExpectError(R"({"ops": [{"name": "y", "repeat": {"times": 1, "bindings": [{}],
                  "init": {"ref": {"name": "x"}}, "carry": "h",
                  "body": [{"name": "o", "relu": {"x": {"output": "h"}}}]}}],
                  "outputs": [{"output": "o"}]})",
              absl::StatusCode::kInvalidArgument,
              {"outputs[0].output = 'o' is local to the repeat ops[0]; its result is 'y'"});
  ExpectError(R"({"ops": [{"name": "y", "repeat": {"times": 1, "bindings": [{}],
                  "init": {"ref": {"name": "x"}}, "carry": "h",
                  "body": [{"name": "o", "relu": {"x": {"output": "p"}}},
                           {"name": "p", "relu": {"x": {"output": "h"}}}]}}],
                  "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].repeat.body[0].relu.x: output 'p' is defined by ops[0].repeat.body[1], "
               "after this op in the body"});
}

TEST_F(GraphValidateTest, TwoRepeatsMayShareLocalNamesButNotTopLevelOnes) {
  const char* kTwo = R"({"ops": [
      {"name": "y", "repeat": {"times": 1, "bindings": [{}], "init": {"ref": {"name": "x"}},
        "carry": "h", "body": [{"name": "o", "relu": {"x": {"output": "h"}}}]}},
      {"name": "z", "repeat": {"times": 2, "bindings": [{}, {}], "init": {"output": "y"},
        "carry": "h", "body": [{"name": "o", "scale": {"x": {"output": "h"}, "factor": 2}}]}}],
      "outputs": [{"output": "z"}]})";
  auto plan = Validate(kTwo);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->steps.size(), 3u);
  EXPECT_EQ(plan->steps[2].label, "z[1].o");
  EXPECT_EQ(plan->steps[1].in[0].step, 0);
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}},
      {"name": "y", "repeat": {"times": 1, "bindings": [{}], "init": {"output": "h"},
        "carry": "h", "body": [{"name": "o", "relu": {"x": {"output": "h"}}}]}}],
      "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].repeat.carry = 'h' is already the name of ops[0]"});
  ExpectError(R"({"ops": [
      {"name": "y", "repeat": {"times": 1, "bindings": [{}], "init": {"ref": {"name": "x"}},
        "carry": "h", "body": [{"name": "o", "relu": {"x": {"output": "h"}}},
                               {"name": "o", "relu": {"x": {"output": "h"}}}]}}],
      "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].repeat.body[1].name = 'o' is already the name of ops[0].repeat.body[0]"});
}

TEST_F(GraphValidateTest, OutputsMustExistOnceAndHaveFreeNames) {
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "nope"}]})",
              absl::StatusCode::kInvalidArgument,
              {"outputs[0].output = 'nope': no op is named so"});
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h"}, {"output": "h", "inline": true}]})",
              absl::StatusCode::kInvalidArgument,
              {"outputs[1].output = 'h' is listed twice (also outputs[0])"});
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h", "name": "w"}]})",
              absl::StatusCode::kAlreadyExists, {"outputs[0].name", "w"});
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}},
                          {"name": "g", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h", "name": "k"}, {"output": "g", "name": "k"}]})",
              absl::StatusCode::kInvalidArgument, {"outputs[1].name = 'k' is given twice"});
  ExpectError(R"({"ops": [{"name": "h", "relu": {"x": {"ref": {"name": "x"}}}}],
                  "outputs": [{"output": "h", "inline": true, "name": "k"}]})",
              absl::StatusCode::kInvalidArgument, {"outputs[0]: name and labels are for held"});
}

TEST_F(GraphValidateTest, MemoryEstimateOverTheLimitIsResourceExhausted) {
  MemoryAccount account;
  limits_.memory = &account;
  account.set_limit(2 * 6 * 16 * 4 - 1);  // one byte short of the chain's peak
  ExpectError(Chain(3, 3), absl::StatusCode::kResourceExhausted,
              {"the graph's results need an estimated 768 bytes at once",
               "ops[0].repeat.body[0] (iteration 1)", "memory_limit_bytes = 767"});
  account.set_limit(2 * 6 * 16 * 4);
  EXPECT_TRUE(Validate(Chain(3, 3)).ok());
  // What is in use already counts.
  ASSERT_TRUE(account.Reserve(1).ok());
  ExpectError(Chain(3, 3), absl::StatusCode::kResourceExhausted, {"767 bytes free"});
  account.Release(1);
}

TEST_F(GraphValidateTest, WorkOverMaxRequestWorkIsResourceExhausted) {
  auto plan = Validate(Chain(3, 3));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const double one = plan->steps[0].work;
  limits_.max_request_work = 2.5 * one;  // each op fits, three do not
  ExpectError(Chain(3, 3), absl::StatusCode::kResourceExhausted,
              {"the graph (3 ops): estimated cost", "max_request_work"});
  limits_.max_request_work = one / 2;
  ExpectError(Chain(3, 3), absl::StatusCode::kResourceExhausted,
              {"ops[0].repeat.body[0] (iteration 0).spmm: estimated cost"});
}

TEST_F(GraphValidateTest, InlineResultsTooLargeForAResponse) {
  limits_.max_inline_bytes = 100;
  ExpectError(kOneLayer, absl::StatusCode::kResourceExhausted,
              {"outputs: the inline results take 384 bytes"});
}

// ---- Running plans on the CPU backend ------------------------------------

class GraphRunTest : public GraphValidateTest {
 protected:
  std::unique_ptr<Backend> backend_ = MakeCpuBackend(2);
};

bool SameBits(const Tensor& a, const Tensor& b) {
  if (a.desc().shape != b.desc().shape || a.desc().dtype != b.desc().dtype ||
      a.bytes() != b.bytes()) {
    return false;
  }
  for (const ComponentSpec& c : a.specs()) {
    const Buffer* x = a.component(c.name);
    const Buffer* y = b.component(c.name);
    if (y == nullptr || x->size() != y->size() ||
        std::memcmp(x->data(), y->data(), x->size()) != 0) {
      return false;
    }
  }
  return true;
}

TEST_F(GraphRunTest, ResultsEqualTheSameBackendCallsOneByOne) {
  auto plan = Validate(Chain(3, 3));
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->outputs.size(), 1u);
  ASSERT_EQ(run->elapsed_ms.size(), 3u);

  const Tensor& x = (*store_.FindByName("", "x"))->tensor;
  const Tensor& w = (*store_.FindByName("", "w"))->tensor;
  Tensor h;
  for (int i = 0; i < 3; ++i) {
    SpmmArgs args;
    args.a = i == 0 ? &x : &h;
    args.b = &w;
    args.epilogue.relu = true;
    args.epilogue.clamp_max = 32.0f;
    auto next = backend_->Spmm(args);
    ASSERT_TRUE(next.ok()) << next.status();
    h = std::move(next).value();
  }
  EXPECT_TRUE(SameBits(run->outputs[0], h));
}

TEST_F(GraphRunTest, ElementwiseOpsAreExact) {
  auto plan = Validate(R"({"ops": [
      {"name": "s", "scale": {"x": {"ref": {"name": "x"}}, "factor": -3}},
      {"name": "r", "relu": {"x": {"output": "s"}}},
      {"name": "c", "clamp": {"x": {"output": "s"}, "min": 0, "max": 1}},
      {"name": "a", "add": {"x": {"output": "r"}, "y": {"ref": {"name": "x"}}, "beta": 2}},
      {"name": "h", "cast": {"x": {"output": "a"}, "dtype": "BF16"}},
      {"name": "v", "clamp": {"x": {"ref": {"name": "b"}}, "max": -0.5}}],
      "outputs": [{"output": "r"}, {"output": "c"}, {"output": "a"}, {"output": "h"},
                  {"output": "v"}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  const auto x = (*store_.FindByName("", "x"))->tensor.data<float>("values");
  const auto r = run->outputs[0].data<float>("values");
  const auto c = run->outputs[1].data<float>("values");
  const auto a = run->outputs[2].data<float>("values");
  for (size_t i = 0; i < x.size(); ++i) {
    const float s = -3.0f * x[i];
    EXPECT_EQ(r[i], s > 0 ? s : 0.0f) << i;
    EXPECT_EQ(c[i], std::min(std::max(s, 0.0f), 1.0f)) << i;
    EXPECT_EQ(a[i], r[i] + 2.0f * x[i]) << i;
  }
  auto bf16 = CastValues(run->outputs[2], DType::kBF16);
  ASSERT_TRUE(bf16.ok());
  EXPECT_TRUE(SameBits(run->outputs[3], *bf16));
  EXPECT_EQ(run->outputs[4].desc().shape, (std::vector<int64_t>{16}));
  for (float v : run->outputs[4].data<float>("values")) EXPECT_EQ(v, -0.5f);
}

TEST_F(GraphRunTest, AFailureNamesTheStepAndKeepsTheCode) {
  // Converting to 1:2 needs at most one non-zero per pair: only the data tells.
  auto plan = Validate(R"({"ops": [
      {"name": "h", "relu": {"x": {"ref": {"name": "x"}}}},
      {"name": "n", "convert": {"source": {"output": "h"}, "to": "NM", "n": 1, "m": 2}}],
      "outputs": [{"output": "n"}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(run.status().message()), HasSubstr("ops[1].convert ('n'): "));
}

TEST_F(GraphRunTest, APassedDeadlineStopsBeforeTheNextStep) {
  auto plan = Validate(Chain(3, 3));
  ASSERT_TRUE(plan.ok()) << plan.status();
  const CancelToken token(CancelToken::Clock::now() - std::chrono::seconds(1));
  ScopedCancelToken current(&token);
  auto run = ExecuteGraphPlan(*plan, *backend_);
  EXPECT_EQ(run.status().code(), absl::StatusCode::kDeadlineExceeded) << run.status();
  EXPECT_THAT(std::string(run.status().message()),
              AllOf(HasSubstr("stopped before ops[0].repeat.body[0] (iteration 0).spmm"),
                    HasSubstr("0 of 3 ops done")));
}

// layer_forward: the caller's layer by name or id, x checked against its
// in_features before anything runs, the result described as the layer's
// output; a run equals Training's own Forward, and a naive product of the
// layer's weights checks both.
class GraphLayerTest : public GraphRunTest {
 protected:
  void SetUp() override {
    GraphRunTest::SetUp();
    train::LayerConfig c;
    c.in_features = 16;
    c.out_features = 5;
    c.sparsity = 0.5;
    c.bias = true;
    c.relu = true;
    c.seed = 7;
    auto layer = train::SparseLinear::Create(*backend_, c);
    ASSERT_TRUE(layer.ok()) << layer.status();
    auto stored = layers_.Insert(caller_.tenant, std::move(layer).value(), "fc");
    ASSERT_TRUE(stored.ok()) << stored.status();
    layer_ = *stored;
  }
  LayerPtr layer_;
};

TEST_F(GraphLayerTest, UnknownLayerIsNotFoundNamingTheField) {
  ExpectError(R"({"ops": [{"name": "y", "layer_forward": {"layer": {"name": "nope"},
                  "x": {"ref": {"name": "x"}}}}], "outputs": [{"output": "y"}]})",
              absl::StatusCode::kNotFound, {"ops[0].layer_forward.layer", "nope"});
}

TEST_F(GraphLayerTest, WrongInputWidthIsRefusedBeforeRunning) {
  // w2 is 16x8: its product with x is 6x8, but the layer takes 16 features.
  ExpectError(R"({"ops": [
      {"name": "h", "spmm": {"a": {"ref": {"name": "x"}}, "b": {"ref": {"name": "w2"}}}},
      {"name": "y", "layer_forward": {"layer": {"name": "fc"}, "x": {"output": "h"}}}],
      "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].layer_forward.x", "in_features", "16 -> 5"});
}

TEST_F(GraphLayerTest, DescribesTheOutputAndRunsAsTrainingForward) {
  auto plan = Validate(StrCat(R"({"ops": [
      {"name": "h", "relu": {"x": {"ref": {"name": "x"}}}},
      {"name": "y", "layer_forward": {"layer": {"id": ")",
                              layer_->id, R"("},
                                      "x": {"output": "h"}}}],
      "outputs": [{"output": "y"}]})"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->steps[1].out.shape, (std::vector<int64_t>{6, 5}));
  EXPECT_GT(plan->steps[1].work, 0);
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  const Tensor& y = run->outputs[0];

  // The same through the layer directly.
  auto x = store_.FindByName(caller_.tenant, "x");
  ASSERT_TRUE(x.ok());
  auto h = backend_->ReluBackward((*x)->tensor, (*x)->tensor);
  ASSERT_TRUE(h.ok());
  absl::StatusOr<Tensor> direct;
  {
    std::lock_guard lock(layer_->mu);
    direct = layer_->layer.Forward(*backend_, *h, "");
  }
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_TRUE(SameBits(y, *direct));

  // And a naive float64 product of the layer's weights: relu(h · Wᵀ + b).
  auto w = Convert(layer_->layer.weight(), Format::kDense);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::vector<float> wv(w->data<float>("values").begin(), w->data<float>("values").end());
  const std::span<const float> bv = layer_->layer.bias()->data<float>("values");
  const std::span<const float> hv = h->data<float>("values");
  const std::span<const float> yv = y.data<float>("values");
  for (int i = 0; i < 6; ++i) {
    for (int o = 0; o < 5; ++o) {
      double acc = bv[o];
      for (int k = 0; k < 16; ++k) acc += double(hv[i * 16 + k]) * wv[o * 16 + k];
      EXPECT_NEAR(yv[i * 5 + o], std::max(acc, 0.0), 1e-5) << i << "," << o;
    }
  }
}

TEST_F(GraphLayerTest, ACallIdKeepsTheForwardCallForBackward) {
  auto plan = Validate(R"({"ops": [{"name": "y", "layer_forward": {"layer": {"name": "fc"},
                        "x": {"ref": {"name": "x"}}, "callId": "c1"}}],
                        "outputs": [{"output": "y"}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->kept_calls.size(), 1u);
  std::lock_guard lock(layer_->mu);
  EXPECT_EQ(layer_->layer.pending(), 1);
  auto dy = Tensor::Allocate(TensorDesc{Format::kDense, DType::kF32, DType::kI32, {6, 5}, 0});
  ASSERT_TRUE(dy.ok());
  for (float& v : dy->data<float>("values")) v = 0.5f;
  auto dx = layer_->layer.Backward(*backend_, *dy, "c1", true);
  ASSERT_TRUE(dx.ok()) << dx.status();
  EXPECT_EQ(layer_->layer.pending(), 0);
}

TEST_F(GraphLayerTest, AFailedGraphForgetsItsForwardCalls) {
  // Converting to 1:2 needs at most one non-zero per pair: only the data tells.
  auto plan = Validate(R"({"ops": [
      {"name": "y", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
                                      "callId": "c2"}},
      {"name": "h", "relu": {"x": {"ref": {"name": "x"}}}},
      {"name": "n", "convert": {"source": {"output": "h"}, "to": "NM", "n": 1, "m": 2}}],
      "outputs": [{"output": "y"}, {"output": "n"}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_FALSE(run.ok());
  std::lock_guard lock(layer_->mu);
  EXPECT_EQ(layer_->layer.pending(), 0);
  EXPECT_EQ(layer_->layer.Forget("c2").code(), absl::StatusCode::kNotFound);
}

TEST_F(GraphLayerTest, CallIdsAreCheckedBeforeRunning) {
  ExpectError(R"({"ops": [
      {"name": "a", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
                                      "callId": "same"}},
      {"name": "b", "layer_forward": {"layer": {"id": ")" +
                  layer_->id + R"("},
                                      "x": {"ref": {"name": "x"}}, "callId": "same"}}],
      "outputs": [{"output": "b"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].layer_forward.call_id = 'same' is used twice"});
  ExpectError(R"({"ops": [{"name": "r", "repeat": {"times": 2, "init": {"ref": {"name": "x"}},
      "carry": "c", "bindings": [{}, {}], "body": [{"name": "f", "layer_forward": {
      "layer": {"name": "fc"}, "x": {"output": "c"}, "callId": "k"}}]}}],
      "outputs": [{"output": "r"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].repeat.body[0].layer_forward.call_id = 'k'", "top-level"});
  ExpectError(R"({"ops": [{"name": "y", "layer_forward": {"layer": {"name": "fc"},
                  "x": {"ref": {"name": "x"}}, "callId": "bad\u0001id"}}],
                  "outputs": [{"output": "y"}]})",
              absl::StatusCode::kInvalidArgument, {"ops[0].layer_forward.call_id"});
  std::lock_guard lock(layer_->mu);
  EXPECT_EQ(layer_->layer.pending(), 0);
}

// ---- layer_backward and layer_step -----------------------------------------

// What a graph may change in a layer, copied out for comparison.
struct LayerSnapshot {
  Tensor weight, bias, weight_grad, bias_grad;
  int64_t step = 0, pending = 0;
};

LayerSnapshot Snap(StoredLayer& stored) {
  std::lock_guard lock(stored.mu);
  const train::SparseLinear& l = stored.layer;
  LayerSnapshot s;
  s.weight = l.weight().Clone().value();
  s.bias = l.bias()->Clone().value();
  s.weight_grad = l.weight_grad().Clone().value();
  s.bias_grad = l.bias_grad()->Clone().value();
  s.step = l.step();
  s.pending = l.pending();
  return s;
}

void ExpectSameLayer(const LayerSnapshot& a, const LayerSnapshot& b, const std::string& what) {
  EXPECT_TRUE(SameBits(a.weight, b.weight)) << what;
  EXPECT_TRUE(SameBits(a.bias, b.bias)) << what;
  EXPECT_TRUE(SameBits(a.weight_grad, b.weight_grad)) << what;
  EXPECT_TRUE(SameBits(a.bias_grad, b.bias_grad)) << what;
  EXPECT_EQ(a.step, b.step) << what;
  EXPECT_EQ(a.pending, b.pending) << what;
}

// Training layers and their gradients in graphs: "fc" (16 -> 5, bias, ReLU)
// from GraphLayerTest, the target "t" and a gradient "g" of its output shape
// for x's 6 rows, and "g3" for 3 rows.
class GraphTrainingTest : public GraphLayerTest {
 protected:
  void SetUp() override {
    GraphLayerTest::SetUp();
    Hold("t", Dense(6, 5, 0.75f));
    Hold("g", Dense(6, 5, 0.25f));
    Hold("g3", Dense(3, 5, 0.25f));
  }
  LayerPtr MakeLayer(const std::string& name, const std::string& tenant, int64_t max_pending = 64) {
    train::LayerConfig c;
    c.in_features = 16;
    c.out_features = 5;
    c.sparsity = 0.5;
    c.relu = true;
    c.seed = 11;
    c.max_pending = max_pending;
    c.optimizer.kind = OptimizerKind::kSgd;
    c.optimizer.lr = 0.1f;
    c.optimizer.momentum = 0.9f;
    auto layer = train::SparseLinear::Create(*backend_, c);
    EXPECT_TRUE(layer.ok()) << layer.status();
    auto stored = layers_.Insert(tenant, std::move(layer).value(), name);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return *stored;
  }
  const Tensor& Held(const std::string& name) {
    return (*store_.FindByName(caller_.tenant, name))->tensor;
  }
};

// forward(call_id) -> the MSE loss gradient 2/N (y - t) -> backward -> step.
std::string TrainingGraph(const std::string& layer, const std::string& call_id) {
  return StrCat(R"({"ops": [
      {"name": "y", "layer_forward": {"layer": {"name": ")",
                layer, R"("}, "x": {"ref": {"name": "x"}}, "callId": ")", call_id, R"("}},
      {"name": "d", "add": {"x": {"output": "y"}, "y": {"ref": {"name": "t"}}, "beta": -1}},
      {"name": "g", "scale": {"x": {"output": "d"}, "factor": 0.0666666}},
      {"name": "dx", "layer_backward": {"layer": {"name": ")",
                layer, R"("}, "callId": ")", call_id, R"(",
                                        "gradOut": {"output": "g"}}},
      {"name": "s", "layer_step": {"layer": {"name": ")",
                layer, R"("}, "gradScale": 0.5,
                                   "optimizer": {"kind": "ADAM", "lr": 0.05}}}],
      "outputs": [{"output": "y"}, {"output": "g"}, {"output": "dx"}]})");
}

TEST_F(GraphTrainingTest, ATrainingStepEqualsTheLayerCalledDirectly) {
  const LayerPtr graph_layer = MakeLayer("a", caller_.tenant);
  const LayerPtr direct = MakeLayer("b", caller_.tenant);
  OptimizerHyper adam;
  adam.kind = OptimizerKind::kAdam;
  adam.lr = 0.05f;
  for (int it = 0; it < 2; ++it) {
    const std::string call_id = StrCat("c", it);
    auto plan = Validate(TrainingGraph("a", call_id));
    ASSERT_TRUE(plan.ok()) << plan.status();
    ASSERT_EQ(plan->steps.size(), 5u);
    EXPECT_EQ(plan->steps[3].out.shape, (std::vector<int64_t>{6, 16}));  // dX
    EXPECT_EQ(plan->steps[4].out_bytes, 0);                              // the step: no result
    auto run = ExecuteGraphPlan(*plan, *backend_);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_TRUE(run->kept_calls.empty());  // the backward consumed the call
    EXPECT_EQ(run->layer_updates, (std::vector<std::string>{"ops[3].layer_backward ('dx')",
                                                            "ops[4].layer_step ('s')"}));
    ASSERT_EQ(run->layer_steps.size(), 1u);
    EXPECT_EQ(run->layer_steps[0].report.step, it + 1);

    // The same sequence on the twin layer, fed the graph's loss gradient.
    const Tensor& g = run->outputs[1];
    absl::StatusOr<Tensor> y;
    absl::StatusOr<std::optional<Tensor>> dx;
    absl::StatusOr<train::StepReport> report;
    Tensor w_before;
    {
      std::lock_guard lock(direct->mu);
      w_before = Convert(direct->layer.weight(), Format::kDense).value();
      y = direct->layer.Forward(*backend_, Held("x"), call_id);
      ASSERT_TRUE(y.ok()) << y.status();
      dx = direct->layer.Backward(*backend_, g, call_id, true);
      ASSERT_TRUE(dx.ok()) << dx.status();
      ASSERT_TRUE(direct->layer.SetOptimizer(adam).ok());
      report = direct->layer.Step(*backend_, 0.5f);
      ASSERT_TRUE(report.ok()) << report.status();
    }
    EXPECT_TRUE(SameBits(run->outputs[0], *y)) << it;
    EXPECT_TRUE(SameBits(run->outputs[2], **dx)) << it;
    EXPECT_EQ(run->layer_steps[0].report.step, report->step);
    EXPECT_EQ(run->layer_steps[0].report.nnz, report->nnz);
    ExpectSameLayer(Snap(*graph_layer), Snap(*direct), StrCat("iteration ", it));

    // Independently: g = 0.0666666 (y - t) and dX = (g ⊙ [y > 0]) · W in float64.
    const auto yv = run->outputs[0].data<float>("values");
    const auto tv = Held("t").data<float>("values");
    const auto gv = g.data<float>("values");
    const auto wv = w_before.data<float>("values");
    const auto dxv = run->outputs[2].data<float>("values");
    for (int i = 0; i < 6; ++i) {
      for (int o = 0; o < 5; ++o) {
        const double want = 0.0666666 * (double(yv[i * 5 + o]) - tv[i * 5 + o]);
        EXPECT_NEAR(gv[i * 5 + o], want, 1e-6) << i << "," << o;
      }
      for (int k = 0; k < 16; ++k) {
        double acc = 0;
        for (int o = 0; o < 5; ++o) {
          if (yv[i * 5 + o] > 0) acc += double(gv[i * 5 + o]) * wv[o * 16 + k];
        }
        EXPECT_NEAR(dxv[i * 16 + k], acc, 1e-6) << i << "," << k;
      }
    }
  }
  EXPECT_EQ(Snap(*graph_layer).step, 2);
}

TEST_F(GraphTrainingTest, ABackwardOfACallAnEarlierRequestKept) {
  {
    std::lock_guard lock(layer_->mu);
    ASSERT_TRUE(layer_->layer.Forward(*backend_, Held("x"), "early").ok());
  }
  const LayerSnapshot kept = Snap(*layer_);
  // Three rows of gradient for a call of six: held, and as an op's output.
  ExpectError(R"({"ops": [{"name": "dx", "layer_backward": {"layer": {"name": "fc"},
                  "callId": "early", "gradOut": {"ref": {"name": "g3"}}}}],
                  "outputs": [{"output": "dx"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[0].layer_backward.grad_out: tensor 'g3' is [3, 5] but does not fit call "
               "'early' of layer",
               "kept by an earlier request", "[6, 5]"});
  ExpectError(R"({"ops": [{"name": "h", "scale": {"x": {"ref": {"name": "g3"}}, "factor": 2}},
                  {"name": "dx", "layer_backward": {"layer": {"name": "fc"},
                  "callId": "early", "gradOut": {"output": "h"}}}],
                  "outputs": [{"output": "dx"}]})",
              absl::StatusCode::kInvalidArgument,
              {"ops[1].layer_backward.grad_out: output 'h' is [3, 5]", "[6, 5]"});
  // A forward may not keep that id again while it is kept.
  ExpectError(R"({"ops": [{"name": "y", "layer_forward": {"layer": {"name": "fc"},
                  "x": {"ref": {"name": "x"}}, "callId": "early"}}],
                  "outputs": [{"output": "y"}]})",
              absl::StatusCode::kAlreadyExists,
              {"ops[0].layer_forward.call_id = 'early'", "keeps this call already"});
  ExpectSameLayer(Snap(*layer_), kept, "after the refusals");

  // The right shape runs, consumes the call and accumulates the gradients.
  auto plan = Validate(R"({"ops": [{"name": "dx", "layer_backward": {"layer": {"name": "fc"},
                  "callId": "early", "gradOut": {"ref": {"name": "g"}}}}],
                  "outputs": [{"output": "dx", "inline": true}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->outputs[0].desc().shape, (std::vector<int64_t>{6, 16}));
  const LayerSnapshot after = Snap(*layer_);
  EXPECT_EQ(after.pending, 0);
  EXPECT_FALSE(SameBits(after.weight_grad, kept.weight_grad));
  EXPECT_TRUE(SameBits(after.weight, kept.weight));
  // Once consumed, the call is gone.
  ExpectError(R"({"ops": [{"name": "dx", "layer_backward": {"layer": {"name": "fc"},
                  "callId": "early", "gradOut": {"ref": {"name": "g"}}}}],
                  "outputs": [{"output": "dx"}]})",
              absl::StatusCode::kNotFound,
              {"ops[0].layer_backward.call_id = 'early'", "keeps no such forward call"});
}

TEST_F(GraphTrainingTest, EveryRuleIsCheckedBeforeAnythingRuns) {
  const LayerPtr other = MakeLayer("theirs", "other-tenant");
  const LayerSnapshot before = Snap(*layer_);
  const LayerSnapshot other_before = Snap(*other);
  const std::string fwd =
      R"({"name": "y", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
          "callId": "c"}})";
  using C = absl::StatusCode;
  const std::vector<std::tuple<std::string, C, std::vector<std::string>>> cases = {
      {R"([{"name": "dx", "layer_backward": {"layer": {"name": "nope"}, "callId": "c",
           "gradOut": {"ref": {"name": "g"}}}}])",
       C::kNotFound,
       {"ops[0].layer_backward.layer", "nope"}},
      {R"([{"name": "s", "layer_step": {"layer": {"name": "nope"}}}])",
       C::kNotFound,
       {"ops[0].layer_step.layer", "nope"}},
      // Another tenant's layer is as unknown as a missing one.
      {R"([{"name": "dx", "layer_backward": {"layer": {"name": "theirs"}, "callId": "c",
           "gradOut": {"ref": {"name": "g"}}}}])",
       C::kNotFound,
       {"ops[0].layer_backward.layer", "theirs"}},
      {StrCat(R"([{"name": "s", "layer_step": {"layer": {"id": ")", other->id, R"("}}}])"),
       C::kNotFound,
       {"ops[0].layer_step.layer", other->id}},
      {R"([{"name": "s", "layer_step": {}}])",
       C::kInvalidArgument,
       {"ops[0].layer_step.layer names no layer"}},
      {R"([{"name": "dx", "layer_backward": {"layer": {"name": "fc"}, "callId": "c"}}])",
       C::kInvalidArgument,
       {"ops[0].layer_backward.grad_out is missing"}},
      {R"([{"name": "dx", "layer_backward": {"layer": {"name": "fc"},
           "gradOut": {"ref": {"name": "g"}}}}])",
       C::kInvalidArgument,
       {"ops[0].layer_backward.call_id: call_id is missing"}},
      {StrCat("[", fwd, R"(, {"name": "dx", "layer_backward": {"layer": {"name": "fc"},
           "callId": "c", "gradOut": {"ref": {"name": "x"}}}}])"),
       C::kInvalidArgument,
       {"ops[1].layer_backward.grad_out is dense f32 [6, 16]", "out_features = 5",
        "grad_out is tensor 'x'"}},
      {StrCat("[", fwd, R"(, {"name": "dx", "layer_backward": {"layer": {"name": "fc"},
           "callId": "c", "gradOut": {"ref": {"name": "g3"}}}}])"),
       C::kInvalidArgument,
       {"ops[1].layer_backward.grad_out: tensor 'g3' is [3, 5] but call 'c' of layer",
        "(ops[0] 'y') has the output shape [6, 5]"}},
      {R"([{"name": "dx", "layer_backward": {"layer": {"name": "fc"}, "callId": "ghost",
           "gradOut": {"ref": {"name": "g"}}}}])",
       C::kNotFound,
       {"ops[0].layer_backward.call_id = 'ghost'", "keeps no such forward call"}},
      // The forward comes after the backward: not kept yet when it runs.
      {StrCat(R"([{"name": "dx", "layer_backward": {"layer": {"name": "fc"}, "callId": "c",
           "gradOut": {"ref": {"name": "g"}}}}, )",
              fwd, "]"),
       C::kNotFound,
       {"ops[0].layer_backward.call_id = 'c'"}},
      {StrCat("[", fwd, R"(, {"name": "d1", "layer_backward": {"layer": {"name": "fc"},
           "callId": "c", "gradOut": {"ref": {"name": "g"}}}},
           {"name": "d2", "layer_backward": {"layer": {"name": "fc"}, "callId": "c",
           "gradOut": {"ref": {"name": "g"}}}}])"),
       C::kInvalidArgument,
       {"ops[2].layer_backward.call_id = 'c': ops[1] consumes this call", "already"}},
      {R"([{"name": "r", "repeat": {"times": 2, "init": {"ref": {"name": "g"}}, "carry": "c",
           "bindings": [{}, {}], "body": [{"name": "b", "layer_backward": {
           "layer": {"name": "fc"}, "callId": "k", "gradOut": {"output": "c"}}}]}}])",
       C::kInvalidArgument,
       {"ops[0].repeat.body[0].layer_backward", "top-level", "(iteration 0)"}},
      {R"([{"name": "r", "repeat": {"times": 1, "init": {"ref": {"name": "g"}}, "carry": "c",
           "bindings": [{}], "body": [{"name": "z", "relu": {"x": {"output": "c"}}},
           {"name": "s", "layer_step": {"layer": {"name": "fc"}}}]}}])",
       C::kInvalidArgument,
       {"ops[0].repeat.body[1].layer_step", "top-level"}},
      {R"([{"name": "s", "layer_step": {"layer": {"name": "fc"}, "gradScale": "Infinity"}}])",
       C::kInvalidArgument,
       {"ops[0].layer_step.grad_scale = inf is not finite"}},
      {R"([{"name": "s", "layer_step": {"layer": {"name": "fc"},
           "optimizer": {"kind": "ADAM", "beta1": 1.5}}}])",
       C::kInvalidArgument,
       {"ops[0].layer_step.optimizer.beta1"}},
      {R"([{"name": "s", "layer_step": {"layer": {"name": "fc"}}},
           {"name": "z", "relu": {"x": {"output": "s"}}}])",
       C::kInvalidArgument,
       {"ops[1].relu.x: 's' is ops[0], a layer_step, which has no result"}},
  };
  for (const auto& [ops, code, pieces] : cases) {
    ExpectError(StrCat(R"({"ops": )", ops, "}"), code, pieces);
  }
  ExpectError(R"({"ops": [{"name": "s", "layer_step": {"layer": {"name": "fc"}}}],
                  "outputs": [{"output": "s"}]})",
              C::kInvalidArgument,
              {"outputs[0].output = 's' is ops[0], a layer_step, which has no result"});
  // A training step refused by its last op: nothing before it has run.
  ExpectError(R"({"ops": [
      {"name": "y", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
                                      "callId": "c"}},
      {"name": "dx", "layer_backward": {"layer": {"name": "fc"}, "callId": "c",
                                        "gradOut": {"ref": {"name": "g"}}}},
      {"name": "s", "layer_step": {"layer": {"name": "fc"}}},
      {"name": "z", "relu": {"x": {"output": "nothing"}}}], "outputs": [{"output": "dx"}]})",
              C::kInvalidArgument, {"ops[3].relu.x: no op is named 'nothing'"});
  ExpectSameLayer(Snap(*layer_), before, "fc");
  ExpectSameLayer(Snap(*other), other_before, "the other tenant's layer");
}

TEST_F(GraphTrainingTest, ForwardCallsFitUnderMaxPending) {
  const LayerPtr small = MakeLayer("small", caller_.tenant, /*max_pending=*/1);
  const LayerSnapshot before = Snap(*small);
  const std::string two_forwards = R"({"ops": [
      {"name": "y1", "layer_forward": {"layer": {"name": "small"}, "x": {"ref": {"name": "x"}},
                                       "callId": "a"}},
      {"name": "y2", "layer_forward": {"layer": {"name": "small"}, "x": {"ref": {"name": "x"}},
                                       "callId": "b"}}], "outputs": [{"output": "y2"}]})";
  ExpectError(two_forwards, absl::StatusCode::kResourceExhausted,
              {"ops[1].layer_forward.call_id", "would keep 2 forward calls", "max_pending = 1"});
  ExpectSameLayer(Snap(*small), before, "small");
  // A backward between them frees the room.
  auto plan = Validate(R"({"ops": [
      {"name": "y1", "layer_forward": {"layer": {"name": "small"}, "x": {"ref": {"name": "x"}},
                                       "callId": "a"}},
      {"name": "d1", "layer_backward": {"layer": {"name": "small"}, "callId": "a",
                                        "gradOut": {"ref": {"name": "g"}}}},
      {"name": "y2", "layer_forward": {"layer": {"name": "small"}, "x": {"ref": {"name": "x"}},
                                       "callId": "b"}}], "outputs": []})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(Snap(*small).pending, 1);  // "b", kept for a later request
}

TEST_F(GraphTrainingTest, AFailureAfterAStepNamesWhatStaysApplied) {
  const LayerSnapshot before = Snap(*layer_);
  // Converting to 1:2 needs at most one non-zero per pair: only the data tells.
  auto plan = Validate(R"({"ops": [
      {"name": "y", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
                                      "callId": "c"}},
      {"name": "y2", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
                                      "callId": "kept"}},
      {"name": "dx", "layer_backward": {"layer": {"name": "fc"}, "callId": "c",
                                        "gradOut": {"ref": {"name": "g"}}}},
      {"name": "s", "layer_step": {"layer": {"name": "fc"}}},
      {"name": "n", "convert": {"source": {"ref": {"name": "x"}}, "to": "NM", "n": 1, "m": 2}}],
      "outputs": [{"output": "dx"}, {"output": "n"}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_FALSE(run.ok());
  EXPECT_EQ(run.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(run.status().message()),
              AllOf(HasSubstr("ops[4].convert ('n'): "),
                    HasSubstr("[not undone: layer updates already applied by ops[2].layer_backward "
                              "('dx'), ops[3].layer_step ('s')]")));
  // The step stays; the forward call the graph kept and did not consume is forgotten.
  const LayerSnapshot after = Snap(*layer_);
  EXPECT_EQ(after.step, before.step + 1);
  EXPECT_FALSE(SameBits(after.weight, before.weight));
  EXPECT_EQ(after.pending, 0);
}

TEST_F(GraphTrainingTest, ATrainingGraphMayHaveNoOutputs) {
  auto plan = Validate(R"({"ops": [
      {"name": "y", "layer_forward": {"layer": {"name": "fc"}, "x": {"ref": {"name": "x"}},
                                      "callId": "c"}},
      {"name": "dx", "layer_backward": {"layer": {"name": "fc"}, "callId": "c",
                                        "gradOut": {"ref": {"name": "g"}}}},
      {"name": "s", "layer_step": {"layer": {"name": "fc"}}}]})");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->outputs.empty());
  auto run = ExecuteGraphPlan(*plan, *backend_);
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(Snap(*layer_).step, 1);
  ExpectError(R"({"ops": [{"name": "y", "layer_forward": {"layer": {"name": "fc"},
                  "x": {"ref": {"name": "x"}}, "callId": "c"}}]})",
              absl::StatusCode::kInvalidArgument, {"outputs is empty"});
}

TEST_F(GraphLayerTest, WithoutLayersTheOpIsAFailedPrecondition) {
  request_ = Parse(R"({"ops": [{"name": "y", "layer_forward": {"layer": {"name": "fc"},
                       "x": {"ref": {"name": "x"}}}}], "outputs": [{"output": "y"}]})");
  auto plan = ValidateGraph(request_, store_, nullptr, caller_, Device::Cpu(), limits_);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kFailedPrecondition) << plan.status();
}

}  // namespace
}  // namespace sparsed::server
