// The contract of mma.sp::ordered_metadata m16n8k32 (bf16) that
// spmm/nm_tc_kernels.cu relies on, checked on the GPU against a float64
// product of the same values: A's 16×16 stored values loaded by ldmatrix.x4
// in the dense m16n8k16 order, and the metadata of threads 0 and 1 of each
// quad holding k 0-15 (thread 0) or k 16-31 (thread 1) of rows g (low half)
// and g + 8 (high half). The other layouts that public code uses are run as
// well and must fail, so a wrong guess cannot pass. Skipped without a GPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace {

// layout 0: ours. 1: thread 0 holds all 32 bits of row g, thread 1 of row g + 8.
__global__ void OneMmaSp(const unsigned short* a, const uint32_t* meta_rows,
                         const unsigned short* b_nk, float* c, int layout) {
  __shared__ __align__(16) unsigned short as[16 * 16];
  __shared__ __align__(16) unsigned short bs[8 * 32];
  const int lane = threadIdx.x;
  for (int i = lane; i < 256; i += 32) {
    as[i] = a[i];
    bs[i] = b_nk[i];
  }
  __syncthreads();
  unsigned af[4], bf[4];
  const unsigned a_addr = static_cast<unsigned>(
      __cvta_generic_to_shared(as + (lane % 16) * 16 + (lane / 16) * 8));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(af[0]), "=r"(af[1]), "=r"(af[2]), "=r"(af[3])
               : "r"(a_addr));
  const unsigned b_addr =
      static_cast<unsigned>(__cvta_generic_to_shared(bs + (lane % 8) * 32 + (lane / 8) * 8));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(bf[0]), "=r"(bf[1]), "=r"(bf[2]), "=r"(bf[3])
               : "r"(b_addr));
  const int g = lane / 4, t = lane % 4;
  unsigned e = 0;
  if (layout == 0) {
    e = __byte_perm(meta_rows[g], meta_rows[g + 8], t & 1 ? 0x7632 : 0x5410);
  } else {
    e = meta_rows[(t & 1) ? g + 8 : g];
  }
  float d[4] = {0, 0, 0, 0};
  asm volatile(
      "mma.sp::ordered_metadata.sync.aligned.m16n8k32.row.col.f32.bf16.bf16.f32 "
      "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9,%10,%11}, {%0,%1,%2,%3}, %12, 0x0;\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(af[0]), "r"(af[1]), "r"(af[2]), "r"(af[3]), "r"(bf[0]), "r"(bf[1]), "r"(bf[2]),
        "r"(bf[3]), "r"(e));
  c[g * 8 + 2 * t] = d[0];
  c[g * 8 + 2 * t + 1] = d[1];
  c[(g + 8) * 8 + 2 * t] = d[2];
  c[(g + 8) * 8 + 2 * t + 1] = d[3];
}

#define ASSERT_CUDA(x) ASSERT_EQ((x), cudaSuccess) << #x << ": " << cudaGetErrorString(x)

unsigned short Bf16Bits(float v) {
  const __nv_bfloat16 h = __float2bfloat16_rn(v);
  unsigned short bits;
  std::memcpy(&bits, &h, 2);
  return bits;
}
double Bf16Value(unsigned short bits) {
  uint32_t f = static_cast<uint32_t>(bits) << 16;
  float v;
  std::memcpy(&v, &f, 4);
  return v;
}

// Max |error| of the product under `layout` for a fresh random 2:4 A and B.
void RunLayout(int layout, std::mt19937_64& rng, double* max_err, double* scale) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 5);
  const int pairs[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
  std::vector<unsigned short> a(256), b(256);
  std::vector<uint32_t> meta(16, 0);
  std::vector<double> dense(16 * 32, 0.0);
  for (int r = 0; r < 16; ++r) {
    for (int grp = 0; grp < 8; ++grp) {
      const int* pp = pairs[pick(rng)];
      meta[r] |= static_cast<uint32_t>(pp[0] | (pp[1] << 2)) << (4 * grp);
      for (int s = 0; s < 2; ++s) {
        a[r * 16 + grp * 2 + s] = Bf16Bits(u(rng));
        dense[r * 32 + grp * 4 + pp[s]] = Bf16Value(a[r * 16 + grp * 2 + s]);
      }
    }
  }
  for (auto& x : b) x = Bf16Bits(u(rng));  // [n = 8][k = 32]
  unsigned short *da, *db;
  uint32_t* dm;
  float* dc;
  ASSERT_CUDA(cudaMalloc(&da, 512));
  ASSERT_CUDA(cudaMalloc(&db, 512));
  ASSERT_CUDA(cudaMalloc(&dm, 64));
  ASSERT_CUDA(cudaMalloc(&dc, 512));
  ASSERT_CUDA(cudaMemcpy(da, a.data(), 512, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemcpy(db, b.data(), 512, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemcpy(dm, meta.data(), 64, cudaMemcpyHostToDevice));
  ASSERT_CUDA(cudaMemset(dc, 0xff, 512));
  OneMmaSp<<<1, 32>>>(da, dm, db, dc, layout);
  ASSERT_CUDA(cudaGetLastError());
  std::vector<float> c(128);
  ASSERT_CUDA(cudaMemcpy(c.data(), dc, 512, cudaMemcpyDeviceToHost));
  cudaFree(da);
  cudaFree(db);
  cudaFree(dm);
  cudaFree(dc);
  *max_err = 0;
  *scale = 0;
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 8; ++j) {
      double want = 0;
      for (int l = 0; l < 32; ++l) want += dense[i * 32 + l] * Bf16Value(b[j * 32 + l]);
      const double err = std::isnan(c[i * 8 + j]) ? INFINITY : std::abs(c[i * 8 + j] - want);
      *max_err = std::max(*max_err, err);
      *scale = std::max(*scale, std::abs(want));
    }
  }
}

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

TEST(MmaSpLayout, OurMetadataLayoutComputesTheProduct) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
  std::mt19937_64 rng(std::random_device{}());
  for (int trial = 0; trial < 8; ++trial) {
    double err = 0, scale = 0;
    RunLayout(0, rng, &err, &scale);
    ASSERT_LE(err, 1e-4 * (scale + 1)) << "trial " << trial;
  }
}

TEST(MmaSpLayout, TheOtherPublishedLayoutDoesNot) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU is present";
  std::mt19937_64 rng(std::random_device{}());
  double err = 0, scale = 0;
  RunLayout(1, rng, &err, &scale);
  EXPECT_GT(err, 1e-2 * scale) << "layout 1 also matched: the test cannot tell them apart";
}

}  // namespace
