// Checks of the Training and TrainingOps request fields, turning them into
// the kernel-side types of sparsed/training.h and train_ops.h. Errors are
// INVALID_ARGUMENT naming the request field and value ("format", "init",
// "optimizer.kind", "call_id", "x", "grad_scale", "parameter", ...); what the
// layer configuration itself must satisfy is checked by
// train::CheckLayerConfig, which names its fields the same way.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/layer_store.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"
#include "sparsed/training.h"
#include "sparsed/v1/training.pb.h"

namespace sparsed::server {

// Longest call_id a client may use.
inline constexpr size_t kMaxCallIdBytes = 256;

// The caller's layer a reference names: NOT_FOUND for an unknown id or name
// (or another tenant's),
// INVALID_ARGUMENT naming `field` when the reference is empty.
absl::StatusOr<LayerPtr> ResolveLayer(const LayerStore& layers, const Caller& caller,
                                      const v1::LayerRef& ref, std::string_view field = "layer");

// Unset fields take the documented defaults (SGD; beta1 0.9, beta2 0.999,
// eps 1e-8 where 0), then the ranges are checked (CheckOptimizerHyper).
absl::StatusOr<OptimizerHyper> OptimizerFrom(const v1::OptimizerConfig& proto,
                                             std::string_view field);

// The whole configuration of a new layer, checked (CheckLayerConfig).
absl::StatusOr<train::LayerConfig> LayerConfigFrom(const v1::CreateLayerRequest& req);

// A layer's name (optional): at most 256 bytes, no control characters.
absl::Status CheckLayerName(const std::string& name);

// call_id: at most kMaxCallIdBytes, no control characters; empty only when
// `may_be_empty` (an inference-only forward).
absl::Status CheckCallId(const std::string& call_id, bool may_be_empty);

// An activation or its gradient: dense f32 [batch, features].
absl::Status CheckActivation(const TensorDesc& d, std::string_view field, int64_t features,
                             std::string_view features_name);

// grad_scale: 0 means 1; otherwise finite and non-zero.
absl::StatusOr<float> GradScaleFrom(float grad_scale);

// row_end 0 or -1: through the last row (-1 for the kernels); other values
// are passed on for the kernel's range check.
int64_t RowEndFrom(int64_t row_end);

// The parameters GetParameter serves.
enum class LayerParameter { kWeight, kBias, kWeightGrad, kBiasGrad };
absl::StatusOr<LayerParameter> LayerParameterFrom(const std::string& name);

// A description of a layer for LayerInfo (callers hold the layer's mutex).
v1::LayerInfo DescribeLayer(const StoredLayer& stored, const std::string& device);

}  // namespace sparsed::server
