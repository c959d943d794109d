// The CPU backend: the reference implementation of every op.
#include <algorithm>
#include <memory>
#include <thread>

#include "sparsed/backend.h"
#include "sparsed/cancel.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/prune.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"
#include "spmm_kernels.h"
#include "train_kernels.h"

namespace sparsed {
namespace {

absl::Status CheckOnHost(const Tensor* t, std::string_view field) {
  if (t != nullptr && !t->device().is_cpu()) {
    return absl::InvalidArgumentError(StrCat(field, " is on ", t->device().ToString(),
                                             " but the cpu backend needs host tensors"));
  }
  return absl::OkStatus();
}

template <class I>
cpu::CsrView<I> ViewOf(const Tensor& csr) {
  cpu::CsrView<I> v;
  v.rows = csr.desc().rows();
  v.cols = csr.desc().cols();
  v.row_ptr = csr.data<I>("row_ptr");
  v.col_idx = csr.data<I>("col_idx");
  v.values = csr.data<float>("values");
  return v;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int threads)
      : threads_(threads > 0
                     ? threads
                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {}

  std::string_view name() const override { return "cpu"; }
  Device device() const override { return Device::Cpu(); }

  absl::StatusOr<Tensor> Spmm(const SpmmArgs& args) override {
    ASSIGN_OR_RETURN(std::vector<int64_t> shape, CheckSpmm(args));
    // 16-bit operands are computed on exact f32 copies (f32 accumulation).
    std::vector<Tensor> upcast;
    upcast.reserve(4);
    SpmmArgs f32_args = args;
    for (const Tensor** t : {&f32_args.a, &f32_args.b, &f32_args.c, &f32_args.epilogue.bias}) {
      if (*t != nullptr && (*t)->desc().dtype != DType::kF32 && (*t)->device().is_cpu()) {
        ASSIGN_OR_RETURN(Tensor f, CastValues(**t, DType::kF32));
        upcast.push_back(std::move(f));
        *t = &upcast.back();
      }
    }
    // The result is computed in f32 (f64 accumulation), then rounded to
    // out_dtype (nearest even) after the epilogue.
    ASSIGN_OR_RETURN(Tensor out, SpmmF32(f32_args, shape));
    // The kernels stop early when the request is cancelled: incomplete then.
    RETURN_IF_ERROR(CancelStatus());
    if (args.out_dtype == DType::kF32) return out;
    return CastValues(out, args.out_dtype);
  }

  absl::StatusOr<Tensor> Convert(const Tensor& t, Format to,
                                 const ConvertOptions& options) override {
    RETURN_IF_ERROR(CheckOnHost(&t, "tensor"));
    return sparsed::Convert(t, to, options);
  }

  absl::StatusOr<Tensor> Transpose(const Tensor& t) override {
    RETURN_IF_ERROR(CheckOnHost(&t, "tensor"));
    return sparsed::Transpose(t);
  }

  absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& options) override {
    RETURN_IF_ERROR(CheckOnHost(&t, "tensor"));
    return sparsed::Prune(t, options);
  }

  // Training primitives: see train_kernels.h.
  absl::StatusOr<Tensor> Sddmm(const SddmmArgs& args) override {
    return cpu::Sddmm(args, threads_);
  }
  absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& args) override {
    return cpu::DenseMatmul(args, threads_);
  }
  absl::Status OptimizerUpdate(const OptimizerUpdateArgs& args) override {
    return cpu::OptimizerUpdate(args, threads_);
  }
  absl::StatusOr<TopKResult> TopK(const Tensor& scores, int64_t k, TopKOrder order) override {
    return cpu::TopK(scores, k, order);
  }
  absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y) override {
    return cpu::Axpby(a, x, b, y, threads_);
  }
  absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y) override {
    return cpu::ReluBackward(dy, y, threads_);
  }
  absl::StatusOr<Tensor> ColumnSums(const Tensor& x) override {
    return cpu::ColumnSums(x, threads_);
  }
  absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin) override {
    return cpu::GrowthScores(tile, pattern, row_begin, threads_);
  }
  absl::StatusOr<Tensor> GatherOrZero(const Tensor& src,
                                      const std::vector<int64_t>& index) override {
    return cpu::GatherOrZero(src, index);
  }

 private:
  absl::StatusOr<Tensor> SpmmF32(const SpmmArgs& args, const std::vector<int64_t>& shape) {
    RETURN_IF_ERROR(CheckOnHost(args.a, "a"));
    RETURN_IF_ERROR(CheckOnHost(args.b, "b"));
    RETURN_IF_ERROR(CheckOnHost(args.epilogue.bias, "epilogue.bias"));
    if (args.beta != 0.0f) RETURN_IF_ERROR(CheckOnHost(args.c, "c"));

    const bool a_sparse = IsSparse(args.a->format());
    const Tensor& sparse = a_sparse ? *args.a : *args.b;
    const Tensor& dense = a_sparse ? *args.b : *args.a;
    const bool transpose_sparse = a_sparse ? args.transpose_a : args.transpose_b;
    // The kernels index with the stored indices: check them once here.
    RETURN_IF_ERROR(ValidateTensor(sparse, {}, a_sparse ? "a" : "b"));

    // Bring the sparse operand into CSR. CSC of A is CSR of Aᵀ over the same
    // arrays, so a CSC operand costs nothing; every other format is converted
    // (BSR and N:M drop their zero fill). A transposed operand is then read as
    // stored: no transpose is built.
    Tensor converted;
    const Tensor* csr = &sparse;
    bool transpose_pending = transpose_sparse;
    if (sparse.format() == Format::kCsc) {
      ASSIGN_OR_RETURN(converted, sparsed::TransposeView(sparse));
      csr = &converted;
      transpose_pending = !transpose_sparse;
    } else if (sparse.format() != Format::kCsr) {
      ASSIGN_OR_RETURN(converted,
                       sparsed::Convert(sparse, Format::kCsr, sparse.desc().index_dtype));
      csr = &converted;
    }

    ASSIGN_OR_RETURN(Tensor out,
                     Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, shape, 0}));
    cpu::OutputSpec o;
    o.out = out.data<float>("values").data();
    o.m = shape[0];
    o.n = shape[1];
    o.alpha = args.alpha;
    o.beta = args.beta;
    if (args.beta != 0.0f) o.c_in = args.c->data<float>("values").data();
    if (args.epilogue.bias != nullptr) o.bias = args.epilogue.bias->data<float>("values").data();
    o.relu = args.epilogue.relu;
    o.clamp_max = args.epilogue.clamp_max;
    o.threads = threads_;

    cpu::DenseView d;
    d.data = dense.data<float>("values").data();
    d.rows = dense.desc().shape[0];
    d.cols = dense.desc().shape[1];
    d.transpose = a_sparse ? args.transpose_b : args.transpose_a;

    VisitIndexType(csr->desc().index_dtype, [&](auto tag) {
      const cpu::CsrView<decltype(tag)> s = ViewOf<decltype(tag)>(*csr);
      if (a_sparse) {
        transpose_pending ? cpu::SparseTransposedTimesDense(s, d, o)
                          : cpu::SparseTimesDense(s, d, o);
      } else {
        transpose_pending ? cpu::DenseTimesSparseTransposed(d, s, o)
                          : cpu::DenseTimesSparse(d, s, o);
      }
    });
    return out;
  }

  int threads_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(int threads) {
  return std::make_unique<CpuBackend>(threads);
}

}  // namespace sparsed
