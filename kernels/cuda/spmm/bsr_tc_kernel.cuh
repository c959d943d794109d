// BSR × dense on tensor cores: the source template that bsr_tc_generator.cc
// specialises and NVRTC compiles, after the text of epilogue.h and
// spmm/ptx_copy.cuh (no #include: NVRTC has no CUDA headers on the path);
// 16-bit values are raw bits, converted by PTX.
//
// Computes, for one CTA, a BM × BN tile of the product P = op(A) · op(B)
// (f32 accumulation, mma.sync m16n8k16), then the fused epilogue
//   out = min(relu?(alpha·P + beta·C_in + bias), clamp_max)
// stored as OUT_T (f32, bf16 or f16 bits), at out[i·ldc + j], or at
// out[j·ldc + i] when C_TRANS (a product computed transposed: X·Wᵀ as W·Xᵀ).
//
// The generator defines (all compile-time):
//   VAL_BF16 (1: bf16, 0: f16)   OUT_KIND (0 f32, 1 bf16, 2 f16)   IDX_T
//   R, CB        stored block rows and columns (multiples of 16)
//   A_TRANS      op(A) = Aᵀ: output rows are A's block columns, read through
//                the transposed block index (tptr/tblk/trow); blocks are read
//                transposed from shared memory by ldmatrix.trans
//   OBR, KBS     output block rows and k-block size (R, CB; CB, R if A_TRANS)
//   BM, BN       CTA tile (BM divides OBR)     WM, WN  warps along M and N
//   KT           k-tile per pipeline stage (a multiple of 16 dividing KBS)
//   STAGES       cp.async pipeline depth
//   B_NMAJOR     op(B) is stored [N][K] (ldb = row stride): Xᵀ of a row-major X
//   C_TRANS, HAS_BETA, HAS_BIAS, HAS_RELU, HAS_CLAMP
// Preconditions (checked by the variant): N % 8 == 0 for row-major B,
// K % 8 == 0 for n-major B, ldb a multiple of 8, 16-byte aligned operands.

#define WARP_M (BM / WM)
#define WARP_N (BN / WN)
#define MT (WARP_M / 16)
#define NT (WARP_N / 8)
#define THREADS (WM * WN * 32)
// Padded shared-memory rows (16 bytes of pad): ldmatrix rows of a warp then
// fall into distinct banks without a swizzle.
#define A_LD (A_TRANS ? BM + 8 : KT + 8)
#define A_ROWS (A_TRANS ? KT : BM)
#define B_LD (B_NMAJOR ? KT + 8 : BN + 8)
#define B_ROWS (B_NMAJOR ? BN : KT)
#define A_STAGE (A_ROWS * A_LD)
#define B_STAGE (B_ROWS * B_LD)

typedef unsigned short u16;
typedef long long i64;
using namespace sparsed::cuda::ptx;  // ptx_copy.cuh, prepended by the generator

__device__ __forceinline__ void Mma(float* d, const unsigned* a, const unsigned* b) {
#if VAL_BF16
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// Two f32 → two 16-bit values packed (lo = first), round to nearest even.
__device__ __forceinline__ unsigned Pack2(float lo, float hi) {
  unsigned r;
#if OUT_KIND == 1
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
#else
  asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
#endif
  return r;
}


__device__ __forceinline__ void StoreOne(void* out, i64 idx, float v) {
#if OUT_KIND == 0
  static_cast<float*>(out)[idx] = v;
#else
  static_cast<u16*>(out)[idx] = static_cast<u16>(Pack2(v, 0.0f) & 0xffffu);
#endif
}

// One k-tile (KT deep) of the A block and the matching rows of op(B) into
// stage buffers, asynchronously.
__device__ __forceinline__ void LoadTile(u16* as, u16* bs, const u16* __restrict__ a_vals,
                                         i64 blk, i64 kblock, int sub_k, int row_sub,
                                         const u16* __restrict__ b, i64 k, i64 n, i64 ldb,
                                         i64 n0) {
  const int tid = threadIdx.x;
  const u16* block = a_vals + blk * (i64)(R * CB);
  // A: BM × KT of the block (row-major R × CB), or KT × BM of it when A_TRANS.
  const int a_chunks_per_row = (A_TRANS ? BM : KT) / 8;
  for (int c = tid; c < A_ROWS * a_chunks_per_row; c += THREADS) {
    const int r = c / a_chunks_per_row, col = (c % a_chunks_per_row) * 8;
#if A_TRANS
    const u16* src = block + (i64)(sub_k * KT + r) * CB + row_sub + col;
#else
    const u16* src = block + (i64)(row_sub + r) * CB + sub_k * KT + col;
#endif
    CpAsync16(SmemAddr(as + r * A_LD + col), src, 16);
  }
  // B: the KT rows of op(B) from kbase, BN columns from n0.
  const i64 kbase = kblock * KBS + sub_k * KT;
#if B_NMAJOR
  for (int c = tid; c < BN * (KT / 8); c += THREADS) {
    const int nn = c / (KT / 8), kk = (c % (KT / 8)) * 8;
    const i64 gn = n0 + nn, gk = kbase + kk;
    const bool ok = gn < n && gk < k;
    CpAsync16(SmemAddr(bs + nn * B_LD + kk), ok ? b + gn * ldb + gk : b, ok ? 16 : 0);
  }
#else
  for (int c = tid; c < KT * (BN / 8); c += THREADS) {
    const int kk = c / (BN / 8), nn = (c % (BN / 8)) * 8;
    const i64 gk = kbase + kk, gn = n0 + nn;
    const bool ok = gk < k && gn < n;
    CpAsync16(SmemAddr(bs + kk * B_LD + nn), ok ? b + gk * ldb + gn : b, ok ? 16 : 0);
  }
#endif
}

extern "C" __global__ void __launch_bounds__(THREADS)
    bsr_spmm_tc(const u16* __restrict__ a_vals, const IDX_T* __restrict__ ptr,
                const IDX_T* __restrict__ blk_idx, const IDX_T* __restrict__ kblk_idx,
                const u16* __restrict__ b, void* __restrict__ out, const float* __restrict__ c_in,
                const float* __restrict__ bias, i64 m, i64 n, i64 k, i64 ldb, i64 ldc,
                float alpha, float beta, float clamp_max) {
  // ptr: per output block row, the range of its blocks; blk_idx: the block
  // id (A_TRANS) or nullptr (the position itself); kblk_idx: the k-block of
  // each (block_col_idx, or the block row when A_TRANS).
  extern __shared__ __align__(16) unsigned char smem_raw[];
  u16* a_smem = reinterpret_cast<u16*>(smem_raw);
  u16* b_smem = a_smem + STAGES * A_STAGE;

  const int subs = OBR / BM;
  const i64 obr = blockIdx.x / subs;
  const int row_sub = (blockIdx.x % subs) * BM;
  const i64 row0 = obr * OBR + row_sub;
  const i64 n0 = (i64)blockIdx.y * BN;
  const i64 first = ptr[obr], count = ptr[obr + 1] - first;
  const int ksteps = KBS / KT;
  const i64 tiles = count * ksteps;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / WN, wn = warp % WN;

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[i][j][q] = 0.0f;

  auto issue = [&](i64 t) {
    const i64 pos = first + t / ksteps;
    const i64 blk = A_TRANS ? (i64)blk_idx[pos] : pos;
    const int stage = (int)(t % STAGES);
    LoadTile(a_smem + stage * A_STAGE, b_smem + stage * B_STAGE, a_vals, blk, (i64)kblk_idx[pos],
             (int)(t % ksteps), row_sub, b, k, n, ldb, n0);
  };

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < tiles) issue(s);
    CpAsyncCommit();
  }

  for (i64 t = 0; t < tiles; ++t) {
    CpAsyncWait<STAGES - 2>();
    __syncthreads();
    if (t + STAGES - 1 < tiles) issue(t + STAGES - 1);
    CpAsyncCommit();

    const int stage = (int)(t % STAGES);
    const u16* as = a_smem + stage * A_STAGE;
    const u16* bs = b_smem + stage * B_STAGE;
#pragma unroll
    for (int kk = 0; kk < KT; kk += 16) {
      unsigned af[MT][4];
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        const int mbase = wm * WARP_M + i * 16;
#if A_TRANS
        // Stored [k][m]: the transposed 8×8 pieces are the A fragment.
        const int kr = kk + (lane / 16) * 8 + (lane % 8), mc = mbase + ((lane / 8) % 2) * 8;
        Ldsm4T(SmemAddr(as + kr * A_LD + mc), af[i]);
#else
        const int mr = mbase + (lane % 16), kc = kk + (lane / 16) * 8;
        Ldsm4(SmemAddr(as + mr * A_LD + kc), af[i]);
#endif
      }
      unsigned bf[NT][2];
#pragma unroll
      for (int j = 0; j < NT; j += 2) {
        const int nbase = wn * WARP_N + j * 8;
        unsigned r[4];
#if B_NMAJOR
        const int nr = nbase + (lane / 16) * 8 + (lane % 8), kc = kk + ((lane / 8) % 2) * 8;
        Ldsm4(SmemAddr(bs + nr * B_LD + kc), r);
#else
        const int kr = kk + ((lane / 8) % 2) * 8 + (lane % 8), nc = nbase + (lane / 16) * 8;
        Ldsm4T(SmemAddr(bs + kr * B_LD + nc), r);
#endif
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NT; ++j) Mma(acc[i][j], af[i], bf[j]);
    }
  }
  CpAsyncWait<0>();

  // Epilogue straight from the accumulators: thread (g, t) of a warp holds
  // rows g and g + 8, columns 2t and 2t + 1 of each 16 × 8 tile. The steps
  // left out of the specialisation are compile-time no-ops.
  sparsed::cuda::Epilogue ep;
  ep.alpha = alpha;
  ep.beta = HAS_BETA ? beta : 0.0f;
  ep.c_in = c_in;
  ep.bias = HAS_BIAS ? bias : nullptr;
  ep.relu = HAS_RELU;
  ep.has_clamp = HAS_CLAMP;
  ep.clamp_max = clamp_max;
  const int g = lane / 4, tq = lane % 4;
#pragma unroll
  for (int i = 0; i < MT; ++i) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const i64 row = row0 + wm * WARP_M + i * 16 + g + h * 8;
      if (row >= m) continue;
#pragma unroll
      for (int j = 0; j < NT; ++j) {
        const i64 col = n0 + wn * WARP_N + j * 8 + tq * 2;
        if (col >= n) continue;
        const float p0 = acc[i][j][2 * h], p1 = acc[i][j][2 * h + 1];
#if C_TRANS
        // out is [n][m]: element (row, col) of the product goes to out[col][row].
        const i64 i0 = col * ldc + row;
        StoreOne(out, i0, FinishEpilogue(ep, p0, i0, row));
        if (col + 1 < n) {
          const i64 i1 = i0 + ldc;
          StoreOne(out, i1, FinishEpilogue(ep, p1, i1, row));
        }
#else
        const i64 i0 = row * ldc + col;
        const float v0 = FinishEpilogue(ep, p0, i0, col);
        if (col + 1 < n) {
          const float v1 = FinishEpilogue(ep, p1, i0 + 1, col + 1);
#if OUT_KIND == 0
          *reinterpret_cast<float2*>(static_cast<float*>(out) + i0) = make_float2(v0, v1);
#else
          *reinterpret_cast<unsigned*>(static_cast<u16*>(out) + i0) = Pack2(v0, v1);
#endif
        } else {
          StoreOne(out, i0, v0);
        }
#endif
      }
    }
  }
}
