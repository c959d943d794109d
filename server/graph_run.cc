#include "server/graph_run.h"

#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/graph_op_checks.h"
#include "server/op_result.h"
#include "server/tensor_access.h"
#include "server/training_requests.h"
#include "sparsed/cancel.h"
#include "sparsed/op_batch.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

// The n x n identity as CSR f32 on the host.
absl::StatusOr<Tensor> HostIdentity(int64_t n) {
  TensorDesc d{Format::kCsr, DType::kF32, DType::kI32, {n, n}, n};
  if (n >= std::numeric_limits<int32_t>::max()) d.index_dtype = DType::kI64;
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(d));
  VisitIndexType(d.index_dtype, [&](auto tag) {
    using I = decltype(tag);
    auto row_ptr = t.data<I>("row_ptr");
    auto col_idx = t.data<I>("col_idx");
    for (int64_t i = 0; i <= n; ++i) row_ptr[i] = static_cast<I>(i);
    for (int64_t i = 0; i < n; ++i) col_idx[i] = static_cast<I>(i);
  });
  for (float& v : t.data<float>("values")) v = 1.0f;
  return t;
}

// `t` (sharing its memory) described with `shape`, for a dense tensor.
absl::StatusOr<Tensor> Reshaped(const Tensor& t, std::vector<int64_t> shape) {
  TensorDesc d = t.desc();
  d.shape = std::move(shape);
  return Tensor::View(d, t, {"values"});
}

class Executor {
 public:
  Executor(const GraphPlan& plan, Backend& backend)
      : plan_(plan), backend_(backend), values_(plan.steps.size()) {}

  absl::StatusOr<GraphRunResult> Run() {
    GraphRunResult result;
    result.elapsed_ms.reserve(plan_.steps.size());
    const int count = static_cast<int>(plan_.steps.size());
    // Every step is queued in one batch (one CUDA stream, no host wait
    // between steps); a return before Finish waits in the batch's destructor.
    ASSIGN_OR_RETURN(std::unique_ptr<OpBatch> batch, backend_.BeginBatch());
    batch_ = batch.get();
    std::vector<int> marks = {batch->Mark()};
    for (int s = 0; s < count; ++s) {
      const PlanStep& step = plan_.steps[s];
      const std::string where =
          StrCat(step.field, ".", GraphOpKindName(step.kind), " ('", step.label, "')");
      if (absl::Status c = CancelStatus(); !c.ok()) {
        ForgetLayerCalls(kept_);
        return WithLayerUpdates(
            absl::Status(c.code(), StrCat(c.message(), " (stopped before ", where, "; ", s, " of ",
                                          count, " ops done)")),
            updates_);
      }
      absl::StatusOr<Tensor> out = RunStep(s, step);
      if (!out.ok()) {
        ForgetLayerCalls(kept_);
        return WithLayerUpdates(WithField(where, out.status()), updates_);
      }
      if (UpdatesLayer(step.kind)) updates_.push_back(where);
      marks.push_back(batch->Mark());
      values_[s] = *std::move(out);
      Release(s);
    }
    if (absl::Status done = batch->Finish(); !done.ok()) {
      ForgetLayerCalls(kept_);
      return WithLayerUpdates(
          absl::Status(done.code(), StrCat("an op queued on the device failed: ", done.message())),
          updates_);
    }
    // Each step's time on the batch's queue (the device's, on CUDA).
    for (int s = 0; s < count; ++s) {
      const double ms = batch->MillisecondsBetween(marks[s], marks[s + 1]);
      result.elapsed_ms.push_back(ms);
      result.compute_ms += ms;
    }
    for (int s : plan_.outputs) result.outputs.push_back(std::move(values_[s]));
    result.kept_calls = std::move(kept_);
    result.layer_updates = std::move(updates_);
    result.layer_steps = std::move(steps_);
    return result;
  }

 private:
  const Tensor& In(const PlanStep& step, int k) const {
    const StepInput& in = step.in[k];
    return in.tensor != nullptr ? in.tensor->tensor : values_[in.step];
  }
  const Tensor* Optional(const PlanStep& step, int k) const {
    return step.in[k].present() ? &In(step, k) : nullptr;
  }

  // Frees what step `s` read for the last time, and its own result when
  // nothing reads it.
  void Release(int s) {
    const PlanStep& step = plan_.steps[s];
    for (const StepInput& in : step.in) {
      if (in.step < 0) continue;
      const PlanStep& src = plan_.steps[in.step];
      if (src.last_use == s && !src.kept) values_[in.step] = Tensor();
    }
    if (step.last_use < 0 && !step.kept) values_[s] = Tensor();
  }

  // As Training.Backward with want_dx, under the layer's mutex. The call is
  // consumed: no longer this graph's to forget.
  absl::StatusOr<Tensor> LayerBackward(const PlanStep& step) {
    const std::string& call_id = step.op->layer_backward().call_id();
    std::lock_guard lock(step.layer->mu);
    ASSIGN_OR_RETURN(std::optional<Tensor> dx,
                     step.layer->layer.Backward(backend_, In(step, 0), call_id, /*want_dx=*/true));
    RETURN_IF_ERROR(batch_->Finish());  // the layer is whole before its lock is let go
    std::erase_if(kept_, [&](const KeptLayerCall& c) {
      return c.layer == step.layer && c.call_id == call_id;
    });
    if (!dx.has_value()) return absl::InternalError("the layer returned no dX although asked to");
    return *std::move(dx);
  }

  // As Training.Step, under the layer's mutex. No result (an empty tensor).
  absl::StatusOr<Tensor> LayerStep(int s, const PlanStep& step) {
    std::lock_guard lock(step.layer->mu);
    if (step.hyper.has_value()) RETURN_IF_ERROR(step.layer->layer.SetOptimizer(*step.hyper));
    ASSIGN_OR_RETURN(const train::StepReport report,
                     step.layer->layer.Step(backend_, step.grad_scale));
    RETURN_IF_ERROR(batch_->Finish());  // the layer is whole before its lock is let go
    steps_.push_back({s, step.layer->id, report});
    return Tensor();
  }

  absl::StatusOr<Tensor> RunStep(int s, const PlanStep& step) {
    const v1::GraphOp& op = *step.op;
    switch (step.kind) {
      case GraphOpKind::kSpmm: {
        const v1::GraphSpmm& s = op.spmm();
        SpmmArgs args;
        args.a = &In(step, 0);
        args.b = &In(step, 1);
        args.transpose_a = s.transpose_a();
        args.transpose_b = s.transpose_b();
        args.alpha = s.has_alpha() ? s.alpha() : 1.0f;
        args.beta = s.beta();
        args.c = Optional(step, 2);
        args.epilogue.bias = Optional(step, 3);
        args.epilogue.relu = s.relu();
        if (s.has_clamp_max()) args.epilogue.clamp_max = s.clamp_max();
        args.out_dtype = step.dtype;
        return backend_.Spmm(args);
      }
      case GraphOpKind::kConvert:
        return backend_.Convert(In(step, 0), static_cast<Format>(op.convert().to()), step.convert);
      case GraphOpKind::kTranspose:
        return backend_.Transpose(In(step, 0));
      case GraphOpKind::kPrune:
        return backend_.Prune(In(step, 0), step.prune);
      case GraphOpKind::kSddmm: {
        const v1::GraphSddmm& s = op.sddmm();
        SddmmArgs args;
        args.a = &In(step, 0);
        args.b = &In(step, 1);
        args.transpose_a = s.transpose_a();
        args.transpose_b = s.transpose_b();
        args.pattern = &In(step, 2);
        args.alpha = s.has_alpha() ? s.alpha() : 1.0f;
        args.beta = s.beta();
        args.c = Optional(step, 3);
        ASSIGN_OR_RETURN(const Tensor values, backend_.Sddmm(args));
        // As TrainingOps.Sddmm: CSR with the pattern's structure (shared).
        return In(step, 2).WithValues(values);
      }
      case GraphOpKind::kDenseMatmul: {
        const v1::GraphDenseMatmul& d = op.dense_matmul();
        DenseMatmulArgs args;
        args.a = &In(step, 0);
        args.b = &In(step, 1);
        args.transpose_a = d.transpose_a();
        args.transpose_b = d.transpose_b();
        args.row_begin = d.row_begin();
        args.row_end = RowEndFrom(d.row_end());
        return backend_.DenseMatmul(args);
      }
      case GraphOpKind::kAdd: {
        const v1::GraphAdd& a = op.add();
        const float beta = a.has_beta() ? a.beta() : 1.0f;
        const Tensor& y = In(step, 1);
        // Axpby works in place: on a copy of y (or fresh memory, unread, when beta = 0).
        Tensor out;
        if (beta != 0.0f) {
          ASSIGN_OR_RETURN(out, y.Clone());
        } else {
          ASSIGN_OR_RETURN(out, Tensor::Allocate(y.desc(), backend_.device()));
        }
        RETURN_IF_ERROR(backend_.Axpby(a.has_alpha() ? a.alpha() : 1.0f, In(step, 0), beta, out));
        return out;
      }
      case GraphOpKind::kScale: {
        const Tensor& x = In(step, 0);
        ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(x.desc(), backend_.device()));
        RETURN_IF_ERROR(backend_.Axpby(op.scale().factor(), x, 0.0f, out));
        return out;
      }
      case GraphOpKind::kRelu:
        return backend_.ReluBackward(In(step, 0), In(step, 0));
      case GraphOpKind::kClamp: {
        const v1::GraphClamp& c = op.clamp();
        Epilogue epilogue;
        epilogue.relu = c.has_min();  // validated: min is 0
        if (c.has_max()) epilogue.clamp_max = c.max();
        return TimesIdentity(In(step, 0), epilogue, step.dtype);
      }
      case GraphOpKind::kCast: {
        const Tensor& x = In(step, 0);
        if (x.desc().dtype == step.dtype) return x.Clone();  // bit for bit
        return TimesIdentity(x, Epilogue{}, step.dtype);
      }
      case GraphOpKind::kLayerForward: {
        // As Training.Forward: one call on the layer at a time.
        const std::string& call_id = op.layer_forward().call_id();
        std::lock_guard lock(step.layer->mu);
        absl::StatusOr<Tensor> y = step.layer->layer.Forward(backend_, In(step, 0), call_id);
        if (y.ok() && !call_id.empty()) kept_.push_back({step.layer, call_id});
        // The kept call is the layer's: complete before its lock is let go.
        if (absl::Status done = batch_->Finish(); y.ok() && !done.ok()) return done;
        return y;
      }
      case GraphOpKind::kLayerBackward:
        return LayerBackward(step);
      case GraphOpKind::kLayerStep:
        return LayerStep(s, step);
    }
    return absl::InternalError("unknown graph op kind");
  }

  // epilogue(x · I) in `dtype`: x dense 1-D or 2-D (1-D as one row).
  absl::StatusOr<Tensor> TimesIdentity(const Tensor& x, const Epilogue& epilogue, DType dtype) {
    const bool vector = x.desc().shape.size() == 1;
    const int64_t cols = vector ? x.desc().shape[0] : x.desc().shape[1];
    Tensor row;
    const Tensor* a = &x;
    if (vector) {
      ASSIGN_OR_RETURN(row, Reshaped(x, {1, cols}));
      a = &row;
    }
    ASSIGN_OR_RETURN(const Tensor* identity, Identity(cols));
    SpmmArgs args;
    args.a = a;
    args.b = identity;
    args.epilogue = epilogue;
    args.out_dtype = dtype;
    ASSIGN_OR_RETURN(Tensor out, backend_.Spmm(args));
    if (!vector) return out;
    return Reshaped(out, {cols});
  }

  absl::StatusOr<const Tensor*> Identity(int64_t n) {
    auto it = identities_.find(n);
    if (it == identities_.end()) {
      ASSIGN_OR_RETURN(Tensor host, HostIdentity(n));
      ASSIGN_OR_RETURN(Tensor on_device, MoveToDevice(std::move(host), backend_.device()));
      it = identities_.emplace(n, std::move(on_device)).first;
    }
    return &it->second;
  }

  const GraphPlan& plan_;
  std::vector<KeptLayerCall> kept_;   // forward calls kept so far (and not consumed)
  std::vector<std::string> updates_;  // layer_backward and layer_step steps run
  std::vector<LayerStepRun> steps_;
  Backend& backend_;
  OpBatch* batch_ = nullptr;    // Run's, while it runs
  std::vector<Tensor> values_;  // per step; empty once freed
  std::map<int64_t, Tensor> identities_;
};

}  // namespace

void ForgetLayerCalls(const std::vector<KeptLayerCall>& calls) {
  for (const KeptLayerCall& c : calls) {
    std::lock_guard lock(c.layer->mu);
    (void)c.layer->layer.Forget(c.call_id);  // NOT_FOUND: consumed meanwhile
  }
}

absl::Status WithLayerUpdates(const absl::Status& status, const std::vector<std::string>& updates) {
  if (status.ok() || updates.empty()) return status;
  std::string list;
  for (const std::string& u : updates) list = list.empty() ? u : StrCat(list, ", ", u);
  return absl::Status(
      status.code(),
      StrCat(status.message(), " [not undone: layer updates already applied by ", list, "]"));
}

absl::StatusOr<GraphRunResult> ExecuteGraphPlan(const GraphPlan& plan, Backend& backend) {
  return Executor(plan, backend).Run();
}

}  // namespace sparsed::server
