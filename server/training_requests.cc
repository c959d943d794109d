#include "server/training_requests.h"

#include <cmath>

#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

std::string ShapeText(const TensorDesc& d) { return ShapeString(d.shape); }

}  // namespace

absl::StatusOr<LayerPtr> ResolveLayer(const LayerStore& layers, const Caller& caller,
                                      const v1::LayerRef& ref, std::string_view field) {
  switch (ref.ref_case()) {
    case v1::LayerRef::kId:
      return layers.FindById(caller.tenant, ref.id());
    case v1::LayerRef::kName:
      return layers.FindByName(caller.tenant, ref.name());
    case v1::LayerRef::REF_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(StrCat(field, " names no layer (set id or name)"));
}

absl::StatusOr<OptimizerHyper> OptimizerFrom(const v1::OptimizerConfig& proto,
                                             std::string_view field) {
  OptimizerHyper h;
  switch (proto.kind()) {
    case v1::OPTIMIZER_UNSPECIFIED:
    case v1::SGD:
      h.kind = OptimizerKind::kSgd;
      break;
    case v1::ADAM:
      h.kind = OptimizerKind::kAdam;
      break;
    case v1::ADAMW:
      h.kind = OptimizerKind::kAdamW;
      break;
    default:
      return absl::InvalidArgumentError(StrCat(field, ".kind = ", static_cast<int>(proto.kind()),
                                               " is not an optimizer (SGD, ADAM, ADAMW)"));
  }
  // proto3 cannot tell 0 from unset: 0 takes the default where 0 is rarely
  // meant (lr, the betas, eps); momentum and weight decay 0 are just off.
  h.lr = proto.lr() == 0.0f ? h.lr : proto.lr();
  h.momentum = proto.momentum();
  h.nesterov = proto.nesterov();
  h.weight_decay = proto.weight_decay();
  if (proto.beta1() != 0.0f) h.beta1 = proto.beta1();
  if (proto.beta2() != 0.0f) h.beta2 = proto.beta2();
  if (proto.eps() != 0.0f) h.eps = proto.eps();
  RETURN_IF_ERROR(CheckOptimizerHyper(h, field));
  return h;
}

absl::StatusOr<train::LayerConfig> LayerConfigFrom(const v1::CreateLayerRequest& req) {
  train::LayerConfig c;
  c.in_features = req.in_features();
  c.out_features = req.out_features();
  if (req.format() != v1::FORMAT_UNSPECIFIED && req.format() != v1::CSR && req.format() != v1::NM) {
    const std::string name = v1::Format_Name(req.format());
    return absl::InvalidArgumentError(
        StrCat("format = ", name.empty() ? StrCat(static_cast<int>(req.format())) : name,
               " is not supported for layers (CSR or NM)"));
  }
  c.format = req.format() == v1::NM ? Format::kNm : Format::kCsr;
  c.nm_n = req.nm_n();
  c.nm_m = req.nm_m();
  c.sparsity = req.sparsity();
  // An N:M layer's sparsity follows from n:m; 0 (unset) means exactly that.
  if (c.format == Format::kNm && c.sparsity == 0 && c.nm_m > 0) {
    c.sparsity = 1.0 - static_cast<double>(c.nm_n) / c.nm_m;
  }
  switch (req.init()) {
    case v1::LAYER_INIT_UNSPECIFIED:
    case v1::DENSE_PRUNE:
      c.init = train::InitKind::kDensePrune;
      break;
    case v1::RANDOM_PATTERN:
      c.init = train::InitKind::kRandomPattern;
      break;
    default:
      return absl::InvalidArgumentError(StrCat("init = ", static_cast<int>(req.init()),
                                               " is not a layer init (DENSE_PRUNE, "
                                               "RANDOM_PATTERN)"));
  }
  c.bias = req.bias();
  c.relu = req.relu();
  c.seed = req.seed();
  if (req.has_optimizer()) {
    ASSIGN_OR_RETURN(c.optimizer, OptimizerFrom(req.optimizer(), "optimizer"));
  }
  if (req.has_pruning()) {
    const v1::GradualPruning& p = req.pruning();
    c.pruning.enabled = true;
    c.pruning.initial_sparsity = p.initial_sparsity();
    c.pruning.final_sparsity = p.final_sparsity();
    c.pruning.start_step = p.start_step();
    c.pruning.interval = p.interval();
    c.pruning.count = p.count();
  }
  if (req.has_rigl()) {
    const v1::Rigl& r = req.rigl();
    c.rigl.enabled = true;
    c.rigl.alpha = r.alpha();
    c.rigl.interval = r.interval();
    c.rigl.end_step = r.end_step();
    c.rigl.tile_rows = r.tile_rows();
  }
  c.max_pending = req.max_pending() == 0 ? c.max_pending : req.max_pending();
  RETURN_IF_ERROR(train::CheckLayerConfig(c));
  return c;
}

absl::Status CheckLayerName(const std::string& name) {
  constexpr size_t kMaxName = 256;
  if (name.size() > kMaxName) {
    return absl::InvalidArgumentError(
        StrCat("name is ", name.size(), " bytes long (at most ", kMaxName, ")"));
  }
  for (unsigned char ch : name) {
    if (ch < 0x20 || ch == 0x7f) {
      return absl::InvalidArgumentError(
          StrCat("name contains the control character ", static_cast<int>(ch)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckCallId(const std::string& call_id, bool may_be_empty) {
  if (call_id.empty()) {
    if (may_be_empty) return absl::OkStatus();
    return absl::InvalidArgumentError("call_id is missing (the id given to Forward)");
  }
  if (call_id.size() > kMaxCallIdBytes) {
    return absl::InvalidArgumentError(
        StrCat("call_id is ", call_id.size(), " bytes long (at most ", kMaxCallIdBytes, ")"));
  }
  for (unsigned char ch : call_id) {
    if (ch < 0x20 || ch == 0x7f) {
      return absl::InvalidArgumentError(
          StrCat("call_id contains the control character ", static_cast<int>(ch)));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckActivation(const TensorDesc& d, std::string_view field, int64_t features,
                             std::string_view features_name) {
  if (d.format != Format::kDense || d.dtype != DType::kF32 || d.shape.size() != 2 ||
      d.shape[1] != features) {
    return absl::InvalidArgumentError(StrCat(field, " is ", FormatName(d.format), " ",
                                             DTypeName(d.dtype), " ", ShapeText(d),
                                             "; the layer needs dense f32 [batch, ", features,
                                             "] (", features_name, " = ", features, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<float> GradScaleFrom(float grad_scale) {
  if (grad_scale == 0.0f) return 1.0f;
  if (!std::isfinite(grad_scale)) {
    return absl::InvalidArgumentError(
        StrCat("grad_scale = ", grad_scale, " is not finite (0 means 1)"));
  }
  return grad_scale;
}

int64_t RowEndFrom(int64_t row_end) { return row_end == 0 ? -1 : row_end; }

absl::StatusOr<LayerParameter> LayerParameterFrom(const std::string& name) {
  if (name == "weight") return LayerParameter::kWeight;
  if (name == "bias") return LayerParameter::kBias;
  if (name == "weight_grad") return LayerParameter::kWeightGrad;
  if (name == "bias_grad") return LayerParameter::kBiasGrad;
  return absl::InvalidArgumentError(
      StrCat("parameter = '", name, "' is not one of weight, bias, weight_grad, bias_grad"));
}

v1::LayerInfo DescribeLayer(const StoredLayer& stored, const std::string& device) {
  const train::SparseLinear& l = stored.layer;
  const train::LayerConfig& c = l.config();
  v1::LayerInfo info;
  info.set_id(stored.id);
  info.set_name(stored.name);
  info.set_in_features(c.in_features);
  info.set_out_features(c.out_features);
  const int64_t nnz = l.weight().desc().nnz;
  info.set_nnz(nnz);
  const double positions = static_cast<double>(c.in_features) * static_cast<double>(c.out_features);
  info.set_sparsity(positions > 0 ? 1.0 - static_cast<double>(nnz) / positions : 0.0);
  info.set_step(l.step());
  info.set_pending_calls(l.pending());
  info.set_device(device);
  info.set_bias(c.bias);
  info.set_relu(c.relu);
  info.set_config_json(train::LayerConfigToJson(c));
  return info;
}

}  // namespace sparsed::server
