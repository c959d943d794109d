// Core types: descriptions, component layout, memory accounting, devices.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

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

// The pool behind ParallelFor: nested calls (a task that runs a ParallelFor)
// and many concurrent callers each cover their ranges exactly once, with
// more chunks than pool threads, and finish (no deadlock).
TEST(ParallelFor, NestedAndConcurrentCallsCoverTheirRanges) {
  constexpr int kCallers = 8, kOuter = 16, kInner = 1000;
  std::vector<std::vector<std::atomic<int>>> hits(kCallers);
  for (auto& h : hits) h = std::vector<std::atomic<int>>(kOuter * kInner);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      ParallelFor(kOuter, 1, 16, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          ParallelFor(kInner, 7, 16, [&](int64_t ib, int64_t ie) {
            for (int64_t i = ib; i < ie; ++i) hits[c][o * kInner + i]++;
          });
        }
      });
    });
  }
  for (std::thread& t : callers) t.join();
  for (const auto& h : hits) {
    for (const std::atomic<int>& x : h) ASSERT_EQ(x.load(), 1);
  }
}

// Issue 17: the host-memory guard read physical memory, not a container's
// limit. A fake cgroup mount of each version: the process's group first,
// the mount's top level as the fallback, "max"/unlimited as no limit.
TEST(HostMemory, CgroupLimitOfEitherVersion) {
  namespace fs = std::filesystem;
  std::string tmpl = (fs::temp_directory_path() / "cgroup_test_XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const fs::path root = tmpl;
  auto put = [&](const fs::path& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  // v2: the group's own file wins; without it the top-level file; "max" is none.
  put("app/memory.max", "268435456\n");
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/app\n", root.string()), 268435456);
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/other\n", root.string()), 0);
  put("memory.max", "1073741824\n");
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/other\n", root.string()), 1073741824);
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/\n", root.string()), 1073741824);
  put("memory.max", "max\n");
  EXPECT_EQ(CgroupMemoryLimitBytes("0::/\n", root.string()), 0);
  // v1: the memory controller's line, among others.
  put("memory/box/memory.limit_in_bytes", "536870912\n");
  const std::string v1 = "9:pids:/\n4:cpu,cpuacct:/\n3:memory:/box\n";
  EXPECT_EQ(CgroupMemoryLimitBytes(v1, root.string()), 536870912);
  put("memory/box/memory.limit_in_bytes", "9223372036854771712\n");  // unlimited
  EXPECT_EQ(CgroupMemoryLimitBytes(v1, root.string()), 0);
  EXPECT_EQ(CgroupMemoryLimitBytes("garbage", root.string()), 0);
  fs::remove_all(root);
  // Whatever the machine says, never more than physical memory and never 0
  // on Linux.
  const int64_t physical =
      static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE);
  EXPECT_GT(HostMemoryBytes(), 0);
  EXPECT_LE(HostMemoryBytes(), physical);
}

}  // namespace
}  // namespace sparsed
