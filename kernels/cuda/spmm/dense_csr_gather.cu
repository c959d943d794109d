// The row-gather kernel for D·Sᵀ (dense_csr_gather.h). Cost model for the
// Sparse DNN layer (m = 1200, k = n = 1024, 32 entries a row): every product
// reads one float of D from shared memory, so the kernel is bound by the
// SM's shared-memory return path (one 32-lane register a clock). A lane
// therefore takes V = 4 tokens (one 16-byte read per entry feeds 4 FMAs) and
// an entry's (column, value) is read once per 4 products, as a broadcast
// from the per-warp list (int4/float4 reads: 4 entries per 2 reads).
// TB = 32 tokens is the narrowest tile whose column of D fills all 32 banks,
// so lane groups on different rows never conflict; it also keeps D's
// re-staging (once per tile a CTA's slice touches) and S's re-reads (once
// per token tile) both small on 132 SMs.
#include <cooperative_groups.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>

#include "dynamic_smem.h"
#include "spmm/dense_csr_gather.h"

namespace sparsed::cuda::kernels {
namespace cg = cooperative_groups;
namespace {

constexpr int kMaxChunks = 16;  // column chunks of D (each rescans every row of S)
constexpr int kMinRowsPerCta = 32;

struct GatherConfig {
  const char* name;
  int tb;       // tokens per tile (32 or 64)
  int v;        // tokens per lane (4: a float4 of D per entry)
  int warps;    // per CTA
  int rq;       // row groups per warp in one batch (batch = warps · rq · groups rows of S)
  int cluster;  // CTAs of a cluster sharing one staged tile (1 or 2)
};

constexpr int Groups(const GatherConfig& c) { return 32 * c.v / c.tb; }  // rows a warp runs at once
constexpr int Batch(const GatherConfig& c) { return c.warps * c.rq * Groups(c); }

// t32_w8: the default. t32_w16: twice the warps (latency hiding, same
// tile). t32_w8_x2: clusters of two CTAs on the same token tile; each loads
// half of the tile from L2 and stores it into both CTAs' shared memory
// (distributed shared memory), halving D's L2 traffic, which at the start
// of the kernel (every SM staging 128 KB at once) is bound by L2 bandwidth;
// the two split each pair of row batches. t64_w8: 64 tokens a tile, halving
// S's re-reads (k = 1024: two column chunks).
constexpr GatherConfig kConfigs[kDenseGatherConfigs] = {
    {"t32_w8_b256", 32, 4, 8, 8, 1},
    {"t32_w16_b256", 32, 4, 16, 4, 1},
    {"t32_w8_b256_x2", 32, 4, 8, 8, 2},
    {"t64_w8_b128", 64, 4, 8, 8, 1},
};

struct GatherArgs {
  const float* d;
  const int32_t* row_ptr;
  const int32_t* col_idx;
  const float* values;
  float* c;
  int64_t m, n;
  int k;
  int kc;             // columns of a chunk (a multiple of 4; the last chunk may be narrower)
  int chunks;         // ceil(k / kc)
  bool vec4;          // D rows 16-byte aligned (k % 4 == 0, d aligned): float4 staging
  int64_t units;      // token tiles · n: (tile, row of S) pairs in order
  int64_t per_slice;  // of those, a CTA's (a cluster's) slice
  Epilogue e;
};

// Byte offset in Ds of column kk's row with its swizzle term folded in:
// token t of the row lives at float kk·TB + (t ^ 4·((kk >> 2) & 7)), so a
// lane reading tokens [tok, tok + V) reads at (RowOffset(kk) ^ 4·tok). The
// XOR only permutes 16-byte blocks within the row (TB >= 32 > 4·7).
template <int TB>
__device__ __forceinline__ int RowOffset(int kk) {
  return (kk * TB + ((kk >> 2) & 7) * 4) * 4;
}

// Stages columns [c0, c0 + kcw) of tokens [t0, t0 + tm) of D into Ds (and,
// in a cluster of two, into the peer's Ds: each CTA takes every other block
// of 32 items). Item order: 8 consecutive float4 columns of a token, then
// the next token, so a warp reads 4 tokens × 128 contiguous bytes and its
// transposing stores (token t, column kk) hit 32 different banks thanks to
// the swizzle. A thread keeps kInFlight loads outstanding (the staging is
// latency bound otherwise). Tokens past tm are not staged: their sums are
// computed from stale values and never stored.
template <int TB, int kThreads, int kCluster>
__device__ __forceinline__ void StageChunk(const GatherArgs& a, float* ds, float* peer, int rank,
                                           int64_t t0, int tm, int c0, int kcw) {
  constexpr int kInFlight = 8;
  const float* src = a.d + t0 * a.k + c0;
  // This CTA's share of the items (a multiple of 32 in all): virtual item
  // iv is item i.
  auto item = [&](int iv) { return (iv / 32 * kCluster + rank) * 32 + iv % 32; };
  auto put = [&](int at, float x) {
    ds[at] = x;
    if constexpr (kCluster > 1) peer[at] = x;
  };
  if (a.vec4) {
    const int items = (kcw + 31) / 32 * 8 * TB;
    const int mine = (items / 32 + kCluster - 1) / kCluster * 32;
    for (int i0 = threadIdx.x; i0 < mine; i0 += kInFlight * kThreads) {
      float4 v[kInFlight];
#pragma unroll
      for (int r = 0; r < kInFlight; ++r) {
        const int i = item(i0 + r * kThreads);
        const int kq = i / (8 * TB) * 8 + i % 8, t = i / 8 % TB;
        if (i < items && 4 * kq < kcw && t < tm) {
          v[r] = __ldg(reinterpret_cast<const float4*>(src + int64_t{t} * a.k) + kq);
        }
      }
#pragma unroll
      for (int r = 0; r < kInFlight; ++r) {
        const int i = item(i0 + r * kThreads);
        const int kq = i / (8 * TB) * 8 + i % 8, t = i / 8 % TB;
        if (i < items && 4 * kq < kcw && t < tm) {
          const int at = 4 * kq * TB + (t ^ (kq % 8) * 4);
          put(at, v[r].x);
          put(at + TB, v[r].y);
          put(at + 2 * TB, v[r].z);
          put(at + 3 * TB, v[r].w);
        }
      }
    }
  } else {
    // Scalar: 32 consecutive columns of a token per warp (coalesced reads;
    // the stores are 4-way conflicted, a fallback for odd k only).
    const int items = (kcw + 31) / 32 * 32 * TB;
    const int mine = (items / 32 + kCluster - 1) / kCluster * 32;
    for (int i0 = threadIdx.x; i0 < mine; i0 += kInFlight * kThreads) {
      float v[kInFlight];
#pragma unroll
      for (int r = 0; r < kInFlight; ++r) {
        const int i = item(i0 + r * kThreads);
        const int kk = i / (32 * TB) * 32 + i % 32, t = i / 32 % TB;
        if (i < items && kk < kcw && t < tm) v[r] = __ldg(src + int64_t{t} * a.k + kk);
      }
#pragma unroll
      for (int r = 0; r < kInFlight; ++r) {
        const int i = item(i0 + r * kThreads);
        const int kk = i / (32 * TB) * 32 + i % 32, t = i / 32 % TB;
        if (i < items && kk < kcw && t < tm) put(kk * TB + (t ^ ((kk >> 2) & 7) * 4), v[r]);
      }
    }
  }
}

// The rows of one row group (G consecutive rows of S) and this lane's entry
// of each row's current window of 32.
template <int G>
struct RowWindow {
  int start[G], len[G];
  int col[G];  // -1: the window has no entry for this lane
  float val[G];
};

template <int G>
__device__ __forceinline__ void LoadEntries(const GatherArgs& a, RowWindow<G>& w, int window,
                                            int lane) {
#pragma unroll
  for (int r = 0; r < G; ++r) {
    const int x = window * 32 + lane;
    w.col[r] = -1;
    w.val[r] = 0.0f;
    if (x < w.len[r]) {
      w.col[r] = __ldg(a.col_idx + w.start[r] + x);
      w.val[r] = __ldg(a.values + w.start[r] + x);
    }
  }
}

// rp: lane l <= G holds row_ptr of the group's row l (clamped to the
// slice's end, so rows past it are empty).
template <int G>
__device__ __forceinline__ void LoadHead(const GatherArgs& a, RowWindow<G>& w, int rp, int lane) {
#pragma unroll
  for (int r = 0; r < G; ++r) {
    w.start[r] = __shfl_sync(0xffffffffu, rp, r);
    w.len[r] = __shfl_sync(0xffffffffu, rp, r + 1) - w.start[r];
  }
  LoadEntries(a, w, 0, lane);
}

__device__ __forceinline__ void Accumulate(float (&acc)[4], const float* ds, int offset, float v) {
  const float4 x = *reinterpret_cast<const float4*>(reinterpret_cast<const char*>(ds) + offset);
  acc[0] = fmaf(v, x.x, acc[0]);
  acc[1] = fmaf(v, x.y, acc[1]);
  acc[2] = fmaf(v, x.z, acc[2]);
  acc[3] = fmaf(v, x.w, acc[3]);
}

// Shared memory (dynamic): Ds [kc][TB], Cs [TB][batch + 1] (odd stride:
// the per-lane stores of V tokens of G rows hit distinct banks), then per
// warp the entry list of its G rows: byte offsets [G][32], values [G][32].
template <int TB, int V, int W, int RQ, int kCluster>
__global__ void __launch_bounds__(W * 32, 512 / (W * 32)) DenseCsrGatherKernel(const GatherArgs a) {
  constexpr int kThreads = W * 32;
  constexpr int kL = TB / V;   // lanes of a row group
  constexpr int kG = 32 / kL;  // row groups (rows of S) a warp runs at once
  constexpr int kBatch = W * RQ * kG;
  constexpr int kCs = kBatch + 1;
  static_assert((TB == 32 || TB == 64) && V == 4);
  static_assert(kThreads == 256 || kThreads == 512);
  static_assert(kCluster == 1 || kCluster == 2);

  extern __shared__ float4 smem4[];
  float* ds = reinterpret_cast<float*>(smem4);
  float* cs = ds + a.kc * TB;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  int* list_off = reinterpret_cast<int*>(cs + TB * kCs) + warp * kG * 64;
  float* list_val = reinterpret_cast<float*>(list_off + kG * 32);
  const int g = lane / kL, tok = lane % kL * V;
  const int lane_x = tok * 4;  // this lane's XOR into a row offset (bytes)
  const unsigned below = (1u << lane) - 1;
  int rank = 0;
  float* peer = nullptr;  // the other CTA's Ds (distributed shared memory)
  if constexpr (kCluster > 1) {
    cg::cluster_group cluster = cg::this_cluster();
    rank = static_cast<int>(cluster.block_rank());
    peer = cluster.map_shared_rank(ds, rank ^ 1);
  }
  // Stages a chunk. Alone: every warp is past the products that read Ds
  // (the caller's barrier), and the caller's next barrier publishes it. In
  // a cluster the peer writes our Ds too: both CTAs meet before (the peer
  // done reading its Ds, and running) and after (both halves landed).
  auto stage = [&](int64_t t0, int tm, int c0, int kcw) {
    if constexpr (kCluster > 1) cg::this_cluster().sync();
    StageChunk<TB, kThreads, kCluster>(a, ds, peer, rank, t0, tm, c0, kcw);
    if constexpr (kCluster > 1) cg::this_cluster().sync();
  };

  // The slice: CTA (cluster) s takes units [s·per_slice, (s + 1)·per_slice).
  const int64_t begin = static_cast<int64_t>(blockIdx.x / kCluster) * a.per_slice;
  const int64_t end = min(a.units, begin + a.per_slice);
  for (int64_t cur = begin; cur < end;) {
    // A segment: token tile `tile`, rows [ja, jb) of S.
    const int64_t tile = cur / a.n, ja = cur - tile * a.n;
    const int64_t jb = min(a.n, ja + (end - cur));
    cur += jb - ja;
    const int64_t t0 = tile * TB;
    const int tm = static_cast<int>(min(int64_t{TB}, a.m - t0));
    // One chunk: staged once per segment (every warp finished the previous
    // segment's products before the barrier ahead of its last read-out).
    if (a.chunks == 1) stage(t0, tm, 0, a.k);

    // Batches of kBatch rows; a cluster's CTAs split each step of
    // kCluster·kBatch rows evenly (both run every step, for the shared
    // stagings, with or without rows).
    for (int64_t js = ja; js < jb; js += kCluster * kBatch) {
      const int64_t span = min(int64_t{kCluster * kBatch}, jb - js);
      const int64_t share = (span + kCluster - 1) / kCluster;  // <= kBatch
      const int64_t j0 = js + min(rank * share, span), j1 = js + min((rank + 1) * share, span);
      __syncthreads();                  // the staging visible; Cs free again
      const int units = a.chunks * RQ;  // (chunk, row group) in order
      auto row_ptrs = [&](int u) {
        const int64_t jq = j0 + static_cast<int64_t>(u % RQ * W + warp) * kG;
        return lane <= kG ? __ldg(a.row_ptr + min(jq + lane, j1)) : 0;
      };
      // Software pipeline: the next unit's first window is in flight while
      // this one runs, and the one after's row pointers.
      RowWindow<kG> next;
      LoadHead(a, next, row_ptrs(0), lane);
      int rp_next = units > 1 ? row_ptrs(1) : 0;
      for (int u = 0; u < units; ++u) {
        const int ci = u / RQ, q = u % RQ;
        const int c0 = ci * a.kc, kcw = min(a.kc, a.k - c0);
        if (a.chunks > 1 && q == 0) {
          if (ci > 0) __syncthreads();  // every warp done with the previous chunk
          stage(t0, tm, c0, kcw);
          __syncthreads();
        }
        RowWindow<kG> w = next;
        if (u + 1 < units) {
          LoadHead(a, next, rp_next, lane);
          if (u + 2 < units) rp_next = row_ptrs(u + 2);
        }
        float acc[V];
#pragma unroll
        for (int i = 0; i < V; ++i) acc[i] = 0.0f;
        int most = 0;
#pragma unroll
        for (int r = 0; r < kG; ++r) most = max(most, w.len[r]);
        for (int window = 0; window * 32 < most; ++window) {
          if (window > 0) LoadEntries(a, w, window, lane);
          // Each row's entries in this chunk, compacted in stored order.
          // The rows of a warp step together to the longest count; a lane
          // past its own row's count is predicated off, so its 16-byte
          // read costs no shared-memory bandwidth.
          int steps = 0, mine = 0;
#pragma unroll
          for (int r = 0; r < kG; ++r) {
            const bool keep = static_cast<unsigned>(w.col[r] - c0) < static_cast<unsigned>(kcw);
            const unsigned mask = __ballot_sync(0xffffffffu, keep);
            const int count = __popc(mask);
            if (keep) {
              const int pos = __popc(mask & below);
              list_off[r * 32 + pos] = RowOffset<TB>(w.col[r] - c0);
              list_val[r * 32 + pos] = w.val[r];
            }
            steps = max(steps, count);
            if (r == g) mine = count;
          }
          __syncwarp();
          const int4* offs = reinterpret_cast<const int4*>(list_off + g * 32);
          const float4* vals = reinterpret_cast<const float4*>(list_val + g * 32);
#pragma unroll 2
          for (int s = 0; s < steps; s += 4) {
            if (s < mine) {
              const int4 o = offs[s / 4];
              const float4 v = vals[s / 4];
              Accumulate(acc, ds, o.x ^ lane_x, v.x);
              if (s + 1 < mine) Accumulate(acc, ds, o.y ^ lane_x, v.y);
              if (s + 2 < mine) Accumulate(acc, ds, o.z ^ lane_x, v.z);
              if (s + 3 < mine) Accumulate(acc, ds, o.w ^ lane_x, v.w);
            }
          }
          __syncwarp();  // the list is rewritten next
        }
        // Cs[token][row of the batch]: this lane alone owns these elements
        // across chunks, so the later chunks add without a barrier.
        float* out = cs + tok * kCs + (q * W + warp) * kG + g;
#pragma unroll
        for (int i = 0; i < V; ++i) out[i * kCs] = ci == 0 ? acc[i] : out[i * kCs] + acc[i];
      }
      __syncthreads();
      // Read-out: a warp per token, coalesced along j, epilogue fused.
      const int width = static_cast<int>(j1 - j0);
      for (int t = warp; t < tm; t += W) {
        const int64_t row = (t0 + t) * a.n + j0;
        for (int jj = lane; jj < width; jj += 32) {
          a.c[row + jj] = FinishEpilogue(a.e, cs[t * kCs + jj], row + jj, j0 + jj);
        }
      }
    }
  }
}

struct Plan {
  int kc = 0, chunks = 0;
  int smem = 0;  // bytes
};

// The chunking of k for `c` within `smem_limit` bytes of shared memory.
bool PlanFor(const GatherConfig& c, int64_t k, int smem_limit, Plan* p) {
  if (k < 1 || k > INT_MAX) return false;
  const int64_t fixed = int64_t{c.tb} * (Batch(c) + 1) * 4 + int64_t{c.warps} * Groups(c) * 64 * 4;
  int64_t fit = (smem_limit - fixed) / (int64_t{c.tb} * 4);  // rows of Ds
  fit = fit / 32 * 32;
  if (fit < 32) return false;
  const int64_t chunks = (k + fit - 1) / fit;
  if (chunks > kMaxChunks) return false;
  const int64_t kc = ((k + chunks - 1) / chunks + 3) / 4 * 4;  // <= fit (a multiple of 32)
  p->kc = static_cast<int>(kc);
  p->chunks = static_cast<int>(chunks);
  p->smem = static_cast<int>(kc * c.tb * 4 + fixed);
  return true;
}

struct DeviceLimits {
  int sms = 0, smem = 0;  // SMs; shared memory a block may opt in to (bytes)
};

// The current device's limits, queried once per device.
cudaError_t CurrentDeviceLimits(DeviceLimits* out) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int64_t> cached[kMaxDevices];  // sms << 32 | smem; 0: not yet
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (device >= 0 && device < kMaxDevices) {
    const int64_t v = cached[device].load(std::memory_order_acquire);
    if (v != 0) {
      out->sms = static_cast<int>(v >> 32);
      out->smem = static_cast<int>(v & 0xffffffff);
      return cudaSuccess;
    }
  }
  err = cudaDeviceGetAttribute(&out->sms, cudaDevAttrMultiProcessorCount, device);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&out->smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err != cudaSuccess) return err;
  if (out->sms < 1 || out->smem < 1) return cudaErrorInvalidValue;
  if (device >= 0 && device < kMaxDevices) {
    cached[device].store(int64_t{out->sms} << 32 | out->smem, std::memory_order_release);
  }
  return cudaSuccess;
}

// Co-resident CTAs (clusters) at a shared-memory size, remembered for the
// last (device, size) asked: device << 32 | smem << 12 | count.
template <auto kKernel>
cudaError_t ResidentSlots(int cluster, int threads, int smem, int sms, int* slots) {
  static std::atomic<int64_t> last{-1};
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  const int64_t key = int64_t{device} << 32 | int64_t{smem} << 12;
  const int64_t seen = last.load(std::memory_order_acquire);
  if (seen >= 0 && (seen & ~int64_t{0xfff}) == key) {
    *slots = static_cast<int>(seen & 0xfff);
    return cudaSuccess;
  }
  if (cluster == 1) {
    int per_sm = 0;
    err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, threads, smem);
    if (err != cudaSuccess) return err;
    *slots = per_sm * sms;
  } else {
    cudaLaunchConfig_t config = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = cluster;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    config.gridDim = dim3(cluster);
    config.blockDim = dim3(threads);
    config.dynamicSmemBytes = smem;
    config.attrs = attr;
    config.numAttrs = 1;
    err = cudaOccupancyMaxActiveClusters(slots, kKernel, &config);
    if (err != cudaSuccess) return err;
  }
  if (*slots < 1) return cudaErrorInvalidValue;
  if (device >= 0 && *slots < 0x1000) last.store(key | *slots, std::memory_order_release);
  return cudaSuccess;
}

template <int TB, int V, int W, int RQ, int kCluster>
cudaError_t LaunchTile(const DeviceLimits& limits, const Plan& plan, GatherArgs a,
                       cudaStream_t stream) {
  constexpr auto kKernel = DenseCsrGatherKernel<TB, V, W, RQ, kCluster>;
  cudaError_t err = EnsureDynamicSmem<kKernel>(limits.smem);
  if (err != cudaSuccess) return err;
  int slots = 0;
  err = ResidentSlots<kKernel>(kCluster, W * 32, plan.smem, limits.sms, &slots);
  if (err != cudaSuccess) return err;
  // A persistent grid: as many slices as fit at once, each of at least
  // kMinRowsPerCta rows a CTA.
  const int64_t want =
      (a.units + int64_t{kMinRowsPerCta} * kCluster - 1) / (int64_t{kMinRowsPerCta} * kCluster);
  const int64_t slices = std::max<int64_t>(1, std::min<int64_t>(slots, want));
  a.per_slice = (a.units + slices - 1) / slices;
  const int64_t grid = (a.units + a.per_slice - 1) / a.per_slice * kCluster;
  if (grid > INT_MAX) return cudaErrorInvalidValue;
  if constexpr (kCluster == 1) {
    kKernel<<<static_cast<unsigned>(grid), W * 32, plan.smem, stream>>>(a);
    return cudaGetLastError();
  } else {
    cudaLaunchConfig_t config = {};
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeClusterDimension;
    attr[0].val.clusterDim.x = kCluster;
    attr[0].val.clusterDim.y = 1;
    attr[0].val.clusterDim.z = 1;
    config.gridDim = dim3(static_cast<unsigned>(grid));
    config.blockDim = dim3(W * 32);
    config.dynamicSmemBytes = plan.smem;
    config.stream = stream;
    config.attrs = attr;
    config.numAttrs = 1;
    return cudaLaunchKernelEx(&config, kKernel, a);
  }
}

template <int I>
cudaError_t LaunchConfig(const DeviceLimits& limits, const Plan& plan, const GatherArgs& a,
                         cudaStream_t stream) {
  constexpr GatherConfig c = kConfigs[I];
  return LaunchTile<c.tb, c.v, c.warps, c.rq, c.cluster>(limits, plan, a, stream);
}

}  // namespace

const char* DenseGatherConfigName(int config) {
  return config >= 0 && config < kDenseGatherConfigs ? kConfigs[config].name : nullptr;
}

int ResolveDenseGatherConfig(int requested) {
  if (requested >= 0) return requested < kDenseGatherConfigs ? requested : -1;
  static const int from_env = [] {
    const char* s = std::getenv("SPARSED_DENSE_GATHER_CONFIG");
    if (s == nullptr || *s == '\0') return 0;
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    return *end == '\0' && v >= 0 && v < kDenseGatherConfigs ? static_cast<int>(v) : 0;
  }();
  return from_env;
}

int DenseCsrGatherRows(int64_t k, int config) {
  if (config < 0 || config >= kDenseGatherConfigs) return 0;
  DeviceLimits limits;
  if (CurrentDeviceLimits(&limits) != cudaSuccess) return 0;
  Plan plan;
  return PlanFor(kConfigs[config], k, limits.smem, &plan) ? kConfigs[config].tb : 0;
}

cudaError_t LaunchDenseCsrGather(int config, const float* d, int64_t m, int64_t k,
                                 const int32_t* row_ptr, const int32_t* col_idx,
                                 const float* values, int64_t n, const Epilogue& e, float* c,
                                 cudaStream_t stream) {
  if (config < 0 || config >= kDenseGatherConfigs || m < 0 || n < 0 || k < 1 || k > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  if (m == 0 || n == 0) return cudaSuccess;
  if (d == nullptr || row_ptr == nullptr || c == nullptr || n > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  const GatherConfig& cfg = kConfigs[config];
  const int64_t tiles = (m + cfg.tb - 1) / cfg.tb;
  // Element indices (t·k + kk, t·n + j) and the (tile, row) count in int64.
  if (m > INT64_MAX / std::max(k, n) || tiles > INT64_MAX / n) return cudaErrorInvalidValue;
  DeviceLimits limits;
  cudaError_t err = CurrentDeviceLimits(&limits);
  if (err != cudaSuccess) return err;
  Plan plan;
  if (!PlanFor(cfg, k, limits.smem, &plan)) return cudaErrorInvalidValue;
  GatherArgs a{};
  a.d = d;
  a.row_ptr = row_ptr;
  a.col_idx = col_idx;
  a.values = values;
  a.c = c;
  a.m = m;
  a.n = n;
  a.k = static_cast<int>(k);
  a.kc = plan.kc;
  a.chunks = plan.chunks;
  a.vec4 = k % 4 == 0 && reinterpret_cast<uintptr_t>(d) % 16 == 0;
  a.units = tiles * n;
  a.e = e;
  switch (config) {
    case 0:
      return LaunchConfig<0>(limits, plan, a, stream);
    case 1:
      return LaunchConfig<1>(limits, plan, a, stream);
    case 2:
      return LaunchConfig<2>(limits, plan, a, stream);
    case 3:
      return LaunchConfig<3>(limits, plan, a, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace sparsed::cuda::kernels
