// The 2:4 tensor-core variants: one per compiled tile, mma.sp
// (nm_tc_kernels.cu, sm_80 on) and wgmma.sp (nm_wgmma_kernels_sm90a.cu,
// compute capability 9.0 only). Each splits k across CTAs when its tiles
// alone would not fill the GPU (decode-sized n), reducing the f32 partials
// in a second pass.
#include <algorithm>
#include <bit>
#include <cmath>
#include <memory>
#include <string>

#include "cuda_check.h"
#include "sparsed/str_cat.h"
#include "spmm/nm_decode.h"
#include "spmm/nm_tc_spmm.h"
#include "spmm/nm_wgmma_kernels.h"

namespace sparsed::cuda {
namespace {

int Log2Bucket(double x) { return x <= 1 ? 0 : static_cast<int>(std::ceil(std::log2(x))); }

struct SplitPlan : Plan {
  int splits = 1;
  float* partial = nullptr;
};

// Splits of k so that about two waves of bm × bn CTAs run, each split
// keeping at least four pipeline stages of k_stage.
int SplitsFor(const NmTcProblem& p, int bm, int bn, int k_stage, int num_sms) {
  const int64_t ctas = ((p.m + bm - 1) / bm) * ((p.n + bn - 1) / bn);
  const int64_t k_tiles = (p.k + k_stage - 1) / k_stage;
  const int64_t want = (2 * std::max(num_sms, 1) + ctas - 1) / ctas;
  return static_cast<int>(std::clamp<int64_t>(std::min(want, k_tiles / 4), 1, 32));
}

absl::StatusOr<Plan*> PrepareSplits(const NmTcProblem& p, int splits, Workspace& ws) {
  auto plan = std::make_unique<SplitPlan>();
  plan->splits = splits;
  if (plan->splits > 1) {
    ASSIGN_OR_RETURN(plan->partial, ws.AllocArray<float>(plan->splits * p.m * p.n));
  }
  return ws.Keep(std::move(plan));
}

absl::Status FinishSplits(const NmTcProblem& p, const SplitPlan& plan, const ExecContext& ctx) {
  if (plan.splits > 1) {
    CUDA_RETURN_IF_ERROR(kernels::LaunchNmTcFinish(p, plan.splits, plan.partial, ctx.stream),
                         "nm split-k reduction launch");
  }
  return absl::OkStatus();
}

class NmTensorCore final : public NmTcVariant {
 public:
  explicit NmTensorCore(kernels::NmTcTile tile)
      : tile_(tile),
        name_(StrCat("nm_tc_", tile.bm, "x", tile.bn, "x", kernels::NmTcKTile(tile))) {}
  std::string_view name() const override { return name_; }
  int min_arch() const override { return 80; }  // mma.sp, cp.async, ldmatrix

  bool Supports(const NmTcProblem& p) const override {
    if (p.type == ValueType::kF32 || p.k % 4 != 0 || p.m <= 0 || p.n <= 0 || p.k <= 0) {
      return false;
    }
    if ((p.n + tile_.bn - 1) / tile_.bn > 65535) return false;
    // A tile far wider than n only burns threads.
    return tile_.bn <= std::max<int64_t>(8, 2 * p.n);
  }

  absl::StatusOr<Plan*> Prepare(const NmTcProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    return PrepareSplits(
        p, SplitsFor(p, tile_.bm, tile_.bn, kernels::NmTcKTile(tile_), ctx.num_sms), ws);
  }

  absl::Status Run(const NmTcProblem& p, Plan* plan, const ExecContext& ctx) const override {
    const auto* sp = static_cast<const SplitPlan*>(plan);
    CUDA_RETURN_IF_ERROR(kernels::LaunchNmTc(p, tile_, sp->splits, sp->partial, ctx.stream),
                         "nm tensor-core launch");
    return FinishSplits(p, *sp, ctx);
  }

 private:
  kernels::NmTcTile tile_;
  std::string name_;
};

// Hopper's warpgroup sparse MMA, for prefill-sized products with the
// activation stored [n][k] (the F.linear shape): nm_wg_<bm>x<bn>_s<stages>w<wait>,
// or nm_wg_<bm>x<bn>_s<stages>[g<group>]ws[0][_c<cluster>] for the
// warp-specialised TMA kernel.
class NmWgmma final : public NmTcVariant {
 public:
  explicit NmWgmma(kernels::NmWgTile tile)
      : tile_(tile),
        name_(tile.ws
                  ? StrCat("nm_wg_", tile.bm, "x", tile.bn, "_s", tile.stages,
                           tile.group > 1 ? StrCat("g", tile.group) : "", "ws",
                           tile.wait == 0 ? "0" : "",
                           tile.cluster > 1 ? StrCat("_c", tile.cluster) : "")
                  : StrCat("nm_wg_", tile.bm, "x", tile.bn, "_s", tile.stages, "w", tile.wait)) {}
  std::string_view name() const override { return name_; }
  int min_arch() const override { return 90; }
  bool experimental() const override { return !tile_.verified; }

  bool Supports(const NmTcProblem& p) const override {
    return (tile_.ws ? kernels::NmWsSupports(p) : kernels::NmWgSupports(p)) &&
           tile_.bn <= std::max<int64_t>(64, 2 * p.n);
  }

  absl::StatusOr<Plan*> Prepare(const NmTcProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    // sm_90a code loads on compute capability 9.0 alone.
    if (ctx.arch != 90) {
      return absl::UnimplementedError(
          StrCat(name_, " needs compute capability 9.0, not ", ctx.arch));
    }
    return PrepareSplits(p, SplitsFor(p, tile_.bm, tile_.bn, kernels::kNmWgKTile, ctx.num_sms), ws);
  }

  absl::Status Run(const NmTcProblem& p, Plan* plan, const ExecContext& ctx) const override {
    const auto* sp = static_cast<const SplitPlan*>(plan);
    CUDA_RETURN_IF_ERROR(kernels::LaunchNmWg(p, tile_, sp->splits, sp->partial, ctx.stream),
                         "nm wgmma launch");
    return FinishSplits(p, *sp, ctx);
  }

 private:
  kernels::NmWgTile tile_;
  std::string name_;
};

// Decode-sized products on CUDA cores (nm_decode.h): nm_dec_t<T> takes up
// to T columns of P, one warp per row of A, no padding and no split-k
// (test_cuda_nm_spmm passed on an H100 for each).
class NmDecode final : public NmTcVariant {
 public:
  explicit NmDecode(int tokens) : tokens_(tokens), name_(StrCat("nm_dec_t", tokens)) {}
  std::string_view name() const override { return name_; }
  int min_arch() const override { return 80; }

  bool Supports(const NmTcProblem& p) const override {
    // A kernel for many more columns than n only repeats the weight walk.
    return kernels::NmDecodeSupports(p) && p.n <= tokens_ && p.n > tokens_ / 2;
  }

  absl::StatusOr<Plan*> Prepare(const NmTcProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    (void)ctx;
    return PrepareSplits(p, 1, ws);
  }

  absl::Status Run(const NmTcProblem& p, Plan* plan, const ExecContext& ctx) const override {
    (void)plan;
    CUDA_RETURN_IF_ERROR(kernels::LaunchNmDecode(p, tokens_, ctx.stream), "nm decode launch");
    return absl::OkStatus();
  }

 private:
  int tokens_;
  std::string name_;
};

const char* TypeName(ValueType t) {
  return t == ValueType::kF32 ? "f32" : t == ValueType::kF16 ? "f16" : "bf16";
}
const char* OutName(OutType t) {
  return t == OutType::kF32 ? "f32" : t == OutType::kF16 ? "f16" : "bf16";
}

}  // namespace

const std::vector<const NmTcVariant*>& NmTcVariants() {
  static const std::vector<std::unique_ptr<NmTcVariant>> owned = [] {
    std::vector<std::unique_ptr<NmTcVariant>> v;
    for (const kernels::NmWgTile& t : kernels::NmWgTiles()) {
      v.push_back(std::make_unique<NmWgmma>(t));
    }
    for (const kernels::NmTcTile& t : kernels::NmTcTiles()) {
      v.push_back(std::make_unique<NmTensorCore>(t));
    }
    for (int tokens : kernels::NmDecodeTokenCounts()) {
      v.push_back(std::make_unique<NmDecode>(tokens));
    }
    return v;
  }();
  static const std::vector<const NmTcVariant*> all = [] {
    std::vector<const NmTcVariant*> v;
    for (const auto& p : owned) v.push_back(p.get());
    return v;
  }();
  return all;
}

std::string NmTcTuneKey(const std::string& device_desc, const NmTcProblem& p) {
  return StrCat(device_desc, "|spmm|nm2:4|", TypeName(p.type), ">", OutName(p.out_type), "|",
                p.b_nmajor ? "T" : "N", p.c_trans ? "T" : "N", "|m2^",
                Log2Bucket(static_cast<double>(p.m)), "|k2^", Log2Bucket(static_cast<double>(p.k)),
                "|n", std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(p.n, 1))), "|",
                kNmTcVariantSetVersion);
}

}  // namespace sparsed::cuda
