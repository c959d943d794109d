#include "server/layer_checkpoint.h"

#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/numbers.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

std::string EntryName(const std::string& id, const std::string& name, const std::string& role) {
  return StrCat("layer/", name.empty() ? id : name, "/", role);
}

std::string LabelOf(const checkpoint::Entry& e, const std::string& key) {
  auto it = e.labels.find(key);
  return it == e.labels.end() ? std::string() : it->second;
}

}  // namespace

absl::StatusOr<ExportedLayer> ExportLayer(StoredLayer& layer) {
  ExportedLayer out;
  out.id = layer.id;
  out.name = layer.name;
  std::lock_guard lock(layer.mu);
  ASSIGN_OR_RETURN(out.state, layer.layer.ExportState(Device::Cpu()));
  return out;
}

void AppendLayerEntries(const ExportedLayer& layer, std::vector<checkpoint::EntryRef>* refs) {
  auto add = [&](const std::string& role, const Tensor* t) {
    std::map<std::string, std::string> labels;
    labels[kLayerLabel] = layer.id;
    labels[kLayerNameLabel] = layer.name;
    labels[kLayerRoleLabel] = role;
    if (role == "weight") {
      labels[kLayerConfigLabel] = train::LayerConfigToJson(layer.state.config);
      labels[kLayerStepLabel] = StrCat(layer.state.step);
    }
    const std::string name = EntryName(layer.id, layer.name, role);
    refs->push_back({StrCat(layer.id, "/", role), name, std::move(labels), t});
  };
  add("weight", &layer.state.weight);
  if (layer.state.bias.has_value()) add("bias", &*layer.state.bias);
  for (const auto& [role, t] : layer.state.optimizer_state) add(role, &t);
}

absl::StatusOr<std::vector<SavedLayer>> TakeLayers(std::vector<checkpoint::Entry>& entries,
                                                   const std::string& source) {
  std::vector<SavedLayer> layers;
  std::map<std::string, size_t> index_of;  // saved id -> position in `layers`
  std::map<std::string, bool> has_weight;
  std::vector<checkpoint::Entry> rest;
  for (checkpoint::Entry& e : entries) {
    const std::string saved_id = LabelOf(e, kLayerLabel);
    if (saved_id.empty()) {
      rest.push_back(std::move(e));
      continue;
    }
    const std::string what =
        StrCat(source, ": entry '", e.name.empty() ? e.id : e.name, "' of layer ", saved_id);
    auto [it, fresh] = index_of.try_emplace(saved_id, layers.size());
    if (fresh) {
      layers.push_back({saved_id, LabelOf(e, kLayerNameLabel), {}});
    }
    SavedLayer& layer = layers[it->second];
    if (LabelOf(e, kLayerNameLabel) != layer.name) {
      return absl::InvalidArgumentError(
          StrCat(what, ": ", kLayerNameLabel, " = '", LabelOf(e, kLayerNameLabel),
                 "' differs from its other entries' ('", layer.name, "')"));
    }
    const std::string role = LabelOf(e, kLayerRoleLabel);
    if (role == "weight") {
      if (has_weight[saved_id])
        return absl::InvalidArgumentError(StrCat(what, ": a second weight"));
      has_weight[saved_id] = true;
      absl::StatusOr<train::LayerConfig> config =
          train::LayerConfigFromJson(LabelOf(e, kLayerConfigLabel));
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            StrCat(what, ": ", kLayerConfigLabel, ": ", config.status().message()));
      }
      layer.state.config = *std::move(config);
      const std::string step = LabelOf(e, kLayerStepLabel);
      if (!absl::SimpleAtoi(step, &layer.state.step) || layer.state.step < 0) {
        return absl::InvalidArgumentError(
            StrCat(what, ": ", kLayerStepLabel, " = '", step, "' is not a step count"));
      }
      layer.state.weight = std::move(e.tensor);
    } else if (role == "bias") {
      if (layer.state.bias.has_value()) {
        return absl::InvalidArgumentError(StrCat(what, ": a second bias"));
      }
      layer.state.bias = std::move(e.tensor);
    } else if (role == "weight.state1" || role == "weight.state2" || role == "bias.state1" ||
               role == "bias.state2") {
      if (!layer.state.optimizer_state.try_emplace(role, std::move(e.tensor)).second) {
        return absl::InvalidArgumentError(StrCat(what, ": a second ", role));
      }
    } else {
      return absl::InvalidArgumentError(
          StrCat(what, ": ", kLayerRoleLabel, " = '", role,
                 "' is not a layer part (weight, bias, weight.state1, weight.state2, "
                 "bias.state1, bias.state2)"));
    }
  }
  for (const SavedLayer& layer : layers) {
    if (!has_weight[layer.saved_id]) {
      return absl::InvalidArgumentError(
          StrCat(source, ": layer ", layer.saved_id, " has no weight entry"));
    }
  }
  entries = std::move(rest);
  return layers;
}

}  // namespace sparsed::server
