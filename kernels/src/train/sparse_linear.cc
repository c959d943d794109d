// SparseLinear: forward, backward, optimizer step and state of one sparse
// linear layer, from the Backend's ops only.
#include <cmath>
#include <optional>

#include "absl/strings/str_join.h"
#include "layer_internal.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::train {

struct SparseLinear::Impl : LayerData {};

namespace {

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

std::string ShapeOf(const Tensor& t) { return ShapeString(t.desc().shape); }

// A dense f32 tensor of `shape` (-1: any extent) on `device`.
absl::Status CheckDense(const Tensor& t, std::string_view field, std::vector<int64_t> shape,
                        const Device& device) {
  RETURN_IF_ERROR(ValidateDesc(t.desc(), field));
  if (t.format() != Format::kDense || t.desc().dtype != DType::kF32) {
    return Invalid(StrCat(field, " is ", FormatName(t.format()), " ", DTypeName(t.desc().dtype),
                          ", must be dense f32"));
  }
  bool match = t.desc().shape.size() == shape.size();
  for (size_t i = 0; match && i < shape.size(); ++i) {
    match = shape[i] < 0 || shape[i] == t.desc().shape[i];
  }
  if (!match) {
    std::vector<std::string> want;
    for (int64_t s : shape) want.push_back(s < 0 ? "*" : StrCat(s));
    return Invalid(
        StrCat(field, ".shape = ", ShapeOf(t), " must be [", absl::StrJoin(want, ", "), "]"));
  }
  if (t.device() != device) {
    return Invalid(StrCat(field, " is on ", t.device().ToString(), " but the layer is on ",
                          device.ToString()));
  }
  return absl::OkStatus();
}

absl::Status CheckBackend(const Backend& backend, const LayerData& layer) {
  if (backend.device() != layer.device) {
    return Invalid(StrCat("backend is on ", backend.device().ToString(), " but the layer is on ",
                          layer.device.ToString()));
  }
  return absl::OkStatus();
}

bool NeedsState1(const OptimizerHyper& h) {
  return h.kind != OptimizerKind::kSgd || h.momentum > 0.0f;
}
bool NeedsState2(const OptimizerHyper& h) { return h.kind != OptimizerKind::kSgd; }

// The optimizer state `prefix`.state1/state2 the optimizer needs, created at
// zero the first time (or after the optimizer changed to one that needs it).
absl::Status EnsureState(LayerData& layer, const std::string& prefix, int64_t n) {
  const OptimizerHyper& h = layer.config.optimizer;
  for (auto [suffix, needed] :
       {std::pair{".state1", NeedsState1(h)}, std::pair{".state2", NeedsState2(h)}}) {
    const std::string name = prefix + suffix;
    if (!needed || layer.state.contains(name)) continue;
    ASSIGN_OR_RETURN(Tensor zeros, Zeros(layer.device, n));
    layer.state.emplace(name, std::move(zeros));
  }
  return absl::OkStatus();
}

Tensor* StateOrNull(LayerData& layer, const std::string& name) {
  auto it = layer.state.find(name);
  return it == layer.state.end() ? nullptr : &it->second;
}

absl::Status Update(Backend& backend, LayerData& layer, const std::string& prefix, Tensor& param,
                    const Tensor& grad, int64_t step, float grad_scale) {
  RETURN_IF_ERROR(EnsureState(layer, prefix, param.desc().shape[0]));
  OptimizerUpdateArgs u;
  u.hyper = layer.config.optimizer;
  u.step = step;
  u.grad_scale = grad_scale;
  u.param = &param;
  u.grad = &grad;
  if (NeedsState1(u.hyper)) u.state1 = StateOrNull(layer, prefix + ".state1");
  if (NeedsState2(u.hyper)) u.state2 = StateOrNull(layer, prefix + ".state2");
  return backend.OptimizerUpdate(u);
}

// Checks a LayerState's tensors against its config; moves them to `device`.
// INVALID_ARGUMENT unless every group of m columns of every row of the valid
// host CSR `w` holds exactly n entries (an N:M layer's weight).
absl::Status CheckNmPattern(const Tensor& w, int n, int m) {
  return VisitIndexType(w.desc().index_dtype, [&](auto tag) -> absl::Status {
    using I = decltype(tag);
    auto ptr = w.data<I>("row_ptr");
    auto col = w.data<I>("col_idx");
    const int64_t groups = w.desc().cols() / m;
    for (int64_t r = 0; r < w.desc().rows(); ++r) {
      if (ptr[r + 1] - ptr[r] != groups * n) {
        return Invalid(StrCat("weight row ", r, " holds ", ptr[r + 1] - ptr[r], " entries; an ", n,
                              ":", m, " layer's rows hold ", groups * n));
      }
      for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
        const int64_t want_group = (e - ptr[r]) / n;
        if (static_cast<int64_t>(col[e]) / m != want_group) {
          return Invalid(StrCat("weight row ", r, " column ", col[e], " breaks the ", n, ":", m,
                                " pattern (group ", want_group, " must hold ", n, " entries)"));
        }
      }
    }
    return absl::OkStatus();
  });
}

absl::Status AdoptState(LayerState& state, const Device& device, LayerData& layer) {
  const LayerConfig& c = state.config;
  RETURN_IF_ERROR(CheckLayerConfig(c));
  if (state.step < 0) return Invalid(StrCat("step = ", state.step, " must be >= 0"));
  Tensor& w = state.weight;
  RETURN_IF_ERROR(ValidateDesc(w.desc(), "weight"));
  if (w.format() != Format::kCsr || w.desc().dtype != DType::kF32) {
    return Invalid(StrCat("weight is ", FormatName(w.format()), " ", DTypeName(w.desc().dtype),
                          ", must be csr f32"));
  }
  if (w.desc().rows() != c.out_features || w.desc().cols() != c.in_features) {
    return Invalid(StrCat("weight.shape = ", ShapeOf(w), " must be [out_features = ",
                          c.out_features, ", in_features = ", c.in_features, "]"));
  }
  std::optional<Tensor> host_copy;
  if (!w.device().is_cpu()) {
    ASSIGN_OR_RETURN(host_copy, w.CopyTo(Device::Cpu()));
  }
  const Tensor& host = host_copy ? *host_copy : w;
  RETURN_IF_ERROR(ValidateTensor(host, {}, "weight"));
  if (c.format == Format::kNm) RETURN_IF_ERROR(CheckNmPattern(host, c.nm_n, c.nm_m));
  const int64_t nnz = w.desc().nnz;
  if (state.bias.has_value() != c.bias) {
    return Invalid(StrCat("bias is ", state.bias ? "present" : "missing",
                          " but config.bias = ", c.bias ? "true" : "false"));
  }
  if (state.bias)
    RETURN_IF_ERROR(CheckDense(*state.bias, "bias", {c.out_features}, state.bias->device()));
  for (auto& [name, t] : state.optimizer_state) {
    int64_t n = -1;
    if (name == "weight.state1" || name == "weight.state2") n = nnz;
    if (c.bias && (name == "bias.state1" || name == "bias.state2")) n = c.out_features;
    if (n < 0)
      return Invalid(StrCat("optimizer_state \"", name, "\" is not a state of this layer"));
    RETURN_IF_ERROR(CheckDense(t, StrCat("optimizer_state.", name), {n}, t.device()));
  }
  auto to_device = [&](Tensor& t) -> absl::StatusOr<Tensor> {
    if (t.device() == device && !t.shares_memory()) return std::move(t);
    return t.CopyTo(device);
  };
  ASSIGN_OR_RETURN(layer.weight, to_device(w));
  if (state.bias) {
    ASSIGN_OR_RETURN(Tensor b, to_device(*state.bias));
    layer.bias = std::move(b);
  }
  for (auto& [name, t] : state.optimizer_state) {
    ASSIGN_OR_RETURN(Tensor moved, to_device(t));
    layer.state.emplace(name, std::move(moved));
  }
  layer.config = c;
  layer.device = device;
  layer.step = state.step;
  ASSIGN_OR_RETURN(layer.weight_grad, Zeros(device, nnz));
  if (c.bias) {
    ASSIGN_OR_RETURN(Tensor bg, Zeros(device, c.out_features));
    layer.bias_grad = std::move(bg);
  }
  return absl::OkStatus();
}

}  // namespace

SparseLinear::SparseLinear(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SparseLinear::SparseLinear(SparseLinear&&) noexcept = default;
SparseLinear& SparseLinear::operator=(SparseLinear&&) noexcept = default;
SparseLinear::~SparseLinear() = default;

absl::StatusOr<SparseLinear> SparseLinear::Create(Backend& backend, const LayerConfig& config) {
  ASSIGN_OR_RETURN(HostInit init, InitLayer(config));
  LayerState state;
  state.config = config;
  // The initial weights are built on the host and moved once to the device.
  const DType index_dtype =
      IndexDtypeFor(config.out_features, config.in_features, init.pattern.nnz());
  ASSIGN_OR_RETURN(Tensor values, Zeros(Device::Cpu(), init.pattern.nnz()));
  std::copy(init.values.begin(), init.values.end(), values.data<float>("values").begin());
  ASSIGN_OR_RETURN(state.weight, BuildCsr(init.pattern, index_dtype, values));
  if (config.bias) {
    ASSIGN_OR_RETURN(Tensor b, Zeros(Device::Cpu(), config.out_features));
    std::copy(init.bias.begin(), init.bias.end(), b.data<float>("values").begin());
    state.bias = std::move(b);
  }
  return FromState(backend, std::move(state));
}

absl::StatusOr<SparseLinear> SparseLinear::FromState(Backend& backend, LayerState state) {
  auto impl = std::make_unique<Impl>();
  RETURN_IF_ERROR(AdoptState(state, backend.device(), *impl));
  return SparseLinear(std::move(impl));
}

absl::StatusOr<Tensor> SparseLinear::Forward(Backend& backend, const Tensor& x,
                                             const std::string& call_id) {
  Impl& L = *impl_;
  RETURN_IF_ERROR(CheckBackend(backend, L));
  RETURN_IF_ERROR(CheckDense(x, "x", {-1, L.config.in_features}, L.device));
  if (!call_id.empty()) {
    if (L.pending.contains(call_id)) {
      return absl::AlreadyExistsError(StrCat("call_id \"", call_id, "\" is already kept"));
    }
    if (static_cast<int64_t>(L.pending.size()) >= L.config.max_pending) {
      return absl::ResourceExhaustedError(
          StrCat("max_pending = ", L.config.max_pending,
                 " forward calls are already kept for backward; run Backward or Forget first"));
    }
  }
  SpmmArgs args;
  args.a = &x;
  args.b = &L.weight;
  args.transpose_b = true;
  args.epilogue.bias = L.bias ? &*L.bias : nullptr;
  args.epilogue.relu = L.config.relu;
  ASSIGN_OR_RETURN(Tensor y, backend.Spmm(args));
  if (!call_id.empty()) {
    PendingCall call;
    ASSIGN_OR_RETURN(call.x, x.Clone());
    if (L.config.relu) {
      ASSIGN_OR_RETURN(Tensor kept_y, y.Clone());
      call.y = std::move(kept_y);
    }
    L.pending.emplace(call_id, std::move(call));
  }
  return y;
}

absl::StatusOr<std::optional<Tensor>> SparseLinear::Backward(Backend& backend, const Tensor& dy,
                                                             const std::string& call_id,
                                                             bool want_dx) {
  Impl& L = *impl_;
  RETURN_IF_ERROR(CheckBackend(backend, L));
  auto it = L.pending.find(call_id);
  if (it == L.pending.end()) {
    return absl::NotFoundError(StrCat("call_id \"", call_id, "\" is not a kept forward call"));
  }
  PendingCall& call = it->second;
  const int64_t batch = call.x.desc().rows();
  RETURN_IF_ERROR(CheckDense(dy, "dy", {batch, L.config.out_features}, L.device));

  // dZ: the gradient before the ReLU.
  std::optional<Tensor> relu_dz;
  if (call.y) {
    ASSIGN_OR_RETURN(Tensor dz, backend.ReluBackward(dy, *call.y));
    relu_dz = std::move(dz);
  }
  const Tensor& dz = relu_dz ? *relu_dz : dy;

  // Everything is computed before anything is changed, so that a failure
  // leaves the accumulators and the kept call as they were.
  std::optional<Tensor> dx;
  if (want_dx) {
    SpmmArgs args;
    args.a = &dz;
    args.b = &L.weight;
    ASSIGN_OR_RETURN(Tensor t, backend.Spmm(args));
    dx = std::move(t);
  }
  SddmmArgs sd;
  sd.a = &dz;
  sd.transpose_a = true;
  sd.b = &call.x;
  sd.pattern = &L.weight;
  sd.beta = 1.0f;
  sd.c = &L.weight_grad;
  ASSIGN_OR_RETURN(Tensor weight_grad, backend.Sddmm(sd));
  if (L.bias_grad) {
    ASSIGN_OR_RETURN(Tensor sums, backend.ColumnSums(dz));
    RETURN_IF_ERROR(backend.Axpby(1.0f, sums, 1.0f, *L.bias_grad));
  }
  L.weight_grad = std::move(weight_grad);

  // Keep (X, dZ) of this batch for RigL's growth and DenseGradient.
  if (!relu_dz) {
    ASSIGN_OR_RETURN(Tensor copy, dy.Clone());
    relu_dz = std::move(copy);
  }
  L.last_dz = std::move(relu_dz);
  L.last_x = std::move(call.x);
  L.pending.erase(it);
  return dx;
}

absl::Status SparseLinear::Forget(const std::string& call_id) {
  if (impl_->pending.erase(call_id) == 0) {
    return absl::NotFoundError(StrCat("call_id \"", call_id, "\" is not a kept forward call"));
  }
  return absl::OkStatus();
}

std::optional<int64_t> SparseLinear::KeptCallBatch(const std::string& call_id) const {
  // The batch Backward checks dY against (the kept X's rows).
  const auto it = impl_->pending.find(call_id);
  if (it == impl_->pending.end()) return std::nullopt;
  return it->second.x.desc().rows();
}

absl::StatusOr<StepReport> SparseLinear::Step(Backend& backend, float grad_scale) {
  Impl& L = *impl_;
  RETURN_IF_ERROR(CheckBackend(backend, L));
  if (!std::isfinite(grad_scale)) {
    return Invalid(StrCat("grad_scale = ", grad_scale, " is not finite"));
  }
  const int64_t t = L.step + 1;
  ASSIGN_OR_RETURN(Tensor values, FlatValues(L.weight));
  RETURN_IF_ERROR(Update(backend, L, "weight", values, L.weight_grad, t, grad_scale));
  if (L.bias) RETURN_IF_ERROR(Update(backend, L, "bias", *L.bias, *L.bias_grad, t, grad_scale));
  L.step = t;
  ASSIGN_OR_RETURN(L.weight_grad, Zeros(L.device, L.weight.desc().nnz));
  if (L.bias_grad) {
    ASSIGN_OR_RETURN(Tensor zeros, Zeros(L.device, L.config.out_features));
    L.bias_grad = std::move(zeros);
  }
  StepReport report;
  ASSIGN_OR_RETURN(report.pruned, MaybePrune(backend, L));
  RETURN_IF_ERROR(MaybeRigl(backend, L, report));
  report.step = L.step;
  report.nnz = L.weight.desc().nnz;
  const double total = static_cast<double>(L.config.out_features * L.config.in_features);
  report.sparsity = 1.0 - static_cast<double>(report.nnz) / total;
  return report;
}

absl::StatusOr<Tensor> SparseLinear::DenseGradient(Backend& backend, int64_t row_begin,
                                                   int64_t row_end) {
  Impl& L = *impl_;
  RETURN_IF_ERROR(CheckBackend(backend, L));
  if (!L.last_x) {
    return absl::FailedPreconditionError("no backward has run yet: there is no dense gradient");
  }
  DenseMatmulArgs mm;
  mm.a = &*L.last_dz;
  mm.transpose_a = true;
  mm.b = &*L.last_x;
  mm.row_begin = row_begin;
  mm.row_end = row_end;
  return backend.DenseMatmul(mm);
}

absl::Status SparseLinear::SetOptimizer(const OptimizerHyper& hyper) {
  RETURN_IF_ERROR(CheckOptimizerHyper(hyper, "optimizer"));
  impl_->config.optimizer = hyper;
  return absl::OkStatus();
}

const LayerConfig& SparseLinear::config() const { return impl_->config; }
int64_t SparseLinear::step() const { return impl_->step; }
int64_t SparseLinear::pending() const { return static_cast<int64_t>(impl_->pending.size()); }
const Tensor& SparseLinear::weight() const { return impl_->weight; }
const Tensor* SparseLinear::bias() const { return impl_->bias ? &*impl_->bias : nullptr; }
const Tensor& SparseLinear::weight_grad() const { return impl_->weight_grad; }
const Tensor* SparseLinear::bias_grad() const {
  return impl_->bias_grad ? &*impl_->bias_grad : nullptr;
}

absl::StatusOr<LayerState> SparseLinear::ExportState(const Device& device) const {
  const Impl& L = *impl_;
  LayerState s;
  s.config = L.config;
  s.step = L.step;
  ASSIGN_OR_RETURN(s.weight, L.weight.CopyTo(device));
  if (L.bias) {
    ASSIGN_OR_RETURN(Tensor b, L.bias->CopyTo(device));
    s.bias = std::move(b);
  }
  for (const auto& [name, t] : L.state) {
    ASSIGN_OR_RETURN(Tensor copy, t.CopyTo(device));
    s.optimizer_state.emplace(name, std::move(copy));
  }
  return s;
}

}  // namespace sparsed::train
