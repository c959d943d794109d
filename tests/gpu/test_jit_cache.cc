// The JIT kernel cache with a generator of its own (y = a*x + b, a and b
// baked in from the spec). Compilation needs only NVRTC, so everything but
// loading and launching runs without a GPU (CI); the launch tests skip
// there. Outputs are poisoned with NaN before each launch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#if SPARSED_HAVE_CUDA

#include <cuda_runtime.h>

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "../../kernels/cuda/jit/jit_cache.h"
#include "../../kernels/cuda/spmm/bsr_tc_generator.h"
#include "gpu_test_util.h"
#include "sparsed/gpu_info.h"
#include "sparsed/str_cat.h"

namespace sparsed::cuda {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sparsed_jit_cache_XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

using gpu_test::HaveGpu;

// "axpb(a=..,b=..)": y[i] = a * x[i] + b. "axpb_smem": the same through
// dynamic shared memory (so a launch can ask for more than 48 KiB).
// "broken": source that does not compile. Anything else: unknown.
absl::StatusOr<KernelSource> TestGenerator(const KernelSpec& spec) {
  auto number = [&](const char* name) -> absl::StatusOr<std::string> {
    auto it = spec.params.find(name);
    if (it == spec.params.end()) {
      return absl::InvalidArgumentError(StrCat(spec.ToString(), ": ", name, " is missing"));
    }
    char* end = nullptr;
    std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0') {
      return absl::InvalidArgumentError(StrCat(spec.ToString(), ": ", name, " is not a number"));
    }
    return it->second;
  };
  if (spec.kernel == "broken") {
    return KernelSource{.name = "broken",
                        .source = "extern \"C\" __global__ void broken() { this is not C++; }",
                        .entry = "broken"};
  }
  if (spec.kernel != "axpb" && spec.kernel != "axpb_smem") {
    return absl::InvalidArgumentError(StrCat("no generator for ", spec.kernel));
  }
  absl::StatusOr<std::string> a = number("a"), b = number("b");
  if (!a.ok()) return a.status();
  if (!b.ok()) return b.status();
  const std::string value = StrCat("(float)(", *a, ") * x[i] + (float)(", *b, ")");
  std::string body;
  if (spec.kernel == "axpb") {
    body = StrCat("  if (i < n) y[i] = ", value, ";\n");
  } else {
    body = StrCat(
        "  extern __shared__ float staged[];\n"
        "  staged[threadIdx.x] = i < n ? ",
        value,
        " : 0.0f;\n"
        "  __syncthreads();\n"
        "  if (i < n) y[i] = staged[threadIdx.x];\n");
  }
  return KernelSource{.name = spec.kernel,
                      .source = StrCat("extern \"C\" __global__ void ", spec.kernel,
                                       "(float* y, const float* x, int n) {\n"
                                       "  const int i = blockIdx.x * blockDim.x + threadIdx.x;\n",
                                       body, "}\n"),
                      .entry = spec.kernel};
}

KernelSpec Axpb(std::string a, std::string b, std::string kernel = "axpb") {
  return {.kernel = std::move(kernel), .params = {{"a", std::move(a)}, {"b", std::move(b)}}};
}

JitCacheOptions Options(const std::string& dir, std::string arch = "sm_90") {
  return {.dir = dir, .arch = std::move(arch), .generator = TestGenerator};
}

std::unique_ptr<JitCache> MustOpen(JitCacheOptions options) {
  absl::StatusOr<std::unique_ptr<JitCache>> c = JitCache::Open(std::move(options));
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *std::move(c) : nullptr;
}

// ------------------------------------------------- without a GPU (CI too)

TEST(JitCacheTest, CompilesWithoutGpuAndKeepsTheCubin) {
  TempDir dir;
  std::vector<double> compile_seconds;
  JitCacheOptions options = Options(dir.path());
  options.on_compile = [&](double s) { compile_seconds.push_back(s); };
  auto cache = MustOpen(std::move(options));
  absl::StatusOr<bool> compiled = cache->Compile(Axpb("2.5", "-1"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_TRUE(*compiled);
  ASSERT_EQ(compile_seconds.size(), 1u);
  EXPECT_GT(compile_seconds[0], 0.0);

  std::vector<KernelCacheEntry> list = cache->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].spec, "axpb(a=2.5,b=-1)");
  EXPECT_EQ(list[0].arch, "sm_90");
  EXPECT_EQ(list[0].key.size(), 64u);
  const fs::path file = fs::path(dir.path()) / (list[0].key + ".cubin");
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(list[0].bytes, static_cast<int64_t>(fs::file_size(file)));
  // A real cubin: an ELF image after our header.
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_NE(ss.str().find("\x7f"
                          "ELF"),
            std::string::npos);

  // Found again, not compiled again.
  compiled = cache->Compile(Axpb("2.5", "-1"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_FALSE(*compiled);
  KernelCacheStats st = cache->Stats();
  EXPECT_EQ(st.compiles, 1);
  EXPECT_EQ(st.misses, 1);
  EXPECT_EQ(st.hits, 1);
  EXPECT_EQ(st.compile_errors, 0);
  EXPECT_EQ(st.entries, 1);
  EXPECT_EQ(st.bytes_on_disk, list[0].bytes);
  EXPECT_EQ(st.max_bytes, int64_t{1} << 30);
  EXPECT_EQ(compile_seconds.size(), 1u);
}

TEST(JitCacheTest, SecondCacheOnTheSameDirectoryCompilesNothing) {
  TempDir dir;
  {
    auto first = MustOpen(Options(dir.path()));
    ASSERT_TRUE(first->Compile(Axpb("1", "2")).ok());
    ASSERT_TRUE(first->Compile(Axpb("3", "4")).ok());
  }
  int compiles_seen = 0;
  JitCacheOptions options = Options(dir.path());
  options.on_compile = [&](double) { ++compiles_seen; };
  auto second = MustOpen(std::move(options));
  EXPECT_EQ(second->List().size(), 2u);
  for (const KernelSpec& s : {Axpb("1", "2"), Axpb("3", "4")}) {
    absl::StatusOr<bool> compiled = second->Compile(s);
    ASSERT_TRUE(compiled.ok()) << compiled.status();
    EXPECT_FALSE(*compiled) << s.ToString();
  }
  EXPECT_EQ(second->Stats().compiles, 0);
  EXPECT_EQ(second->Stats().hits, 2);
  EXPECT_EQ(compiles_seen, 0);
}

TEST(JitCacheTest, KeyCoversArchitectureAndDriverVersion) {
  TempDir dir;
  ASSERT_TRUE(MustOpen(Options(dir.path(), "sm_90"))->Compile(Axpb("1", "2")).ok());
  absl::StatusOr<bool> other_arch = MustOpen(Options(dir.path(), "sm_80"))->Compile(Axpb("1", "2"));
  ASSERT_TRUE(other_arch.ok()) << other_arch.status();
  EXPECT_TRUE(*other_arch);
  JitCacheOptions options = Options(dir.path(), "sm_90");
  options.driver_version = 99990;  // a build step compiling for another host's driver
  absl::StatusOr<bool> other_driver = MustOpen(std::move(options))->Compile(Axpb("1", "2"));
  ASSERT_TRUE(other_driver.ok()) << other_driver.status();
  EXPECT_TRUE(*other_driver);
  EXPECT_EQ(MustOpen(Options(dir.path()))->List().size(), 3u);
}

TEST(JitCacheTest, MemoryOnlyCache) {
  auto cache = MustOpen(Options(""));
  EXPECT_TRUE(*cache->Compile(Axpb("1", "2")));
  EXPECT_FALSE(*cache->Compile(Axpb("1", "2")));
  EXPECT_EQ(cache->List().size(), 1u);
  EXPECT_EQ(*cache->Clear(), 1);
  EXPECT_TRUE(*cache->Compile(Axpb("1", "2")));
}

TEST(JitCacheTest, BrokenSourceIsInternalWithNvrtcLog) {
  TempDir dir;
  int compiles_seen = 0;
  JitCacheOptions options = Options(dir.path());
  options.on_compile = [&](double) { ++compiles_seen; };
  auto cache = MustOpen(std::move(options));
  absl::StatusOr<bool> r = cache->Compile({.kernel = "broken", .params = {{"why", "test"}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(r.status().message(), HasSubstr("compiling broken(why=test) failed: "));
  EXPECT_THAT(r.status().message(), HasSubstr("broken.cu"));  // NVRTC's log names the file
  EXPECT_THAT(r.status().message(), HasSubstr("error"));
  EXPECT_EQ(cache->Stats().compile_errors, 1);
  EXPECT_EQ(cache->Stats().compiles, 0);
  EXPECT_EQ(compiles_seen, 0);
  EXPECT_TRUE(cache->List().empty());
  // Get reports the same error (the compile comes before any GPU is needed).
  absl::StatusOr<const JitKernel*> k = cache->Get({.kernel = "broken"});
  EXPECT_EQ(k.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(k.status().message(), HasSubstr("compiling broken() failed"));
}

TEST(JitCacheTest, GeneratorErrorsPassThrough) {
  auto cache = MustOpen(Options(""));
  absl::StatusOr<bool> r = cache->Compile({.kernel = "nonesuch"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("no generator for nonesuch"));
  EXPECT_EQ(cache->Stats().misses, 0);
}

TEST(JitCacheTest, OpenRejectsBadOptions) {
  JitCacheOptions bad_arch = Options("", "compute_90");
  EXPECT_EQ(JitCache::Open(bad_arch).status().code(), absl::StatusCode::kInvalidArgument);
  JitCacheOptions no_generator = Options("");
  no_generator.generator = nullptr;
  EXPECT_EQ(JitCache::Open(no_generator).status().code(), absl::StatusCode::kInvalidArgument);
  JitCacheOptions negative_cap = Options("");
  negative_cap.max_bytes = -1;
  EXPECT_EQ(JitCache::Open(negative_cap).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JitCacheTest, GeneratorMayNotChooseTheArchitecture) {
  JitCacheOptions options = Options("");
  options.generator = [](const KernelSpec& s) -> absl::StatusOr<KernelSource> {
    absl::StatusOr<KernelSource> src = TestGenerator(Axpb("1", "2"));
    if (src.ok()) src->options = {"--gpu-architecture=sm_80"};
    (void)s;
    return src;
  };
  absl::StatusOr<bool> r = MustOpen(std::move(options))->Compile(Axpb("1", "2"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JitCacheTest, DamagedFileIsRecompiled) {
  TempDir dir;
  auto cache = MustOpen(Options(dir.path()));
  ASSERT_TRUE(*cache->Compile(Axpb("1", "2")));
  const fs::path file = fs::path(dir.path()) / (cache->List()[0].key + ".cubin");
  fs::resize_file(file, fs::file_size(file) / 2);
  auto reopened = MustOpen(Options(dir.path()));
  absl::StatusOr<bool> compiled = reopened->Compile(Axpb("1", "2"));
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  EXPECT_TRUE(*compiled);
  EXPECT_EQ(reopened->List().size(), 1u);
}

// The real tensor-core BSR template: specialisations covering every tile
// of the variant list and each compile-time switch (dtype, output type,
// index width, block shapes, transposes, epilogue steps) compile with NVRTC
// for sm_90, without spills being an error; no GPU needed.
TEST(JitCacheTest, BsrTensorCoreSpecialisationsCompile) {
  TempDir dir;
  JitCacheOptions o{.dir = dir.path(), .arch = "sm_90", .generator = GenerateKernel};
  std::unique_ptr<JitCache> cache = MustOpen(o);
  ASSERT_NE(cache, nullptr);
  struct Case {
    BsrTcTile tile;
    int r, c, out_kind;
    bool bf16, idx64, a_trans, b_nmajor, c_trans, epilogue;
  };
  const Case cases[] = {
      {{64, 128, 2, 2, 3}, 64, 64, 1, true, false, false, false, false, false},
      {{128, 128, 4, 2, 3}, 128, 128, 0, true, false, false, false, false, true},
      {{64, 256, 2, 4, 3}, 64, 64, 2, false, true, false, false, false, true},
      {{128, 64, 4, 1, 4}, 32, 128, 1, true, false, true, false, false, false},
      {{32, 64, 1, 4, 4}, 32, 16, 0, false, false, false, true, true, true},
      {{16, 64, 1, 4, 4}, 16, 16, 1, true, false, true, true, true, true},
      {{16, 32, 1, 2, 4}, 16, 48, 2, true, false, false, true, false, false},
  };
  for (const Case& k : cases) {
    BsrTcConfig c;
    c.tile = k.tile;
    c.r = k.r;
    c.c = k.c;
    c.out_kind = k.out_kind;
    c.bf16 = k.bf16;
    c.idx64 = k.idx64;
    c.a_trans = k.a_trans;
    c.b_nmajor = k.b_nmajor;
    c.c_trans = k.c_trans;
    c.beta = c.bias = c.relu = c.clamp = k.epilogue;
    c.kt = 0;
    const KernelSpec spec = BsrTcSpec(c);
    ASSERT_TRUE(BsrTcConfigOf(spec).ok())
        << spec.ToString() << ": " << BsrTcConfigOf(spec).status();
    absl::StatusOr<bool> compiled = cache->Compile(spec);
    EXPECT_TRUE(compiled.ok()) << spec.ToString() << ": " << compiled.status();
  }
  EXPECT_EQ(cache->Stats().compiles, static_cast<int64_t>(std::size(cases)));
}

TEST(JitCacheTest, ClearRemovesEverything) {
  TempDir dir;
  auto cache = MustOpen(Options(dir.path()));
  ASSERT_TRUE(cache->Compile(Axpb("1", "2")).ok());
  ASSERT_TRUE(cache->Compile(Axpb("3", "4")).ok());
  absl::StatusOr<int> n = cache->Clear();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  EXPECT_TRUE(cache->List().empty());
  EXPECT_EQ(cache->Stats().bytes_on_disk, 0);
  int cubins = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    cubins += e.path().extension() == ".cubin";
  }
  EXPECT_EQ(cubins, 0);
  EXPECT_TRUE(*cache->Compile(Axpb("1", "2")));
}

TEST(JitCacheTest, CapEvictsLeastRecentlyUsed) {
  TempDir dir;
  auto probe = MustOpen(Options(""));
  ASSERT_TRUE(probe->Compile(Axpb("1", "2")).ok());
  const int64_t one = probe->List()[0].bytes;
  JitCacheOptions options = Options(dir.path());
  options.max_bytes = 2 * one + one / 2;  // on disk each is this cubin plus ~100 bytes
  auto cache = MustOpen(std::move(options));
  ASSERT_TRUE(cache->Compile(Axpb("1", "2")).ok());
  ASSERT_TRUE(cache->Compile(Axpb("3", "4")).ok());
  ASSERT_TRUE(cache->Compile(Axpb("1", "2")).ok());  // used again
  ASSERT_TRUE(cache->Compile(Axpb("5", "6")).ok());
  std::vector<std::string> specs;
  for (const KernelCacheEntry& e : cache->List()) specs.push_back(e.spec);
  EXPECT_THAT(specs, ::testing::UnorderedElementsAre("axpb(a=1,b=2)", "axpb(a=5,b=6)"));
}

TEST(JitCacheTest, ConcurrentCompilesOfOneSpecCompileOnce) {
  TempDir dir;
  std::atomic<int> compiles_seen{0};
  JitCacheOptions options = Options(dir.path());
  options.on_compile = [&](double) { compiles_seen.fetch_add(1); };
  auto cache = MustOpen(std::move(options));
  constexpr int kThreads = 8;
  std::barrier start(kThreads);
  std::vector<absl::StatusOr<bool>> results(kThreads, false);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      results[t] = cache->Compile(Axpb("7", "8"));
    });
  }
  for (std::thread& t : threads) t.join();
  int compiled_here = 0;
  for (const absl::StatusOr<bool>& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    compiled_here += *r;
  }
  EXPECT_EQ(compiled_here, 1);
  EXPECT_EQ(compiles_seen.load(), 1);
  EXPECT_EQ(cache->Stats().compiles, 1);
  EXPECT_EQ(cache->Stats().hits + cache->Stats().misses, kThreads);
}

// Get from 8 threads at once: one compile whether or not a GPU can load it.
TEST(JitCacheTest, ConcurrentGetsOfOneSpecCompileOnce) {
  TempDir dir;
  const bool gpu = HaveGpu();
  auto cache = MustOpen(Options(dir.path(), gpu ? "" : "sm_90"));
  constexpr int kThreads = 8;
  std::barrier start(kThreads);
  std::vector<absl::StatusOr<const JitKernel*>> results(kThreads, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      results[t] = cache->Get(Axpb("7", "8"));
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(cache->Stats().compiles, 1);
  EXPECT_EQ(cache->Stats().misses, 1);
  for (const auto& r : results) {
    if (gpu) {
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(*r, *results[0]);  // one loaded kernel
    } else {
      EXPECT_FALSE(r.ok());  // loading needs a driver
    }
  }
}

// ------------------------------------------------- on a GPU

class DeviceArrays {
 public:
  explicit DeviceArrays(int n) : n_(n) {
    ok_ = cudaMalloc(&x_, n * sizeof(float)) == cudaSuccess &&
          cudaMalloc(&y_, n * sizeof(float)) == cudaSuccess &&
          cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) == cudaSuccess;
  }
  ~DeviceArrays() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
    cudaFree(x_);
    cudaFree(y_);
  }
  bool ok() const { return ok_; }

  // Uploads x, fills y with NaN, launches `k` over n elements, returns y.
  std::vector<float> Run(const JitKernel& k, const std::vector<float>& x, int block,
                         unsigned smem) {
    std::vector<float> y(n_, std::nanf(""));
    EXPECT_EQ(cudaMemcpy(x_, x.data(), n_ * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(y_, y.data(), n_ * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    int n = n_;
    void* args[] = {&y_, &x_, &n};
    absl::Status s = k.Launch(dim3((n_ + block - 1) / block), dim3(block), smem, stream_, args);
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(cudaStreamSynchronize(stream_), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(y.data(), y_, n_ * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return y;
  }

 private:
  int n_;
  float* x_ = nullptr;
  float* y_ = nullptr;
  cudaStream_t stream_ = nullptr;
  bool ok_ = false;
};

std::vector<float> Inputs(int n) {
  std::vector<float> x(n);
  for (int i = 0; i < n; ++i) x[i] = static_cast<float>(i % 1000) * 0.25f - 100.0f;
  return x;
}

void ExpectAxpb(const std::vector<float>& y, const std::vector<float>& x, float a, float b) {
  ASSERT_EQ(y.size(), x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_FLOAT_EQ(y[i], a * x[i] + b) << "at " << i;
  }
}

TEST(JitCacheGpuTest, GetAndLaunch) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
  TempDir dir;
  auto cache = MustOpen(Options(dir.path(), ""));  // the device's own architecture
  const GpuInfo gpu = ListGpus()[0];
  ASSERT_EQ(cache->List().size(), 0u);
  absl::StatusOr<const JitKernel*> k = cache->Get(Axpb("2.5", "-1"));
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ((*k)->spec(), "axpb(a=2.5,b=-1)");
  ASSERT_EQ(cache->List().size(), 1u);
  EXPECT_EQ(cache->List()[0].arch, StrCat("sm_", gpu.cc_major, gpu.cc_minor));

  constexpr int kN = 100003;  // not a multiple of the block
  DeviceArrays arrays(kN);
  ASSERT_TRUE(arrays.ok());
  const std::vector<float> x = Inputs(kN);
  ExpectAxpb(arrays.Run(**k, x, 256, 0), x, 2.5f, -1.0f);

  // From memory the second time: the same kernel, no compile.
  absl::StatusOr<const JitKernel*> again = cache->Get(Axpb("2.5", "-1"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *k);
  EXPECT_EQ(cache->Stats().compiles, 1);
  EXPECT_EQ(cache->Stats().hits, 1);

  // Other constants: another kernel.
  absl::StatusOr<const JitKernel*> other = cache->Get(Axpb("-0.5", "3"));
  ASSERT_TRUE(other.ok()) << other.status();
  ExpectAxpb(arrays.Run(**other, x, 128, 0), x, -0.5f, 3.0f);
}

TEST(JitCacheGpuTest, RestartedCacheLoadsFromDiskWithoutCompiling) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
  TempDir dir;
  ASSERT_TRUE(MustOpen(Options(dir.path(), ""))->Compile(Axpb("4", "0.5")).ok());
  auto cache = MustOpen(Options(dir.path(), ""));
  absl::StatusOr<const JitKernel*> k = cache->Get(Axpb("4", "0.5"));
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(cache->Stats().compiles, 0);
  constexpr int kN = 4097;
  DeviceArrays arrays(kN);
  ASSERT_TRUE(arrays.ok());
  const std::vector<float> x = Inputs(kN);
  ExpectAxpb(arrays.Run(**k, x, 256, 0), x, 4.0f, 0.5f);
}

TEST(JitCacheGpuTest, LaunchWithMoreThan48KiBOfSharedMemory) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
  auto cache = MustOpen(Options("", ""));
  absl::StatusOr<const JitKernel*> k = cache->Get(Axpb("1.5", "2", "axpb_smem"));
  ASSERT_TRUE(k.ok()) << k.status();
  constexpr int kN = 5000;
  DeviceArrays arrays(kN);
  ASSERT_TRUE(arrays.ok());
  const std::vector<float> x = Inputs(kN);
  ExpectAxpb(arrays.Run(**k, x, 256, 64 * 1024), x, 1.5f, 2.0f);  // raises the limit
  ExpectAxpb(arrays.Run(**k, x, 256, 1024), x, 1.5f, 2.0f);       // and keeps it
}

TEST(JitCacheGpuTest, LaunchFromAnotherThread) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
  auto cache = MustOpen(Options("", ""));
  absl::StatusOr<const JitKernel*> k = cache->Get(Axpb("3", "1"));
  ASSERT_TRUE(k.ok()) << k.status();
  constexpr int kN = 1000;
  DeviceArrays arrays(kN);
  ASSERT_TRUE(arrays.ok());
  const std::vector<float> x = Inputs(kN);
  std::vector<float> y;
  // A thread other than the one that loaded the module.
  std::thread([&] { y = arrays.Run(**k, x, 256, 0); }).join();
  ExpectAxpb(y, x, 3.0f, 1.0f);
}

}  // namespace
}  // namespace sparsed::cuda

#else  // !SPARSED_HAVE_CUDA

TEST(JitCacheTest, NeedsTheCudaPart) { GTEST_SKIP() << "built without the CUDA part"; }

#endif
