// 2:4 SpMM on sparse tensor cores in the F.linear shape, Y[T, O] = X[T, K]·Wᵀ
// with W [O, K] 2:4 along K, bf16 values, f32 accumulation, bf16 output,
// against dense cuBLAS bf16 (cublasGemmEx on the same W with its zeros) in
// the same run:
//   nm_tc_<tile>   each 2:4 tensor-core variant through the variant
//                  interface (k split across CTAs where the tiles alone
//                  would not fill the GPU), kernel time only
//   nm_best        the fastest of those (what the tuner would store)
//   cublas_dense   cublasGemmEx, CUBLAS_COMPUTE_32F, default algorithm
// Timing: CUDA events around each launch, a 100 µs spin kernel queued ahead
// of the start event to hide host launch latency, every contender once per round,
// round-robin, after warm-up rounds; the table gives the median. W is
// rotated among several device copies so that the weights are read from
// device memory, not from the L2 (decode sizes are memory-bound). Before
// timing, each contender runs once into a poisoned output, checked against
// cuBLAS's (relative Frobenius error, bf16 tolerance).
//
//   bench_nm_spmm [--weights 4096x4096,8192x8192,11008x4096,4096x11008]
//                 [--tokens 1,16,64,256,2048,8192] [--rounds 20] [--warmup 3]
//                 [--quick] [--csv out.csv]
// (OxK: O output features = W rows, K input features.)
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "bench_check.h"
#include "bench_cuda_check.h"
#include "spmm/nm_tc_spmm.h"

namespace sparsed::bench {

cudaError_t LaunchSpin(cudaStream_t stream, int64_t ns);  // gpu_spin.cu

namespace {

// Relative Frobenius error against cuBLAS's bf16 output: correct tiles
// measure 4e-5 to 8e-5 (both round the same f32 sums); a tile that drops
// contributions measured 1e-3 to 0.3, which 2e-2 once let through.
constexpr double kTolerance = 5e-4;

// Owned device memory.
struct DeviceBuffer {
  void* ptr = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    CHECK_CUDA(cudaMalloc(&ptr, std::max<size_t>(bytes, 256)));
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(std::exchange(o.ptr, nullptr)) {}
  ~DeviceBuffer() {
    if (ptr != nullptr) cudaFree(ptr);
  }
};
template <class T>
DeviceBuffer Upload(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  CHECK_CUDA(cudaMemcpy(b.ptr, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}

uint16_t Bf16Bits(float v) {
  const __nv_bfloat16 h = __float2bfloat16_rn(v);
  uint16_t bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
float Bf16Value(uint16_t bits) {
  const uint32_t f = static_cast<uint32_t>(bits) << 16;
  float v;
  std::memcpy(&v, &f, 4);
  return v;
}

// One W: its 2:4 form (values, metadata) and the dense bf16 equivalent.
struct Weights {
  int64_t o = 0, k = 0;
  std::vector<DeviceBuffer> values, meta, dense;  // `copies` of each
};

Weights MakeWeights(int64_t o, int64_t k, int copies, std::mt19937_64& rng) {
  const int64_t groups = k / 4, words = (groups + 7) / 8;
  std::vector<uint16_t> vals(o * k / 2), dense(o * k, 0);
  std::vector<uint32_t> meta(o * words, 0);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t r = 0; r < o; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      float x[4];
      for (float& v : x) v = u(rng);
      // Keep the two largest magnitudes, in position order.
      int a = 0, b = 1;
      for (int i = 0; i < 4; ++i) {
        if (std::abs(x[i]) > std::abs(x[a])) a = i;
      }
      b = a == 0 ? 1 : 0;
      for (int i = 0; i < 4; ++i) {
        if (i != a && std::abs(x[i]) > std::abs(x[b])) b = i;
      }
      if (a > b) std::swap(a, b);
      meta[r * words + g / 8] |= static_cast<uint32_t>(a | (b << 2)) << (4 * (g % 8));
      vals[(r * groups + g) * 2] = Bf16Bits(x[a]);
      vals[(r * groups + g) * 2 + 1] = Bf16Bits(x[b]);
      dense[r * k + g * 4 + a] = Bf16Bits(x[a]);
      dense[r * k + g * 4 + b] = Bf16Bits(x[b]);
    }
  }
  Weights w;
  w.o = o;
  w.k = k;
  for (int c = 0; c < copies; ++c) {
    w.values.push_back(Upload(vals));
    w.meta.push_back(Upload(meta));
    w.dense.push_back(Upload(dense));
  }
  return w;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? std::nan("") : v[v.size() / 2];
}

std::vector<std::pair<int64_t, int64_t>> ParseShapes(const std::string& list) {
  std::vector<std::pair<int64_t, int64_t>> out;
  std::stringstream s(list);
  for (std::string t; std::getline(s, t, ',');) {
    const size_t x = t.find('x');
    if (x == std::string::npos) continue;
    out.emplace_back(std::stoll(t.substr(0, x)), std::stoll(t.substr(x + 1)));
  }
  return out;
}
std::vector<int64_t> ParseInts(const std::string& list) {
  std::vector<int64_t> out;
  std::stringstream s(list);
  for (std::string t; std::getline(s, t, ',');) {
    if (!t.empty()) out.push_back(std::stoll(t));
  }
  return out;
}

// Relative Frobenius distance of two bf16 device arrays.
double RelError(const void* got, const void* want, int64_t count) {
  std::vector<uint16_t> g(count), w(count);
  CHECK_CUDA(cudaMemcpy(g.data(), got, count * 2, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaMemcpy(w.data(), want, count * 2, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double a = Bf16Value(g[i]), b = Bf16Value(w[i]);
    if (std::isnan(a)) return INFINITY;
    num += (a - b) * (a - b);
    den += b * b;
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

struct Contender {
  std::string name;
  const cuda::NmTcVariant* variant = nullptr;  // nullptr: cuBLAS
  std::vector<cuda::Plan*> plans;              // per W copy
  std::vector<double> ms;
  double error = 0;
};

// Whether `name` starts with one of the comma-separated `prefixes` (all
// names match an empty list).
bool MatchesPrefix(std::string_view name, const std::string& prefixes) {
  if (prefixes.empty()) return true;
  size_t at = 0;
  while (at <= prefixes.size()) {
    const size_t end = std::min(prefixes.find(',', at), prefixes.size());
    if (end > at && name.starts_with(std::string_view(prefixes).substr(at, end - at))) return true;
    at = end + 1;
  }
  return false;
}

int Main(int argc, char** argv) {
  CLI::App app{"2:4 tensor-core SpMM (X·Wᵀ) vs dense cuBLAS bf16"};
  std::string weights = "4096x4096,8192x8192,11008x4096,4096x11008";
  std::string tokens = "1,16,64,256,2048,8192";
  int rounds = 20, warmup = 3;
  bool quick = false;
  std::string csv;
  app.add_option("--weights", weights, "OxK list");
  app.add_option("--tokens", tokens, "token counts");
  app.add_option("--rounds", rounds);
  app.add_option("--warmup", warmup);
  app.add_flag("--quick", quick, "4096x4096 at 1, 64, 2048 tokens, 8 rounds");
  std::string only;
  app.add_option("--only", only, "comma-separated name prefixes of the tiles to run (all)");
  app.add_option("--csv", csv);
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    weights = "4096x4096";
    tokens = "1,64,2048";
    rounds = 8;
  }

  cuda::ExecContext ctx;
  CHECK_CUDA(cudaSetDevice(0));
  CHECK_CUDA(cudaDeviceGetAttribute(&ctx.num_sms, cudaDevAttrMultiProcessorCount, 0));
  int major = 0, minor = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0));
  CHECK_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0));
  ctx.arch = major * 10 + minor;
  CHECK_CUDA(cudaStreamCreate(&ctx.stream));
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  cublasHandle_t blas = nullptr;
  CHECK_CUBLAS(cublasCreate(&blas));
  CHECK_CUBLAS(cublasSetStream(blas, ctx.stream));
  std::printf("GPU %s, %d SMs, L2 %d MiB\n", prop.name, ctx.num_sms, prop.l2CacheSize >> 20);

  std::ofstream out_csv;
  if (!csv.empty()) {
    out_csv.open(csv);
    out_csv << "o,k,tokens,contender,median_ms,tflops_dense_equiv,ratio_vs_cublas,rel_error\n";
  }
  std::printf("%6s %6s %6s  %-14s %10s %9s %8s %9s\n", "O", "K", "T", "contender", "median_ms",
              "TFLOP/s", "x_cublas", "rel_err");
  std::mt19937_64 rng(1);
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));

  for (auto [o, k] : ParseShapes(weights)) {
    // Enough copies of W that one round's reads exceed the L2 several times.
    const double dense_bytes = static_cast<double>(o) * k * 2;
    const int copies =
        static_cast<int>(std::clamp(std::ceil(4.0 * prop.l2CacheSize / dense_bytes), 1.0, 8.0));
    Weights w = MakeWeights(o, k, copies, rng);
    for (int64_t t : ParseInts(tokens)) {
      std::vector<uint16_t> xh(t * k);
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (auto& v : xh) v = Bf16Bits(u(rng));
      DeviceBuffer x = Upload(xh);
      DeviceBuffer y_ref(t * o * 2), y(t * o * 2);
      cuda::Workspace ws(ctx);

      auto problem = [&](int copy) {
        cuda::NmTcProblem p;
        p.m = o;
        p.n = t;
        p.k = k;
        p.a_values = w.values[copy].ptr;
        p.meta = static_cast<const int32_t*>(w.meta[copy].ptr);
        p.type = cuda::ValueType::kBF16;
        p.b = x.ptr;
        p.ldb = k;
        p.b_nmajor = true;
        p.out = y.ptr;
        p.out_type = cuda::OutType::kBF16;
        p.ldc = o;
        p.c_trans = true;
        return p;
      };
      const float one = 1.0f, zero = 0.0f;
      auto run_cublas = [&](int copy, void* out) {
        // Column-major: Yᵀ [O, T] = (W as [K, O])ᵀ · (X as [K, T]).
        CHECK_CUBLAS(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(o),
                                  static_cast<int>(t), static_cast<int>(k), &one, w.dense[copy].ptr,
                                  CUDA_R_16BF, static_cast<int>(k), x.ptr, CUDA_R_16BF,
                                  static_cast<int>(k), &zero, out, CUDA_R_16BF, static_cast<int>(o),
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      };

      std::vector<Contender> cs;
      cs.push_back({"cublas_dense"});
      for (const cuda::NmTcVariant* v : cuda::NmTcVariants()) {
        if (!MatchesPrefix(v->name(), only)) continue;
        if (v->min_arch() > ctx.arch || !v->Supports(problem(0))) continue;
        Contender c{std::string(v->name()), v};
        for (int copy = 0; copy < copies; ++copy) {
          c.plans.push_back(Must(v->Prepare(problem(copy), ctx, ws)));
        }
        cs.push_back(std::move(c));
      }
      // Reference and checks (outputs poisoned first).
      run_cublas(0, y_ref.ptr);
      for (Contender& c : cs) {
        if (c.variant == nullptr) continue;
        CHECK_CUDA(cudaMemsetAsync(y.ptr, 0xff, t * o * 2, ctx.stream));
        CHECK_OK(c.variant->Run(problem(0), c.plans[0], ctx));
        CHECK_CUDA(cudaStreamSynchronize(ctx.stream));
        c.error = RelError(y.ptr, y_ref.ptr, t * o);
      }
      // Interleaved rounds.
      int copy = 0;
      for (int round = 0; round < warmup + rounds; ++round) {
        for (Contender& c : cs) {
          CHECK_CUDA(LaunchSpin(ctx.stream, 100000));  // covers the host's launch work
          CHECK_CUDA(cudaEventRecord(start, ctx.stream));
          if (c.variant == nullptr) {
            run_cublas(copy, y.ptr);
          } else {
            CHECK_OK(c.variant->Run(problem(copy), c.plans[copy], ctx));
          }
          CHECK_CUDA(cudaEventRecord(stop, ctx.stream));
          CHECK_CUDA(cudaEventSynchronize(stop));
          float ms = 0;
          CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
          if (round >= warmup) c.ms.push_back(ms);
          copy = (copy + 1) % copies;
        }
      }
      CHECK_OK(ws.Sync());
      const double flops = 2.0 * o * k * t;
      const double base = Median(cs[0].ms);
      int best = -1;
      for (size_t i = 0; i < cs.size(); ++i) {
        const double med = Median(cs[i].ms);
        const bool bad = cs[i].error > kTolerance;
        if (cs[i].variant != nullptr && !bad && (best < 0 || med < Median(cs[best].ms))) {
          best = static_cast<int>(i);  // the fastest correct tile
        }
        std::printf("%6lld %6lld %6lld  %-20s %10.4f %9.1f %8.2f %9.2e%s\n", (long long)o,
                    (long long)k, (long long)t, cs[i].name.c_str(), med, flops / med * 1e-9,
                    base / med, cs[i].error, bad ? "  WRONG" : "");
        if (out_csv.is_open()) {
          out_csv << o << "," << k << "," << t << "," << cs[i].name << "," << med << ","
                  << flops / med * 1e-9 << "," << base / med << "," << cs[i].error << "\n";
        }
      }
      if (best >= 0) {
        const double med = Median(cs[best].ms);
        std::printf("%6lld %6lld %6lld  %-20s %10.4f %9.1f %8.2f  (%s)\n", (long long)o,
                    (long long)k, (long long)t, "nm_best", med, flops / med * 1e-9, base / med,
                    cs[best].name.c_str());
        if (out_csv.is_open()) {
          out_csv << o << "," << k << "," << t << ",nm_best," << med << "," << flops / med * 1e-9
                  << "," << base / med << "," << cs[best].error << "\n";
        }
      }
      std::fflush(stdout);
    }
  }
  cublasDestroy(blas);
  return 0;
}

}  // namespace
}  // namespace sparsed::bench

int main(int argc, char** argv) { return sparsed::bench::Main(argc, argv); }
