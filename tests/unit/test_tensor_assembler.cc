// TensorAssembler: chunks of any size, interleaved across components, rebuild
// the tensor byte for byte; every malformed chunk is refused with nothing
// copied.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels_test_util.h"
#include "sparsed/tensor_assembler.h"

namespace sparsed {
namespace {

using ::testing::HasSubstr;
using namespace ::sparsed::test;  // NOLINT(build/namespaces)

std::string Bytes(const Tensor& t, std::string_view name) {
  const Buffer* b = t.component(name);
  return std::string(b->as<char>(), static_cast<size_t>(b->size()));
}

Tensor EmptyLike(const Tensor& t) { return MustAllocate(t.desc()); }

TEST(TensorAssemblerTest, RandomInterleavedChunksRebuildEveryComponent) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int64_t rows = 1 + static_cast<int64_t>(rng() % 40), cols = 1 + rng() % 40;
    const Tensor src = MakeSparse(trial % 2 ? Format::kCsr : Format::kCoo, rows, cols,
                                  RandomTriplets(rows, cols, 0.2, rng), DType::kI32);
    Tensor dst = EmptyLike(src);
    TensorAssembler assembler(dst);
    // Each component cut into random pieces; pieces of different components
    // interleaved in a random order that keeps each component's own order.
    std::vector<std::pair<std::string, std::string>> whole;
    for (const ComponentSpec& s : src.specs()) whole.emplace_back(s.name, Bytes(src, s.name));
    std::vector<size_t> sent(whole.size(), 0);
    size_t remaining = 0;
    for (auto& [name, bytes] : whole) remaining += bytes.size();
    while (remaining > 0) {
      size_t k = rng() % whole.size();
      if (sent[k] == whole[k].second.size()) continue;
      const size_t len = std::min<size_t>(1 + rng() % 37, whole[k].second.size() - sent[k]);
      ASSERT_TRUE(assembler
                      .AddChunk(whole[k].first, static_cast<int64_t>(sent[k]),
                                std::string_view(whole[k].second).substr(sent[k], len))
                      .ok());
      sent[k] += len;
      remaining -= len;
    }
    ASSERT_TRUE(assembler.Finish().ok());
    for (auto& [name, bytes] : whole) EXPECT_EQ(Bytes(dst, name), bytes) << name;
  }
}

TEST(TensorAssemblerTest, MalformedChunksAreRefusedAndCopyNothing) {
  const Tensor src = MakeCsr(2, 3, {0, 1, 2}, {0, 2}, {1.0f, 2.0f}, DType::kI32);
  Tensor dst = EmptyLike(src);
  std::memset(dst.component("values")->data(), 0x5a, dst.component("values")->size());
  TensorAssembler assembler(dst);
  const std::string values = Bytes(src, "values");

  absl::Status s = assembler.AddChunk("row_idx", 0, "abcd");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'row_idx' is not a component of csr"));

  s = assembler.AddChunk("values", 4, values.substr(0, 4));  // a gap at the start
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("chunk.offset = 4"));

  s = assembler.AddChunk("values", 0, values + "x");  // one byte too many
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("overruns component 'values' of 8 bytes"));
  EXPECT_EQ(Bytes(dst, "values"), std::string(8, '\x5a'));

  ASSERT_TRUE(assembler.AddChunk("values", 0, values.substr(0, 5)).ok());
  s = assembler.AddChunk("values", 0, values.substr(0, 3));  // a repeat
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  s = assembler.Finish();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("0 of 12 bytes of component 'row_ptr'"));
}

}  // namespace
}  // namespace sparsed
