#include "server/graph_validate.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server/graph_op_checks.h"
#include "server/request_cost.h"
#include "server/tensor_access.h"
#include "server/training_requests.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::server {
namespace {

constexpr size_t kMaxNameBytes = 256;

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

std::string Op(int i) { return StrCat("ops[", i, "]"); }

// `status` with `suffix` after its message (" (iteration 3)").
absl::Status WithSuffix(const absl::Status& status, std::string_view suffix) {
  if (status.ok() || suffix.empty()) return status;
  return absl::Status(status.code(), StrCat(status.message(), suffix));
}

// What `layer` holds for forward call `call_id` (kept by an earlier request):
// the call's batch, and the layer's out_features, so that a layer_backward's
// grad_out fits the call exactly when it is [batch, out_features]. Read under
// the layer's mutex; nothing is run or allocated.
struct KeptCall {
  std::optional<int64_t> batch;  // nullopt: the layer keeps no such call
  int64_t out_features = 0;
};
KeptCall FindKeptCall(StoredLayer& layer, const std::string& call_id) {
  std::lock_guard lock(layer.mu);
  return KeptCall{layer.layer.KeptCallBatch(call_id), layer.layer.config().out_features};
}

const v1::LayerRef& LayerRefOf(const v1::GraphOp& op, GraphOpKind kind) {
  switch (kind) {
    case GraphOpKind::kLayerBackward:
      return op.layer_backward().layer();
    case GraphOpKind::kLayerStep:
      return op.layer_step().layer();
    default:
      return op.layer_forward().layer();
  }
}

// "layer l-0123456789abcdef ('fc')".
std::string LayerWhat(const StoredLayer& layer) {
  return layer.name.empty() ? StrCat("layer ", layer.id)
                            : StrCat("layer ", layer.id, " ('", layer.name, "')");
}

// What an `output` name, a repeat's carry or one of its params stands for.
struct Binding {
  StepInput input;
  const TensorDesc* desc = nullptr;
  std::string what;  // "output 'h2'", "tensor 'w0'", "the inline tensor"
  bool exact = true;
};

// Where a name of the request is defined.
struct NameSite {
  std::string where;  // "ops[4]", "ops[0].repeat.body[1]", "ops[0].repeat.carry"
  int top = 0;        // the top-level op it belongs to
  int body = -1;      // its body index in a repeat; -1: the top-level op; -2: carry or param
};

// The names an op may read besides the top-level ops before it.
struct Scope {
  int top = 0;                           // the top-level op being added
  bool in_repeat = false;                // adding a body op of ops[top]
  int body = -1;                         // that body op's index
  std::map<std::string, Binding> local;  // carry, params, earlier body ops of this iteration
};

class Validator {
 public:
  Validator(const v1::RunRequest& request, const TensorStore& store, const LayerStore* layers,
            const Caller& caller, const Device& device, const GraphLimits& limits)
      : request_(request),
        store_(store),
        layers_(layers),
        caller_(caller),
        device_(device),
        limits_(limits) {}

  absl::StatusOr<GraphPlan> Run() {
    RETURN_IF_ERROR(CheckStructure());
    // Steps are never reallocated, so bindings may point at their descriptions.
    plan_.steps.reserve(static_cast<size_t>(expanded_));
    for (int i = 0; i < request_.ops_size(); ++i) {
      if (request_.ops(i).has_repeat()) {
        RETURN_IF_ERROR(AddRepeat(i));
      } else {
        Scope scope;
        scope.top = i;
        ASSIGN_OR_RETURN(const int s,
                         AddStep(request_.ops(i), request_.ops(i).name(), Op(i), scope, ""));
        top_steps_[request_.ops(i).name()] = s;
      }
    }
    RETURN_IF_ERROR(CheckOutputs());
    for (int s = 0; s < static_cast<int>(plan_.steps.size()); ++s) {
      for (const StepInput& in : plan_.steps[s].in) {
        if (in.step >= 0) plan_.steps[in.step].last_use = s;
      }
    }
    RETURN_IF_ERROR(CheckWorkLimit());
    RETURN_IF_ERROR(CheckMemory());
    return std::move(plan_);
  }

 private:
  // Names, op kinds, repeat shapes and the expanded size; nothing resolved.
  absl::Status CheckStructure() {
    if (request_.ops_size() == 0) return Invalid("ops is empty: a graph needs at least one op");
    // (A repeat body's are refused later, naming the op.)
    const auto trains_op = [](const v1::GraphOp& op) {
      return op.has_layer_backward() || op.has_layer_step();
    };
    const bool trains =
        std::any_of(request_.ops().begin(), request_.ops().end(), [&](const v1::GraphOp& op) {
          return trains_op(op) ||
                 std::any_of(op.repeat().body().begin(), op.repeat().body().end(), trains_op);
        });
    if (request_.outputs_size() == 0 && !trains) {
      return Invalid(
          "outputs is empty: name at least one op whose result to hold or return (only a "
          "graph with a layer_backward or layer_step may have none)");
    }
    int64_t total = 0, biggest = 0;
    int biggest_op = -1;
    for (int i = 0; i < request_.ops_size(); ++i) {
      const v1::GraphOp& op = request_.ops(i);
      RETURN_IF_ERROR(Define(op.name(), StrCat(Op(i), ".name"), NameSite{Op(i), i, -1}));
      if (!op.has_repeat()) {
        RETURN_IF_ERROR(GraphOpKindOf(op, Op(i)).status());
        ++total;
        continue;
      }
      const v1::Repeat& r = op.repeat();
      const std::string rf = StrCat(Op(i), ".repeat");
      if (r.times() < 1) return Invalid(StrCat(rf, ".times = ", r.times(), " must be at least 1"));
      if (r.body_size() == 0) return Invalid(StrCat(rf, ".body is empty: a repeat needs an op"));
      if (r.has_init() && r.carry().empty()) {
        return Invalid(StrCat(rf, ".init is set but carry is empty: name the carried value"));
      }
      if (!r.has_init() && !r.carry().empty()) {
        return Invalid(StrCat(rf, ".carry = '", r.carry(),
                              "' but init is not set: give the value iteration 0 reads"));
      }
      if (r.has_init()) {
        RETURN_IF_ERROR(
            Define(r.carry(), StrCat(rf, ".carry"), NameSite{StrCat(rf, ".carry"), i, -2}));
      }
      for (int p = 0; p < r.params_size(); ++p) {
        const std::string pf = StrCat(rf, ".params[", p, "]");
        RETURN_IF_ERROR(Define(r.params(p), pf, NameSite{pf, i, -2}));
      }
      if (r.bindings_size() != r.times()) {
        return Invalid(StrCat(rf, ".bindings has ", r.bindings_size(),
                              " entries but times = ", r.times(), " (one per iteration)"));
      }
      for (int j = 0; j < r.bindings_size(); ++j) {
        if (r.bindings(j).operands_size() != r.params_size()) {
          return Invalid(StrCat(rf, ".bindings[", j, "].operands has ",
                                r.bindings(j).operands_size(), " entries but params has ",
                                r.params_size(), " (one per param, in order)"));
        }
      }
      for (int b = 0; b < r.body_size(); ++b) {
        const std::string bf = StrCat(rf, ".body[", b, "]");
        RETURN_IF_ERROR(Define(r.body(b).name(), StrCat(bf, ".name"), NameSite{bf, i, b}));
        RETURN_IF_ERROR(GraphOpKindOf(r.body(b), bf).status());
      }
      const int64_t n = int64_t{r.times()} * r.body_size();
      total += n;
      if (n > biggest) biggest = n, biggest_op = i;
    }
    if (total > limits_.max_ops) {
      std::string detail;
      if (biggest_op >= 0) {
        const v1::Repeat& r = request_.ops(biggest_op).repeat();
        detail = StrCat(" (", Op(biggest_op), ".repeat: ", r.times(), " iterations x ",
                        r.body_size(), " ops)");
      }
      return Invalid(StrCat("the graph has ", total, " ops once repeats are expanded", detail,
                            ", more than the limit of ", limits_.max_ops));
    }
    expanded_ = total;
    return absl::OkStatus();
  }

  absl::Status Define(const std::string& name, const std::string& field, NameSite site) {
    if (name.empty()) {
      return Invalid(StrCat(field, " is empty: every op, carry and param needs a name"));
    }
    if (name.size() > kMaxNameBytes) {
      return Invalid(
          StrCat(field, " is ", name.size(), " bytes long (at most ", kMaxNameBytes, ")"));
    }
    for (unsigned char ch : name) {
      if (ch < 0x20 || ch == 0x7f) {
        return Invalid(StrCat(field, " contains the control character ", int{ch}));
      }
    }
    // Top-level names are unique in the request; a repeat's local names
    // (body ops, carry, params) unique in that repeat and unlike every
    // top-level name, but two repeats may use the same ones.
    const auto taken = [&](const NameSite& other) {
      return Invalid(StrCat(field, " = '", name, "' is already the name of ", other.where));
    };
    if (const auto it = top_names_.find(name); it != top_names_.end()) return taken(it->second);
    std::vector<NameSite>& locals = local_names_[name];
    for (const NameSite& other : locals) {
      if (site.body == -1 || other.top == site.top) return taken(other);
    }
    if (site.body == -1) {
      top_names_.emplace(name, std::move(site));
    } else {
      locals.push_back(std::move(site));
    }
    return absl::OkStatus();
  }

  // Where `name` is defined: the top-level op so named, else a repeat's local
  // (that of ops[top] if it has one); nullptr for a name nothing defines.
  const NameSite* FindSite(const std::string& name, int top) const {
    if (const auto it = top_names_.find(name); it != top_names_.end()) return &it->second;
    const auto it = local_names_.find(name);
    if (it == local_names_.end() || it->second.empty()) return nullptr;
    for (const NameSite& site : it->second) {
      if (site.top == top) return &site;
    }
    return &it->second.front();
  }

  absl::Status AddRepeat(int i) {
    const v1::GraphOp& op = request_.ops(i);
    const v1::Repeat& r = op.repeat();
    const std::string rf = StrCat(Op(i), ".repeat");
    Scope outer;
    outer.top = i;
    Binding carry;
    if (r.has_init()) {
      ASSIGN_OR_RETURN(carry, Resolve(r.init(), StrCat(rf, ".init"), outer));
    }
    int last = -1;
    for (int it = 0; it < r.times(); ++it) {
      const std::string suffix = StrCat(" (iteration ", it, ")");
      Scope scope;
      scope.top = i;
      scope.in_repeat = true;
      if (r.has_init()) scope.local[r.carry()] = carry;
      for (int p = 0; p < r.params_size(); ++p) {
        absl::StatusOr<Binding> b = Resolve(
            r.bindings(it).operands(p), StrCat(rf, ".bindings[", it, "].operands[", p, "]"), outer);
        if (!b.ok()) return b.status();
        scope.local[r.params(p)] = *std::move(b);
      }
      for (int b = 0; b < r.body_size(); ++b) {
        const v1::GraphOp& body = r.body(b);
        scope.body = b;
        ASSIGN_OR_RETURN(last, AddStep(body, StrCat(op.name(), "[", it, "].", body.name()),
                                       StrCat(rf, ".body[", b, "]"), scope, suffix));
        scope.local[body.name()] = StepBinding(last, StrCat("output '", body.name(), "'"));
      }
      if (r.has_init()) {
        carry =
            StepBinding(last, StrCat("carry '", r.carry(), "' (output '",
                                     r.body(r.body_size() - 1).name(), "' of iteration ", it, ")"));
      }
    }
    top_steps_[op.name()] = last;
    return absl::OkStatus();
  }

  // Resolves `op`'s operands in `scope`, checks it and appends its step.
  // `suffix` (" (iteration 3)") follows every message of a body op.
  absl::StatusOr<int> AddStep(const v1::GraphOp& op, std::string label, const std::string& field,
                              const Scope& scope, std::string_view suffix) {
    ASSIGN_OR_RETURN(const GraphOpKind kind, GraphOpKindOf(op, field));
    PlanStep step;
    step.op = &op;
    step.kind = kind;
    step.label = std::move(label);
    step.field = StrCat(field, suffix);
    const OperandSlots slots = OperandSlotsOf(op, kind);
    OperandInfos infos;
    for (int k = 0; k < kMaxGraphOperands; ++k) {
      const OperandSlot& slot = slots[k];
      if (slot.name.empty()) continue;
      const std::string of = StrCat(field, ".", GraphOpKindName(kind), ".", slot.name);
      if (slot.operand == nullptr) {
        if (!slot.required) continue;
        return Invalid(StrCat(of, " is missing (set ref, inline or output)", suffix));
      }
      absl::StatusOr<Binding> b = Resolve(*slot.operand, of, scope);
      if (!b.ok()) return WithSuffix(b.status(), suffix);
      step.in[k] = b->input;
      infos[k] = OperandInfo{b->desc, b->what, b->exact};
    }
    if (IsLayerKind(kind)) RETURN_IF_ERROR(AddLayer(op, kind, field, suffix, step));
    RETURN_IF_ERROR(WithSuffix(CheckGraphOp(infos, field, step), suffix));
    if (kind == GraphOpKind::kLayerBackward) {
      RETURN_IF_ERROR(CheckBackwardCall(op.layer_backward(), field, infos[0], step));
    }
    plan_.steps.push_back(std::move(step));
    return static_cast<int>(plan_.steps.size()) - 1;
  }

  static bool IsLayerKind(GraphOpKind kind) {
    return kind == GraphOpKind::kLayerForward || UpdatesLayer(kind);
  }

  // Resolves the layer of a layer op through the caller's tenant and checks
  // what its call id allows: forward calls kept in this graph are unique per
  // layer and fit under max_pending; backward and step are top-level ops.
  absl::Status AddLayer(const v1::GraphOp& op, GraphOpKind kind, const std::string& field,
                        std::string_view suffix, PlanStep& step) {
    const std::string of = StrCat(field, ".", GraphOpKindName(kind));
    const std::string lf = StrCat(of, ".layer");
    if (layers_ == nullptr) {
      return absl::FailedPreconditionError(StrCat(lf, ": this daemon runs no training layers"));
    }
    absl::StatusOr<LayerPtr> layer = ResolveLayer(*layers_, caller_, LayerRefOf(op, kind), lf);
    if (!layer.ok()) {
      // NOT_FOUND does not say which op asked; INVALID_ARGUMENT already does.
      return WithSuffix(
          absl::IsNotFound(layer.status()) ? WithField(lf, layer.status()) : layer.status(),
          suffix);
    }
    step.layer = *std::move(layer);
    if (UpdatesLayer(kind) && !suffix.empty()) {
      return Invalid(StrCat(of,
                            kind == GraphOpKind::kLayerBackward
                                ? ": a repeat body runs once per iteration, so every iteration "
                                  "would consume the same call (layer_backward is for top-level "
                                  "ops)"
                                : ": layer_step is for top-level ops (a repeat body runs once "
                                  "per iteration)",
                            suffix));
    }
    const std::string cf = StrCat(of, ".call_id");
    if (kind == GraphOpKind::kLayerBackward) {
      const std::string& call_id = op.layer_backward().call_id();
      if (absl::Status s = CheckCallId(call_id, /*may_be_empty=*/false); !s.ok()) {
        return WithField(cf, s);
      }
      if (const auto it = consumed_.find({step.layer->id, call_id}); it != consumed_.end()) {
        return Invalid(StrCat(cf, " = '", call_id, "': ", it->second, " consumes this call of ",
                              LayerWhat(*step.layer),
                              " already (a backward consumes its forward call)"));
      }
      return absl::OkStatus();
    }
    if (kind != GraphOpKind::kLayerForward) return absl::OkStatus();
    const std::string& call_id = op.layer_forward().call_id();
    if (call_id.empty()) return absl::OkStatus();
    if (!suffix.empty()) {
      return Invalid(StrCat(cf, " = '", call_id,
                            "': a repeat body runs once per iteration, "
                            "so every iteration would keep the same call id (call ids "
                            "are for top-level ops)",
                            suffix));
    }
    if (absl::Status s = CheckCallId(call_id, /*may_be_empty=*/false); !s.ok()) {
      return WithField(cf, s);
    }
    const std::pair<std::string, std::string> key{step.layer->id, call_id};
    if (kept_calls_.contains(key)) {
      return Invalid(StrCat(cf, " = '", call_id, "' is used twice for layer ", step.layer->id,
                            " in this graph (each forward call keeps its "
                            "own activations)"));
    }
    // A call an earlier request kept (and no backward here consumes before
    // this op) would make the forward fail half-way through the graph.
    if (!consumed_.contains(key)) {
      if (FindKeptCall(*step.layer, call_id).batch.has_value()) {
        return absl::AlreadyExistsError(
            StrCat(cf, " = '", call_id, "': ", LayerWhat(*step.layer),
                   " keeps this call already (from an earlier request; run its backward or "
                   "Training.ForgetCall first)"));
      }
    }
    RETURN_IF_ERROR(CountPending(*step.layer, +1, cf));
    kept_calls_[key] = static_cast<int>(plan_.steps.size());
    return absl::OkStatus();
  }

  // A layer_backward's call: kept by a layer_forward before it in this graph
  // (grad_out must have that forward's output shape) or by an earlier
  // request (grad_out must be [batch, out_features] of the call, the batch
  // from SparseLinear::KeptCallBatch), and not consumed yet.
  absl::Status CheckBackwardCall(const v1::GraphLayerBackward& b, const std::string& field,
                                 const OperandInfo& grad_out, const PlanStep& step) {
    const std::string of = StrCat(field, ".layer_backward");
    const std::string& call_id = b.call_id();
    StoredLayer& layer = *step.layer;
    const std::pair<std::string, std::string> key{layer.id, call_id};
    if (const auto it = kept_calls_.find(key); it != kept_calls_.end()) {
      const PlanStep& forward = plan_.steps[it->second];
      if (grad_out.desc->shape != forward.out.shape) {
        return Invalid(StrCat(of, ".grad_out: ", grad_out.what, " is ",
                              ShapeString(grad_out.desc->shape), " but call '", call_id, "' of ",
                              LayerWhat(layer), " (", forward.field, " '", forward.label,
                              "') has the output shape ", ShapeString(forward.out.shape)));
      }
    } else {
      // Backward would check dY (dense f32 [*, out_features] by now, on this
      // device) against the call's [batch, out_features]; refuse here what
      // it would refuse, in its words ("dy.shape = ... must be ...").
      const KeptCall kept = FindKeptCall(layer, call_id);
      if (!kept.batch.has_value()) {
        return absl::NotFoundError(
            StrCat(of, ".call_id = '", call_id, "': ", LayerWhat(layer),
                   " keeps no such forward call (keep one with a layer_forward call_id "
                   "before this op, or with Training.Forward)"));
      }
      const std::vector<int64_t> want{*kept.batch, kept.out_features};
      if (grad_out.desc->shape != want) {
        return Invalid(
            StrCat(of, ".grad_out: ", grad_out.what, " is ", ShapeString(grad_out.desc->shape),
                   " but does not fit call '", call_id, "' of ", LayerWhat(layer),
                   " (kept by an earlier request): dy.shape = ", ShapeString(grad_out.desc->shape),
                   " must be ", ShapeString(want)));
      }
    }
    consumed_[key] = field;
    return CountPending(layer, -1, StrCat(of, ".call_id"));
  }

  // The forward calls `layer` keeps once this graph's ops so far have run,
  // against its max_pending.
  absl::Status CountPending(StoredLayer& layer, int delta, const std::string& cf) {
    auto it = pending_.find(layer.id);
    int64_t max_pending = 0;
    {
      std::lock_guard lock(layer.mu);
      if (it == pending_.end()) it = pending_.emplace(layer.id, layer.layer.pending()).first;
      max_pending = layer.layer.config().max_pending;
    }
    it->second += delta;
    if (delta > 0 && it->second > max_pending) {
      return absl::ResourceExhaustedError(
          StrCat(cf, ": ", LayerWhat(layer), " would keep ", it->second,
                 " forward calls, more than its max_pending = ", max_pending,
                 " (run their backward or Training.ForgetCall first)"));
    }
    return absl::OkStatus();
  }

  Binding StepBinding(int step, std::string what) {
    const PlanStep& s = plan_.steps[step];
    return Binding{StepInput{nullptr, step}, &s.out, std::move(what), s.exact_nnz};
  }

  absl::StatusOr<Binding> Resolve(const v1::GraphOperand& operand, const std::string& field,
                                  const Scope& scope) {
    switch (operand.src_case()) {
      case v1::GraphOperand::kRef:
      case v1::GraphOperand::kInline: {
        ASSIGN_OR_RETURN(TensorPtr t, ResolveTensor(operand, field));
        std::string what = operand.has_inline_() ? "the inline tensor"
                           : t->name.empty()     ? StrCat("tensor ", t->id)
                                                 : StrCat("tensor '", t->name, "'");
        const TensorDesc* desc = &t->tensor.desc();
        return Binding{StepInput{std::move(t), -1}, desc, std::move(what), true};
      }
      case v1::GraphOperand::kOutput:
        return Lookup(operand.output(), field, scope);
      case v1::GraphOperand::SRC_NOT_SET:
        break;
    }
    return Invalid(StrCat(field, " is empty (set ref, inline or output)"));
  }

  // A held tensor or inline data, once per operand message (a body's operands
  // are read in every iteration).
  absl::StatusOr<TensorPtr> ResolveTensor(const v1::GraphOperand& operand,
                                          const std::string& field) {
    if (auto it = resolved_.find(&operand); it != resolved_.end()) return it->second;
    TensorPtr t;
    if (operand.has_ref()) {
      v1::Operand o;
      *o.mutable_ref() = operand.ref();
      absl::StatusOr<TensorPtr> held = ResolveOperand(store_, caller_, o, field, device_);
      if (!held.ok()) {
        // The store's NOT_FOUND does not say which operand asked.
        if (absl::IsNotFound(held.status())) {
          return WithField(StrCat(field, ".ref"), held.status());
        }
        return held.status();
      }
      t = *std::move(held);
    } else {
      const std::string inline_field = StrCat(field, ".inline");
      ASSIGN_OR_RETURN(Tensor host, api::FromInline(operand.inline_(), inline_field));
      RETURN_IF_ERROR(ValidateTensor(host, {}, inline_field));
      auto entry = std::make_shared<StoredTensor>();
      ASSIGN_OR_RETURN(entry->tensor, MoveToDevice(std::move(host), device_));
      t = std::move(entry);
    }
    resolved_[&operand] = t;
    return t;
  }

  // An `output` name: a local of the repeat being expanded, else a top-level
  // op before this one.
  absl::StatusOr<Binding> Lookup(const std::string& name, const std::string& field,
                                 const Scope& scope) {
    if (auto it = scope.local.find(name); it != scope.local.end()) return it->second;
    if (auto it = top_steps_.find(name); it != top_steps_.end()) {
      if (const PlanStep& s = plan_.steps[it->second]; !HasResult(s.kind)) {
        return Invalid(StrCat(field, ": '", name, "' is ", s.field, ", a ", GraphOpKindName(s.kind),
                              ", which has no result to read"));
      }
      return StepBinding(it->second, StrCat("output '", name, "'"));
    }
    const NameSite* site = FindSite(name, scope.top);
    if (site == nullptr) return Invalid(StrCat(field, ": no op is named '", name, "'"));
    const NameSite& d = *site;
    const std::string later = "; an op reads only the outputs of ops before it";
    if (d.top == scope.top && d.body == -1) {
      if (scope.in_repeat) {
        return Invalid(StrCat(field, ": output '", name, "' is the result of this repeat (",
                              Op(d.top),
                              "); inside the body read the carried value by its carry "
                              "name"));
      }
      return Invalid(StrCat(field, ": output '", name, "' is this op's own result", later));
    }
    if (d.body == -1) {
      return Invalid(
          StrCat(field, ": output '", name, "' is defined by ", d.where, ", after this op", later));
    }
    if (d.top == scope.top && scope.in_repeat) {
      if (d.body == scope.body) {
        return Invalid(StrCat(field, ": output '", name, "' is this op's own result", later));
      }
      return Invalid(StrCat(field, ": output '", name, "' is defined by ", d.where,
                            ", after this op in the body", later));
    }
    const std::string& repeat = request_.ops(d.top).name();
    return Invalid(StrCat(field, ": '", name, "' is local to the repeat ", Op(d.top), " ('", repeat,
                          "'); outside its body, read its result as '", repeat, "'"));
  }

  absl::Status CheckOutputs() {
    std::map<std::string, int> listed, held_names;
    int64_t inline_bytes = 0;
    for (int k = 0; k < request_.outputs_size(); ++k) {
      const v1::GraphOutput& o = request_.outputs(k);
      const std::string of = StrCat("outputs[", k, "]");
      if (o.output().empty()) {
        return Invalid(StrCat(of, ".output is empty (name the op whose result to keep)"));
      }
      const auto it = top_steps_.find(o.output());
      if (it == top_steps_.end()) {
        if (const NameSite* site = FindSite(o.output(), -1); site != nullptr) {
          const std::string& repeat = request_.ops(site->top).name();
          return Invalid(StrCat(of, ".output = '", o.output(), "' is local to the repeat ",
                                Op(site->top), "; its result is '", repeat, "'"));
        }
        return Invalid(StrCat(of, ".output = '", o.output(), "': no op is named so"));
      }
      if (const auto [seen, inserted] = listed.emplace(o.output(), k); !inserted) {
        return Invalid(StrCat(of, ".output = '", o.output(), "' is listed twice (also outputs[",
                              seen->second, "])"));
      }
      PlanStep& step = plan_.steps[it->second];
      if (!HasResult(step.kind)) {
        return Invalid(StrCat(of, ".output = '", o.output(), "' is ", step.field, ", a ",
                              GraphOpKindName(step.kind),
                              ", which has no result (RunResponse.layer_steps reports it)"));
      }
      if (o.inline_()) {
        if (!o.name().empty() || o.labels_size() > 0) {
          return Invalid(StrCat(of, ": name and labels are for held outputs (inline is set)"));
        }
        if (step.exact_nnz) inline_bytes += step.out_bytes;
      } else {
        RETURN_IF_ERROR(CheckNameAndLabels(o.name(), o.labels(), of));
        if (!o.name().empty()) {
          if (const auto [seen, inserted] = held_names.emplace(o.name(), k); !inserted) {
            return Invalid(StrCat(of, ".name = '", o.name(), "' is given twice (also outputs[",
                                  seen->second, "])"));
          }
          if (absl::Status s = store_.CheckNameFree(caller_.tenant, o.name()); !s.ok()) {
            return WithField(StrCat(of, ".name"), s);
          }
        }
      }
      step.kept = true;
      plan_.outputs.push_back(it->second);
    }
    if (limits_.max_inline_bytes > 0 && inline_bytes > limits_.max_inline_bytes) {
      return absl::ResourceExhaustedError(
          StrCat("outputs: the inline results take ", inline_bytes,
                 " bytes, more than one response may carry (", limits_.max_inline_bytes,
                 "); hold some of them (inline = false) and download them"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckWorkLimit() {
    for (const PlanStep& s : plan_.steps) {
      plan_.work += s.work;
      RETURN_IF_ERROR(CheckWork(s.work, limits_.max_request_work,
                                StrCat(s.field, ".", GraphOpKindName(s.kind))));
    }
    return CheckWork(plan_.work, limits_.max_request_work,
                     StrCat("the graph (", plan_.steps.size(), " ops)"));
  }

  // Results alive at once when each is freed after its last reader, plus the
  // identity matrices of clamp and cast, against the device's free memory.
  absl::Status CheckMemory() {
    std::set<int64_t> identities;
    for (const PlanStep& s : plan_.steps) {
      if (s.kind != GraphOpKind::kClamp && s.kind != GraphOpKind::kCast) continue;
      const TensorDesc& x = s.out;
      identities.insert(x.shape.size() == 2 ? x.shape[1] : x.numel());
    }
    for (int64_t n : identities) plan_.identity_bytes += (n + 1) * 4 + 2 * n * 4;
    int64_t live = plan_.identity_bytes, peak = live;
    int peak_at = 0;
    const int count = static_cast<int>(plan_.steps.size());
    for (int s = 0; s < count; ++s) {
      const PlanStep& step = plan_.steps[s];
      live += step.out_bytes;
      if (live > peak) peak = live, peak_at = s;
      std::set<int> freed;
      for (const StepInput& in : step.in) {
        if (in.step < 0 || freed.count(in.step) > 0) continue;
        const PlanStep& src = plan_.steps[in.step];
        if (src.last_use == s && !src.kept) live -= src.out_bytes, freed.insert(in.step);
      }
      if (step.last_use < 0 && !step.kept) live -= step.out_bytes;
    }
    plan_.peak_bytes = peak;
    if (limits_.memory == nullptr || limits_.memory->limit() <= 0) return absl::OkStatus();
    const int64_t limit = limits_.memory->limit(), in_use = limits_.memory->in_use();
    const int64_t free = std::max<int64_t>(0, limit - in_use);
    if (peak <= free) return absl::OkStatus();
    const PlanStep& at = plan_.steps[peak_at];
    return absl::ResourceExhaustedError(
        StrCat("the graph's results need an estimated ", peak, " bytes at once (at ", at.field,
               " '", at.label, "'), more than the ", free, " bytes free on ", device_.ToString(),
               " (memory_limit_bytes = ", limit, ", ", in_use,
               " in use); keep fewer outputs, split the graph or raise the limit"));
  }

  const v1::RunRequest& request_;
  const TensorStore& store_;
  const LayerStore* layers_;
  const Caller& caller_;
  const Device device_;
  const GraphLimits& limits_;
  GraphPlan plan_;
  int64_t expanded_ = 0;
  std::map<std::string, NameSite> top_names_;                 // top-level op names
  std::map<std::string, std::vector<NameSite>> local_names_;  // repeats' local names
  std::map<std::string, int> top_steps_;  // top-level op name -> its result's step
  std::map<const v1::GraphOperand*, TensorPtr> resolved_;
  // (layer id, call id) -> the layer_forward step that keeps it.
  std::map<std::pair<std::string, std::string>, int> kept_calls_;
  // (layer id, call id) -> the field of the layer_backward that consumes it.
  std::map<std::pair<std::string, std::string>, std::string> consumed_;
  std::map<std::string, int64_t> pending_;  // layer id -> calls kept after the ops so far
};

}  // namespace

absl::StatusOr<GraphPlan> ValidateGraph(const v1::RunRequest& request, const TensorStore& store,
                                        const LayerStore* layers, const Caller& caller,
                                        const Device& device, const GraphLimits& limits) {
  return Validator(request, store, layers, caller, device, limits).Run();
}

}  // namespace sparsed::server
