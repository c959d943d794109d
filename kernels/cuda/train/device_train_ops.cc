// Host side of the device training primitives: shapes, temporaries and
// launches (the kernels are in train_kernels.h).
#include "train/device_train_ops.h"

#include <algorithm>
#include <cmath>

#include "cuda_check.h"
#include "format/hub.h"
#include "sparsed/str_cat.h"
#include "train/train_kernels.h"
#include "util_kernels.h"

namespace sparsed::cuda {
namespace {

static_assert(train::kOptimizerSgd == static_cast<int>(OptimizerKind::kSgd));
static_assert(train::kOptimizerAdam == static_cast<int>(OptimizerKind::kAdam));
static_assert(train::kOptimizerAdamW == static_cast<int>(OptimizerKind::kAdamW));
static_assert(train::kTopKLargest == static_cast<int>(TopKOrder::kLargest));
static_assert(train::kTopKLargestMagnitude == static_cast<int>(TopKOrder::kLargestMagnitude));
static_assert(train::kTopKSmallestMagnitude == static_cast<int>(TopKOrder::kSmallestMagnitude));

const float* F32(const Tensor& t) { return t.data<float>("values").data(); }
float* F32(Tensor& t) { return t.data<float>("values").data(); }

// A new dense f32 tensor of `shape` on ctx's device, NaN-filled with poison.
absl::StatusOr<Tensor> NewDense(std::vector<int64_t> shape, bool poison, const ExecContext& ctx) {
  ASSIGN_OR_RETURN(Tensor out,
                   Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, std::move(shape), 0},
                                    Device::Cuda(ctx.device)));
  if (poison && out.bytes() > 0) {
    // 0xffffffff is a NaN.
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(F32(out), 0xff, out.bytes(), ctx.stream),
                         "cudaMemsetAsync(poison)");
  }
  return out;
}

// Row-major [cols, rows] copy of a row-major [rows, cols] f32 matrix.
absl::StatusOr<const float*> Transposed(const float* in, int64_t rows, int64_t cols,
                                        const ExecContext& ctx, Workspace& ws) {
  ASSIGN_OR_RETURN(float* out, ws.AllocArray<float>(std::max<int64_t>(rows * cols, 1)));
  CUDA_RETURN_IF_ERROR(kernels::LaunchTranspose(in, out, rows, cols, 4, ctx.stream),
                       "transpose launch");
  return static_cast<const float*>(out);
}

}  // namespace

absl::StatusOr<Tensor> DeviceSddmm(const SddmmArgs& args, bool poison, const ExecContext& ctx,
                                   Workspace& ws) {
  const Tensor& a = *args.a;
  const Tensor& b = *args.b;
  const TensorDesc& pd = args.pattern->desc();
  const auto& as = a.desc().shape;
  const auto& bs = b.desc().shape;
  const int64_t k = args.transpose_a ? as[0] : as[1];
  ASSIGN_OR_RETURN(Tensor out, NewDense({pd.nnz}, poison, ctx));
  if (pd.nnz == 0) return out;
  // The kernel reads op(A) [m, k] and op(B)ᵀ [n, k] along k: operands stored
  // the other way round are transposed into the workspace first.
  const float* a_rows = F32(a);
  if (args.transpose_a) {
    ASSIGN_OR_RETURN(a_rows, Transposed(F32(a), as[0], as[1], ctx, ws));
  }
  const float* bt_rows = F32(b);
  if (!args.transpose_b) {
    ASSIGN_OR_RETURN(bt_rows, Transposed(F32(b), bs[0], bs[1], ctx, ws));
  }
  train::SddmmProblem p;
  p.a = a_rows;
  p.lda = k;
  p.bt = bt_rows;
  p.ldb = k;
  ASSIGN_OR_RETURN(p.row_ptr, WideIndices(*args.pattern, "row_ptr", ctx, ws));
  ASSIGN_OR_RETURN(p.col_idx, WideIndices(*args.pattern, "col_idx", ctx, ws));
  p.m = pd.rows();
  p.nnz = pd.nnz;
  p.k = k;
  p.alpha = args.alpha;
  p.beta = args.beta;
  p.c = args.beta != 0.0f ? F32(*args.c) : nullptr;
  p.out = F32(out);
  CUDA_RETURN_IF_ERROR(train::LaunchSddmm(p, ctx.num_sms, ctx.stream), "sddmm launch");
  return out;
}

absl::StatusOr<Tensor> DeviceDenseMatmul(const DenseMatmulArgs& args, bool poison,
                                         const ExecContext& ctx) {
  ASSIGN_OR_RETURN(std::vector<int64_t> shape, CheckDenseMatmul(args));
  const auto& as = args.a->desc().shape;
  const auto& bs = args.b->desc().shape;
  train::SgemmProblem p;
  p.a = F32(*args.a);
  p.lda = as[1];
  p.transpose_a = args.transpose_a;
  p.b = F32(*args.b);
  p.ldb = bs[1];
  p.transpose_b = args.transpose_b;
  p.row_begin = args.row_begin;
  p.rows = shape[0];
  p.n = shape[1];
  p.k = args.transpose_a ? as[0] : as[1];
  ASSIGN_OR_RETURN(Tensor out, NewDense(std::move(shape), poison, ctx));
  p.c = F32(out);
  CUDA_RETURN_IF_ERROR(train::LaunchSgemm(p, ctx.stream), "dense matmul launch");
  return out;
}

absl::Status DeviceOptimizerUpdate(const OptimizerUpdateArgs& args, const ExecContext& ctx) {
  const OptimizerHyper& h = args.hyper;
  train::OptimizerProblem p;
  p.kind = static_cast<int>(h.kind);
  p.lr = h.lr;
  p.momentum = h.momentum;
  p.nesterov = h.nesterov;
  p.weight_decay = h.weight_decay;
  p.beta1 = h.beta1;
  p.beta2 = h.beta2;
  p.eps = h.eps;
  p.grad_scale = args.grad_scale;
  const bool adam = h.kind != OptimizerKind::kSgd;
  if (adam) {
    const double step = static_cast<double>(args.step);
    p.bias1 = static_cast<float>(1.0 - std::pow(static_cast<double>(h.beta1), step));
    p.bias2 = static_cast<float>(1.0 - std::pow(static_cast<double>(h.beta2), step));
  }
  p.count = args.param->desc().shape[0];
  p.param = F32(*args.param);
  p.grad = F32(*args.grad);
  // Plain SGD ignores a state1 it was given.
  p.state1 = adam || h.momentum > 0.0f ? F32(*args.state1) : nullptr;
  p.state2 = adam ? F32(*args.state2) : nullptr;
  CUDA_RETURN_IF_ERROR(train::LaunchOptimizerUpdate(p, ctx.stream), "optimizer launch");
  return absl::OkStatus();
}

absl::StatusOr<TopKResult> DeviceTopK(const Tensor& scores, int64_t k, TopKOrder order,
                                      const ExecContext& ctx, Workspace& ws) {
  const int64_t n = scores.desc().shape[0];
  TopKResult result;
  if (n == 0) return result;
  ASSIGN_OR_RETURN(uint32_t * keys, ws.AllocArray<uint32_t>(n));
  ASSIGN_OR_RETURN(unsigned long long* nan_count, ws.AllocArray<unsigned long long>(1));
  CUDA_RETURN_IF_ERROR(cudaMemsetAsync(nan_count, 0, sizeof(unsigned long long), ctx.stream),
                       "cudaMemsetAsync");
  CUDA_RETURN_IF_ERROR(
      train::LaunchTopKKeys(F32(scores), n, static_cast<int>(order), keys, nan_count, ctx.stream),
      "top-k key launch");
  result.indices.resize(k);
  result.values.resize(k);
  if (k > 0) {
    ASSIGN_OR_RETURN(uint32_t * sorted_keys, ws.AllocArray<uint32_t>(n));
    ASSIGN_OR_RETURN(int64_t * index, ws.AllocArray<int64_t>(n));
    ASSIGN_OR_RETURN(int64_t * sorted_index, ws.AllocArray<int64_t>(n));
    CUDA_RETURN_IF_ERROR(train::LaunchIota(index, n, ctx.stream), "iota launch");
    size_t temp_bytes = 0;
    CUDA_RETURN_IF_ERROR(train::SortKeyIndexPairs(nullptr, temp_bytes, keys, sorted_keys, index,
                                                  sorted_index, n, ctx.stream),
                         "radix sort (size query)");
    ASSIGN_OR_RETURN(void* temp, ws.Alloc(std::max<int64_t>(static_cast<int64_t>(temp_bytes), 1)));
    CUDA_RETURN_IF_ERROR(train::SortKeyIndexPairs(temp, temp_bytes, keys, sorted_keys, index,
                                                  sorted_index, n, ctx.stream),
                         "radix sort");
    ASSIGN_OR_RETURN(float* values, ws.AllocArray<float>(k));
    CUDA_RETURN_IF_ERROR(train::LaunchGather(F32(scores), sorted_index, values, k, ctx.stream),
                         "gather launch");
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(result.indices.data(), sorted_index, k * sizeof(int64_t),
                                         cudaMemcpyDeviceToHost, ctx.stream),
                         "cudaMemcpyAsync(indices)");
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(result.values.data(), values, k * sizeof(float),
                                         cudaMemcpyDeviceToHost, ctx.stream),
                         "cudaMemcpyAsync(values)");
  }
  unsigned long long nans = 0;
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(&nans, nan_count, sizeof(nans), cudaMemcpyDeviceToHost, ctx.stream),
      "cudaMemcpyAsync(nan count)");
  RETURN_IF_ERROR(ws.Sync());
  if (nans != 0) {
    return absl::InvalidArgumentError(
        StrCat("scores holds ", nans, " NaN value(s); top-k needs every score ordered"));
  }
  return result;
}

absl::Status DeviceAxpby(float a, const Tensor& x, float b, Tensor& y, const ExecContext& ctx) {
  CUDA_RETURN_IF_ERROR(train::LaunchAxpby(a, F32(x), b, F32(y), y.desc().numel(), ctx.stream),
                       "axpby launch");
  return absl::OkStatus();
}

absl::StatusOr<Tensor> DeviceReluBackward(const Tensor& dy, const Tensor& y, bool poison,
                                          const ExecContext& ctx) {
  ASSIGN_OR_RETURN(Tensor dx, NewDense(dy.desc().shape, poison, ctx));
  CUDA_RETURN_IF_ERROR(
      train::LaunchReluBackward(F32(dy), F32(y), F32(dx), dy.desc().numel(), ctx.stream),
      "relu backward launch");
  return dx;
}

absl::StatusOr<Tensor> DeviceColumnSums(const Tensor& x, bool poison, const ExecContext& ctx,
                                        Workspace& ws) {
  const int64_t rows = x.desc().shape[0], cols = x.desc().shape[1];
  ASSIGN_OR_RETURN(Tensor out, NewDense({cols}, poison, ctx));
  const int64_t chunks = train::ColumnSumsChunks(rows, cols, ctx.num_sms);
  float* partial = nullptr;
  if (chunks > 1) {
    ASSIGN_OR_RETURN(partial, ws.AllocArray<float>(chunks * cols));
  }
  CUDA_RETURN_IF_ERROR(
      train::LaunchColumnSums(F32(x), rows, cols, partial, chunks, F32(out), ctx.stream),
      "column sums launch");
  return out;
}

absl::Status DeviceGrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin,
                                const ExecContext& ctx, Workspace& ws) {
  const int64_t rows = tile.desc().shape[0], cols = tile.desc().shape[1];
  if (rows == 0 || cols == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const int64_t* row_ptr, WideIndices(pattern, "row_ptr", ctx, ws));
  ASSIGN_OR_RETURN(const int64_t* col_idx, WideIndices(pattern, "col_idx", ctx, ws));
  CUDA_RETURN_IF_ERROR(
      train::LaunchGrowthScores(F32(tile), rows, cols, row_ptr, col_idx, row_begin, ctx.stream),
      "growth scores launch");
  return absl::OkStatus();
}

absl::StatusOr<Tensor> DeviceGatherOrZero(const Tensor& src, const std::vector<int64_t>& index,
                                          bool poison, const ExecContext& ctx, Workspace& ws) {
  const int64_t count = static_cast<int64_t>(index.size());
  ASSIGN_OR_RETURN(Tensor out, NewDense({count}, poison, ctx));
  if (count == 0) return out;
  ASSIGN_OR_RETURN(int64_t * device_index, ws.AllocArray<int64_t>(count));
  // The host vector outlives the synchronisation that ends the request.
  CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device_index, index.data(), count * sizeof(int64_t),
                                       cudaMemcpyHostToDevice, ctx.stream),
                       "cudaMemcpyAsync(index)");
  CUDA_RETURN_IF_ERROR(
      train::LaunchGatherOrZero(F32(src), device_index, F32(out), count, ctx.stream),
      "gather launch");
  return out;
}

}  // namespace sparsed::cuda
