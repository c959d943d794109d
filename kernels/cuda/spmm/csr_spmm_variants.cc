// Our CSR SpMM variants (kernels in csr_spmm_kernels.cu) and the registry.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "csr_spmm.h"
#include "csr_spmm_kernels.h"
#include "cuda_check.h"
#include "util_kernels.h"

namespace sparsed::cuda {

std::string_view ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kF16:
      return "f16";
    case ValueType::kBF16:
      return "bf16";
    default:
      return "f32";
  }
}

namespace {

absl::Status Launched(cudaError_t err, const char* what) { return CudaStatus(err, what); }

// A variant that needs no preparation: its plan is empty.
class PlanlessVariant : public CsrSpmmVariant {
 public:
  absl::StatusOr<Plan*> Prepare(const CsrSpmmProblem&, const ExecContext&,
                                Workspace&) const override {
    return nullptr;
  }
};

class RowSplit final : public PlanlessVariant {
 public:
  std::string_view name() const override { return "row_split"; }
  bool Supports(const CsrSpmmProblem&) const override { return true; }
  absl::Status Run(const CsrSpmmProblem& p, Plan*, const ExecContext& ctx) const override {
    return Launched(kernels::LaunchRowSplit(p, ctx.stream), "row_split launch");
  }
};

class WarpRow final : public PlanlessVariant {
 public:
  std::string_view name() const override { return "warp_row"; }
  bool Supports(const CsrSpmmProblem&) const override { return true; }
  absl::Status Run(const CsrSpmmProblem& p, Plan*, const ExecContext& ctx) const override {
    int lanes = 0, vectors = 0;
    kernels::PickWarpRowShape(p, &lanes, &vectors);
    return Launched(kernels::LaunchWarpRow(p, lanes, vectors, ctx.stream), "warp_row launch");
  }
};

class NnzSplit final : public PlanlessVariant {
 public:
  NnzSplit(std::string name, int lanes) : name_(std::move(name)), lanes_(lanes) {}
  std::string_view name() const override { return name_; }
  // Rows need about as many entries as lanes for the split to pay off.
  bool Supports(const CsrSpmmProblem& p) const override { return p.stats.mean >= lanes_ / 2.0; }
  absl::Status Run(const CsrSpmmProblem& p, Plan*, const ExecContext& ctx) const override {
    return Launched(kernels::LaunchNnzSplit(p, lanes_, ctx.stream), "nnz_split launch");
  }

 private:
  std::string name_;
  int lanes_;
};

class BlockRow final : public PlanlessVariant {
 public:
  std::string_view name() const override { return "smem_block_row"; }
  // For wide B: a block of 128 threads shares each row's entries.
  bool Supports(const CsrSpmmProblem& p) const override { return p.n >= 128; }
  absl::Status Run(const CsrSpmmProblem& p, Plan*, const ExecContext& ctx) const override {
    return Launched(kernels::LaunchBlockRow(p, ctx.stream), "smem_block_row launch");
  }
};

// warp_row for ordinary rows; rows much longer than the mean (power-law hubs,
// arrow matrices) are cut into segments, each its own sub-warp, and summed by
// a finishing pass. Segments are 32-256 non-zeros, short enough to give the
// long rows about 32 sub-warps per multiprocessor.
struct LongRowPlan : Plan {
  kernels::LongRowSplit split;
};

class WarpRowSplitLong final : public CsrSpmmVariant {
 public:
  static int64_t Threshold(const CsrSpmmProblem& p) {
    return std::max<int64_t>(128, static_cast<int64_t>(8 * p.stats.mean));
  }
  std::string_view name() const override { return "warp_row_split_long"; }
  bool Supports(const CsrSpmmProblem& p) const override { return p.stats.max_row > Threshold(p); }
  absl::StatusOr<Plan*> Prepare(const CsrSpmmProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    auto plan = std::make_unique<LongRowPlan>();
    kernels::LongRowSplit& split = plan->split;
    split.threshold = Threshold(p);
    // The segment table is built on the host from a copy of the row pointers.
    std::vector<int32_t> row_ptr(p.m + 1);
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(row_ptr.data(), p.row_ptr, (p.m + 1) * sizeof(int32_t),
                                         cudaMemcpyDeviceToHost, ctx.stream),
                         "cudaMemcpyAsync(row_ptr)");
    RETURN_IF_ERROR(ws.Sync());
    int64_t long_nnz = 0;
    for (int64_t r = 0; r < p.m; ++r) {
      const int64_t len = row_ptr[r + 1] - row_ptr[r];
      if (len > split.threshold) long_nnz += len;
    }
    const int64_t segment = std::clamp<int64_t>(
        std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(1, long_nnz / (ctx.num_sms * 32)))),
        32, 256);
    std::vector<int32_t> seg_begin, seg_end, long_rows, row_seg{0};
    for (int64_t r = 0; r < p.m; ++r) {
      if (row_ptr[r + 1] - row_ptr[r] <= split.threshold) continue;
      long_rows.push_back(static_cast<int32_t>(r));
      for (int64_t e = row_ptr[r]; e < row_ptr[r + 1]; e += segment) {
        seg_begin.push_back(static_cast<int32_t>(e));
        seg_end.push_back(static_cast<int32_t>(std::min<int64_t>(e + segment, row_ptr[r + 1])));
      }
      row_seg.push_back(static_cast<int32_t>(seg_begin.size()));
    }
    split.num_segs = static_cast<int64_t>(seg_begin.size());
    split.num_long = static_cast<int64_t>(long_rows.size());
    auto upload = [&](const std::vector<int32_t>& v) -> absl::StatusOr<const int32_t*> {
      ASSIGN_OR_RETURN(int32_t * d, ws.AllocArray<int32_t>(std::max<size_t>(v.size(), 1)));
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(d, v.data(), v.size() * sizeof(int32_t),
                                           cudaMemcpyHostToDevice, ctx.stream),
                           "cudaMemcpyAsync(segments)");
      return d;
    };
    ASSIGN_OR_RETURN(split.seg_begin, upload(seg_begin));
    ASSIGN_OR_RETURN(split.seg_end, upload(seg_end));
    ASSIGN_OR_RETURN(split.long_rows, upload(long_rows));
    ASSIGN_OR_RETURN(split.row_seg, upload(row_seg));
    ASSIGN_OR_RETURN(split.partials,
                     ws.AllocArray<float>(std::max<int64_t>(split.num_segs, 1) * p.n));
    RETURN_IF_ERROR(ws.Sync());  // the host vectors die here
    return ws.Keep(std::move(plan));
  }
  absl::Status Run(const CsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const override {
    int lanes = 0, vectors = 0;
    kernels::PickWarpRowShape(p, &lanes, &vectors);
    return Launched(kernels::LaunchWarpRow(p, lanes, vectors, ctx.stream,
                                           &static_cast<LongRowPlan*>(plan)->split),
                    "warp_row_split_long launch");
  }
};

struct NnzPlan : Plan {
  int64_t chunk = 0;
  float* partials = nullptr;
};

class NnzBalanced final : public CsrSpmmVariant {
 public:
  // `chunks_per_sm`: how many equal-nnz partitions per multiprocessor.
  NnzBalanced(std::string name, int chunks_per_sm)
      : name_(std::move(name)), chunks_per_sm_(chunks_per_sm) {}
  std::string_view name() const override { return name_; }
  bool Supports(const CsrSpmmProblem&) const override { return true; }
  absl::StatusOr<Plan*> Prepare(const CsrSpmmProblem& p, const ExecContext& ctx,
                                Workspace& ws) const override {
    auto plan = std::make_unique<NnzPlan>();
    const int64_t target = std::max<int64_t>(1, p.nnz / (int64_t{ctx.num_sms} * chunks_per_sm_));
    plan->chunk = std::clamp<int64_t>(std::bit_ceil(static_cast<uint64_t>(target)), 32, 16384);
    ASSIGN_OR_RETURN(plan->partials,
                     ws.AllocArray<float>(kernels::NnzBalancedPartialFloats(p, plan->chunk)));
    return ws.Keep(std::move(plan));
  }
  absl::Status Run(const CsrSpmmProblem& p, Plan* plan, const ExecContext& ctx) const override {
    auto* np = static_cast<NnzPlan*>(plan);
    int lanes = 0, vectors = 0;
    kernels::PickWarpRowShape(p, &lanes, &vectors);
    return Launched(kernels::LaunchNnzBalanced(p, np->chunk, lanes, np->partials, ctx.stream),
                    "nnz_balanced launch");
  }

 private:
  std::string name_;
  int chunks_per_sm_;
};

}  // namespace

std::vector<const CsrSpmmVariant*> CusparseSpmmVariants();  // cusparse_spmm.cc

const std::vector<const CsrSpmmVariant*>& CsrSpmmVariants() {
  static const RowSplit row_split;
  static const WarpRow warp_row;
  static const BlockRow block_row;
  static const WarpRowSplitLong warp_row_split_long;
  static const NnzSplit subwarp_nnz_split("subwarp_nnz_split", 8);
  static const NnzSplit warp_nnz_split("warp_nnz_split", 32);
  static const NnzBalanced nnz_balanced("nnz_balanced", 64);
  static const NnzBalanced nnz_balanced_fine("nnz_balanced_fine", 256);
  static const std::vector<const CsrSpmmVariant*> all = [] {
    std::vector<const CsrSpmmVariant*> v = {&row_split,    &warp_row,          &warp_row_split_long,
                                            &block_row,    &subwarp_nnz_split, &warp_nnz_split,
                                            &nnz_balanced, &nnz_balanced_fine};
    for (const CsrSpmmVariant* c : CusparseSpmmVariants()) v.push_back(c);
    return v;
  }();
  return all;
}

const CsrSpmmVariant* FindCsrSpmmVariant(std::string_view name) {
  for (const CsrSpmmVariant* v : CsrSpmmVariants()) {
    if (v->name() == name) return v;
  }
  return nullptr;
}

absl::StatusOr<RowStats> RowStatsOf(const int32_t* row_ptr, int64_t m, int64_t nnz,
                                    const ExecContext& ctx, Workspace& ws) {
  RowStats out;
  if (m == 0) return out;
  ASSIGN_OR_RETURN(void* raw, ws.Alloc(3 * 8));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(raw, 0, 3 * 8, ctx.stream), "cudaMemsetAsync");
  auto* stats = static_cast<long long*>(raw);
  auto* sum_sq = reinterpret_cast<double*>(stats + 2);
  CUDA_RETURN_IF_ERROR(kernels::LaunchRowStats(row_ptr, m, stats, sum_sq, ctx.stream),
                       "row statistics launch");
  long long host[3] = {};
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(host, raw, sizeof host, cudaMemcpyDeviceToHost, ctx.stream),
                       "cudaMemcpyAsync");
  RETURN_IF_ERROR(ws.Sync());
  double sq = 0;
  std::memcpy(&sq, &host[2], sizeof sq);
  out.max_row = host[0];
  out.empty_rows = host[1];
  out.mean = static_cast<double>(nnz) / static_cast<double>(m);
  out.stddev = std::sqrt(std::max(0.0, sq / static_cast<double>(m) - out.mean * out.mean));
  return out;
}

}  // namespace sparsed::cuda
