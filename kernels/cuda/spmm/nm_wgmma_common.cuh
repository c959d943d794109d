// What the two wgmma.sp 2:4 kernels share (nm_wgmma_kernels_sm90a.cu: every
// thread loads with cp.async; nm_wgmma_ws_kernels_sm90a.cu: a producer
// warpgroup loads with the tensor memory accelerator): the parameters, the
// shared-memory stage layout and its swizzle, the matrix descriptors, the
// wgmma fences, and the staged store of a finished tile. sm_90a only.
//
// Stage layout (bytes): A [bm][64 B] (32 stored values a row, the 64-byte
// swizzle), op(B) [bn][128 B] (64 logical k a row, the 128-byte swizzle),
// then the metadata words [bm][2], padded so that every stage's op(B)
// starts on a 1024-byte swizzle atom. The swizzles are the address-based
// ones both wgmma's descriptors and TMA's CU_TENSOR_MAP_SWIZZLE_64B/128B
// use: 16-byte chunk c of a row lands at chunk c XOR (address bits 7-8 or
// 7-9), so the stage must start 1024-byte aligned.
#pragma once

#include <cstdint>

#include "spmm/nm_tc_common.cuh"
#include "spmm/nm_wgmma_kernels.h"
#include "spmm/ptx_copy.cuh"

namespace sparsed::cuda::kernels {
namespace wg {

using u16 = unsigned short;
using i64 = long long;
using namespace sparsed::cuda::ptx;

struct Params {
  const u16* a;
  const unsigned* meta;
  const u16* b;
  NmOut o;                  // out and epilogue, or the split-k partials
  i64 m, n, k, ldb, words;  // words: metadata words per row
  int k_tiles_per_split;    // of 64 logical k
  int m_tiles, n_tiles;
  bool a_vec16, b_vec16;
};

// One stage in shared memory (bytes): A [bm][64 B] (32 stored values a
// row), op(B) [bn][128 B] (64 k a row), then the metadata words [bm][2],
// padded so that every stage's op(B) starts on a 1024-byte swizzle atom.
template <int BM, int BN>
struct WgLayout {
  static constexpr int kA = BM * 64, kB = BN * 128, kMeta = (BM * 8 + 1023) / 1024 * 1024;
  static constexpr int kStage = kA + kB + kMeta;
  static_assert(kA % 1024 == 0 && kStage % 1024 == 0, "swizzle atoms must stay aligned");
};

// Byte offsets of row r's 16-byte chunk c: A rows of 64 bytes in the 64-byte
// swizzle (chunk bits 4-5 XOR address bits 7-8), op(B) rows of 128 bytes in
// the 128-byte swizzle (bits 4-6 XOR bits 7-9).
__device__ __forceinline__ unsigned ASwizzled(int r, int c) {
  return static_cast<unsigned>(r * 64 + ((c ^ ((r >> 1) & 3)) << 4));
}
__device__ __forceinline__ unsigned BSwizzled(int r, int c) {
  return static_cast<unsigned>(r * 128 + ((c ^ (r & 7)) << 4));
}

// A K-major shared-memory matrix descriptor in a swizzle mode (1: 128-byte,
// 2: 64-byte): start address, the byte offset between 8-row groups (SBO),
// in 16-byte units; the leading offset is unused when one instruction's k
// fits the swizzle width, as here. Advancing the start by a k offset within
// the atom is how the k32 steps of a stage are addressed.
__device__ __forceinline__ uint64_t Desc(unsigned addr, unsigned sbo, uint64_t mode) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (uint64_t{1} << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32) | (mode << 62);
}

// cp.async writes through the generic proxy, wgmma reads through the async
// proxy: each thread fences its landed copies before the barrier.
__device__ __forceinline__ void FenceProxyAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Pins the accumulator registers across a wgmma's issue and wait: without
// it the compiler may copy them while an asynchronous wgmma still writes the
// originals (seen on an H100: with a group left in flight, tiles of 256
// columns, and of two warpgroups, lost contributions, relative error 1e-2 to
// 0.3).
template <int N>
__device__ __forceinline__ void FenceAccumulators(float* acc) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}
__device__ __forceinline__ void WgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void WgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Grouped rasterisation: runs of 16 row tiles sweep the column tiles
// together, so that a wave's rows of A and columns of op(B) stay in L2.
// Tile `pid`'s origin (row0, n0) among m_tiles × p.n_tiles tiles of BM × BN.
template <int BM, int BN>
__device__ __forceinline__ void TileOriginOf(const Params& p, int m_tiles, int pid, i64& row0,
                                             i64& n0) {
  constexpr int kGroup = 16;
  const int per_group = kGroup * p.n_tiles;
  const int first_m = pid / per_group * kGroup;
  const int group_rows = min(m_tiles - first_m, kGroup);
  const int in_group = pid % per_group;
  row0 = static_cast<i64>(first_m + in_group % group_rows) * BM;
  n0 = static_cast<i64>(in_group / group_rows) * BN;
}
// The CTA's tile origin, from blockIdx.x.
template <int BM, int BN>
__device__ __forceinline__ void TileOrigin(const Params& p, i64& row0, i64& n0) {
  TileOriginOf<BM, BN>(p, p.m_tiles, static_cast<int>(blockIdx.x), row0, n0);
}

// The k tiles (of 64 logical k) split blockIdx.z computes, from *begin.
__device__ __forceinline__ int SplitTiles(const Params& p, i64* begin) {
  const i64 k_tiles = (p.k + kNmWgKTile - 1) / kNmWgKTile;
  *begin = static_cast<i64>(blockIdx.z) * p.k_tiles_per_split;
  const i64 end = min(k_tiles, *begin + p.k_tiles_per_split);
  return end > *begin ? static_cast<int>(end - *begin) : 0;
}

// Threads 0 and 1 of a quad hold the metadata of k 0-15 (thread 0) or
// 16-31 (thread 1) of rows g (low half) and g + 8 (high half) of the
// warp's 16 rows, as for mma.sp m16n8k32 (test_mma_sp_layout checks both):
// e[s] for k32 step s of a stage whose words lie at `ms` [bm][2].
__device__ __forceinline__ void StageMetadata(const unsigned* ms, int r_lo, int tq, unsigned* e) {
#pragma unroll
  for (int s = 0; s < 2; ++s) {
    const unsigned w0 = FixPaddingNibbles(ms[r_lo * 2 + s]);
    const unsigned w1 = FixPaddingNibbles(ms[(r_lo + 8) * 2 + s]);
    e[s] = __byte_perm(w0, w1, tq & 1 ? 0x7632 : 0x5410);
  }
}

// Writes the CTA's finished tile (splits == 1) through shared memory, so
// that out is stored 16 bytes at a time along its contiguous dimension (P's
// rows when c_trans) rather than in the fragments' 4-byte pairs, which
// fill half of each 32-byte sector. `tile` may alias the idle stages.
//
// THREADS threads take part, numbered by `tid`; they meet at named barrier
// kBarrier (0: __syncthreads, the whole CTA).
template <int BM, int BN, int THREADS, int kBarrier = 0>
__device__ __forceinline__ void StoreTileStaged(const Params& p, float* tile, const float* acc,
                                                i64 row0, i64 n0, int r_lo, int tq, int tid) {
  const NmOut& o = p.o;
  const bool ct = o.c_trans;
  const int fast = ct ? BM : BN, slow = ct ? BN : BM, ld = fast + 4;
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = r_lo + h * 8, c = j * 8 + tq * 2;
      const float v0 = acc[4 * j + 2 * h], v1 = acc[4 * j + 2 * h + 1];
      if (ct) {
        tile[c * ld + r] = v0;
        tile[(c + 1) * ld + r] = v1;
      } else {
        tile[r * ld + c] = v0;
        tile[r * ld + c + 1] = v1;
      }
    }
  if constexpr (kBarrier == 0) {
    __syncthreads();
  } else {
    asm volatile("bar.sync %0, %1;\n" ::"n"(kBarrier), "n"(THREADS) : "memory");
  }
  const int chunks = fast / 8;
  for (int idx = tid; idx < slow * chunks; idx += THREADS) {
    const int sl = idx / chunks, f0 = (idx % chunks) * 8;
    // Element i of the chunk: P[row0 + f0 + i][n0 + sl] (c_trans) or
    // P[row0 + sl][n0 + f0 + i]; out index base + i either way.
    const i64 row = ct ? row0 + f0 : row0 + sl, col = ct ? n0 + sl : n0 + f0;
    const i64 base = ct ? col * o.ldc + row : row * o.ldc + col;
    const i64 fast_left = ct ? o.m - row : o.n - col;
    const float* src = tile + sl * ld + f0;
    if ((ct ? col : row) >= (ct ? o.n : o.m) || fast_left <= 0) continue;
    if (fast_left >= 8 && (base & 7) == 0) {
      float v[8];
#pragma unroll
      for (int i = 0; i < 8; ++i)
        v[i] = FinishEpilogue(o.e, src[i], base + i, ct ? row + i : col + i);
      if (o.kind == 0) {
        float4* dst = reinterpret_cast<float4*>(static_cast<float*>(o.out) + base);
        dst[0] = make_float4(v[0], v[1], v[2], v[3]);
        dst[1] = make_float4(v[4], v[5], v[6], v[7]);
      } else {
        uint4 packed;
        unsigned* w = reinterpret_cast<unsigned*>(&packed);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          if (o.kind == 1) {
            const __nv_bfloat162 pair = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
            w[i] = *reinterpret_cast<const unsigned*>(&pair);
          } else {
            const __half2 pair = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
            w[i] = *reinterpret_cast<const unsigned*>(&pair);
          }
        }
        *reinterpret_cast<uint4*>(static_cast<unsigned short*>(o.out) + base) = packed;
      }
    } else {
      for (int i = 0; i < 8 && i < fast_left; ++i) {
        NmFinish(o, ct ? row + i : row, ct ? col : col + i, src[i]);
      }
    }
  }
}

// Writes the CTA's tile as split blockIdx.z's f32 partial (p.o.partial
// set), each thread its fragment's pairs, for LaunchNmTcFinish to reduce.
template <int BN>
__device__ __forceinline__ void EmitPartialTile(const Params& p, const float* acc, i64 row0, i64 n0,
                                                int r_lo, int tq) {
#pragma unroll
  for (int j = 0; j < BN / 8; ++j)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      NmEmitPair(p.o, blockIdx.z, row0 + r_lo + h * 8, n0 + j * 8 + tq * 2, acc[4 * j + 2 * h],
                 acc[4 * j + 2 * h + 1]);
    }
}

// Whether a launch of tile `t` with `splits` k-splits is well formed for both
// kernels: 1 to 65535 splits, partials when split, a grid below 2^31 CTAs.
inline bool LaunchShapeOk(const NmTcProblem& pr, const NmWgTile& t, int splits,
                          const float* partial) {
  return splits >= 1 && splits <= 65535 && (splits == 1 || partial != nullptr) &&
         ((pr.m + t.bm - 1) / t.bm) * ((pr.n + t.bn - 1) / t.bn) <= (1ll << 31) - 1;
}

inline Params ParamsOf(const NmTcProblem& pr, int bm, int bn, int splits, float* partial) {
  Params p{};
  p.a = static_cast<const u16*>(pr.a_values);
  p.meta = reinterpret_cast<const unsigned*>(pr.meta);
  p.b = static_cast<const u16*>(pr.b);
  p.o = NmOutOf(pr, splits > 1 ? partial : nullptr);
  p.m = pr.m;
  p.n = pr.n;
  p.k = pr.k;
  p.ldb = pr.ldb;
  p.words = (pr.k / 4 + 7) / 8;
  const i64 k_tiles = (pr.k + kNmWgKTile - 1) / kNmWgKTile;
  p.k_tiles_per_split = static_cast<int>((k_tiles + splits - 1) / splits);
  p.m_tiles = static_cast<int>((pr.m + bm - 1) / bm);
  p.n_tiles = static_cast<int>((pr.n + bn - 1) / bn);
  auto aligned16 = [](const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; };
  p.a_vec16 = pr.k % 16 == 0 && aligned16(pr.a_values);
  p.b_vec16 = pr.ldb % 8 == 0 && pr.k % 8 == 0 && aligned16(pr.b);
  return p;
}

}  // namespace wg
}  // namespace sparsed::cuda::kernels
