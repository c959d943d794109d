// LayerConfig: range checks and the JSON form kept in checkpoints.
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/training.h"

namespace sparsed::train {
namespace {

using nlohmann::json;

absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

// A fraction in [0, 1) (sparsities: 1 would leave no weight).
absl::Status CheckFraction(std::string_view field, double v) {
  if (!std::isfinite(v) || v < 0.0 || v >= 1.0) {
    return Invalid(StrCat(field, " = ", v, " must be in [0, 1)"));
  }
  return absl::OkStatus();
}

absl::Status CheckAtLeast(std::string_view field, int64_t v, int64_t lo) {
  if (v < lo) return Invalid(StrCat(field, " = ", v, " must be >= ", lo));
  return absl::OkStatus();
}

constexpr int64_t kMaxPendingLimit = int64_t{1} << 20;

std::string_view InitName(InitKind k) {
  switch (k) {
    case InitKind::kDensePrune:
      return "dense_prune";
    case InitKind::kRandomPattern:
      return "random_pattern";
  }
  return "unknown";
}

std::string_view OptimizerName(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kSgd:
      return "sgd";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
  }
  return "unknown";
}

// Reads the members of one JSON object into typed fields, naming the field
// (with its path) on a type error or an unknown member.
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string prefix) : j_(j), prefix_(std::move(prefix)) {}

  absl::Status CheckObject() const {
    if (!j_.is_object()) {
      return Invalid(StrCat(prefix_.empty() ? "config" : prefix_.substr(0, prefix_.size() - 1),
                            " must be a JSON object, got ", j_.dump()));
    }
    return absl::OkStatus();
  }
  // Unknown members are rejected so that a misspelt field is not silently ignored.
  absl::Status CheckKnown(std::initializer_list<std::string_view> names) const {
    for (const auto& [key, value] : j_.items()) {
      bool known = false;
      for (std::string_view n : names) known = known || key == n;
      if (!known) return Invalid(StrCat(prefix_, key, " is not a known field"));
    }
    return absl::OkStatus();
  }
  const json* Find(std::string_view name) const {
    auto it = j_.find(std::string(name));
    return it == j_.end() ? nullptr : &*it;
  }
  std::string Field(std::string_view name) const { return StrCat(prefix_, name); }

  template <class T>
  absl::Status Int(std::string_view name, T& out) const {
    const json* v = Find(name);
    if (v == nullptr) return absl::OkStatus();
    if constexpr (std::is_unsigned_v<T>) {
      if (!v->is_number_unsigned()) {
        return Invalid(StrCat(Field(name), " = ", v->dump(), " must be a non-negative integer"));
      }
      out = v->get<T>();
    } else {
      if (!v->is_number_integer() ||
          (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX})) {
        return Invalid(StrCat(Field(name), " = ", v->dump(), " must be an integer"));
      }
      out = v->get<T>();
    }
    return absl::OkStatus();
  }
  template <class T>
  absl::Status Number(std::string_view name, T& out) const {
    const json* v = Find(name);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number()) return Invalid(StrCat(Field(name), " = ", v->dump(), " must be a number"));
    out = static_cast<T>(v->get<double>());
    return absl::OkStatus();
  }
  absl::Status Bool(std::string_view name, bool& out) const {
    const json* v = Find(name);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) {
      return Invalid(StrCat(Field(name), " = ", v->dump(), " must be true or false"));
    }
    out = v->get<bool>();
    return absl::OkStatus();
  }
  absl::Status String(std::string_view name, std::string& out, bool& present) const {
    const json* v = Find(name);
    present = v != nullptr;
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return Invalid(StrCat(Field(name), " = ", v->dump(), " must be a string"));
    out = v->get<std::string>();
    return absl::OkStatus();
  }

 private:
  const json& j_;
  std::string prefix_;
};

absl::Status OptimizerFromJson(const json& j, OptimizerHyper& h) {
  ObjectReader r(j, "optimizer.");
  RETURN_IF_ERROR(r.CheckObject());
  RETURN_IF_ERROR(r.CheckKnown(
      {"kind", "lr", "momentum", "nesterov", "weight_decay", "beta1", "beta2", "eps"}));
  std::string kind;
  bool has_kind = false;
  RETURN_IF_ERROR(r.String("kind", kind, has_kind));
  if (has_kind) {
    if (kind == "sgd") {
      h.kind = OptimizerKind::kSgd;
    } else if (kind == "adam") {
      h.kind = OptimizerKind::kAdam;
    } else if (kind == "adamw") {
      h.kind = OptimizerKind::kAdamW;
    } else {
      return Invalid(StrCat("optimizer.kind = \"", kind, "\" is not sgd, adam or adamw"));
    }
  }
  RETURN_IF_ERROR(r.Number("lr", h.lr));
  RETURN_IF_ERROR(r.Number("momentum", h.momentum));
  RETURN_IF_ERROR(r.Bool("nesterov", h.nesterov));
  RETURN_IF_ERROR(r.Number("weight_decay", h.weight_decay));
  RETURN_IF_ERROR(r.Number("beta1", h.beta1));
  RETURN_IF_ERROR(r.Number("beta2", h.beta2));
  RETURN_IF_ERROR(r.Number("eps", h.eps));
  return absl::OkStatus();
}

absl::Status PruningFromJson(const json& j, GradualPruning& p) {
  ObjectReader r(j, "pruning.");
  RETURN_IF_ERROR(r.CheckObject());
  RETURN_IF_ERROR(r.CheckKnown(
      {"enabled", "initial_sparsity", "final_sparsity", "start_step", "interval", "count"}));
  RETURN_IF_ERROR(r.Bool("enabled", p.enabled));
  RETURN_IF_ERROR(r.Number("initial_sparsity", p.initial_sparsity));
  RETURN_IF_ERROR(r.Number("final_sparsity", p.final_sparsity));
  RETURN_IF_ERROR(r.Int("start_step", p.start_step));
  RETURN_IF_ERROR(r.Int("interval", p.interval));
  RETURN_IF_ERROR(r.Int("count", p.count));
  return absl::OkStatus();
}

absl::Status RiglFromJson(const json& j, RiglConfig& c) {
  ObjectReader r(j, "rigl.");
  RETURN_IF_ERROR(r.CheckObject());
  RETURN_IF_ERROR(r.CheckKnown({"enabled", "alpha", "interval", "end_step", "tile_rows"}));
  RETURN_IF_ERROR(r.Bool("enabled", c.enabled));
  RETURN_IF_ERROR(r.Number("alpha", c.alpha));
  RETURN_IF_ERROR(r.Int("interval", c.interval));
  RETURN_IF_ERROR(r.Int("end_step", c.end_step));
  RETURN_IF_ERROR(r.Int("tile_rows", c.tile_rows));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckLayerConfig(const LayerConfig& c) {
  RETURN_IF_ERROR(CheckAtLeast("in_features", c.in_features, 1));
  RETURN_IF_ERROR(CheckAtLeast("out_features", c.out_features, 1));
  // The weight must be describable: [out, in] with int64 indices at full density.
  TensorDesc w;
  w.format = Format::kCsr;
  w.index_dtype = DType::kI64;
  w.shape = {c.out_features, c.in_features};
  if (c.in_features > INT64_MAX / c.out_features) {
    return Invalid(StrCat("in_features = ", c.in_features, " times out_features = ", c.out_features,
                          " overflows"));
  }
  w.nnz = c.in_features * c.out_features;
  RETURN_IF_ERROR(ValidateDesc(w, "weight"));
  if (c.format == Format::kNm) {
    if (c.nm_n < 1 || c.nm_m > 32 || c.nm_n >= c.nm_m) {
      return Invalid(StrCat("nm = ", c.nm_n, ":", c.nm_m, " must have 1 <= n < m <= 32"));
    }
    if (c.in_features % c.nm_m != 0) {
      return Invalid(StrCat("in_features = ", c.in_features, " is not a multiple of m = ", c.nm_m,
                            " (nm = ", c.nm_n, ":", c.nm_m, ")"));
    }
    const double kept = static_cast<double>(c.nm_n) / c.nm_m;
    if (std::fabs(c.sparsity - (1.0 - kept)) > 1e-9) {
      return Invalid(StrCat("sparsity = ", c.sparsity, " but an ", c.nm_n, ":", c.nm_m,
                            " layer keeps ", c.nm_n, " of every ", c.nm_m, " weights (sparsity ",
                            1.0 - kept, ")"));
    }
    if (c.pruning.enabled || c.rigl.enabled) {
      return Invalid(StrCat(c.pruning.enabled ? "pruning" : "rigl",
                            " changes the pattern, but an N:M layer keeps its ", c.nm_n, ":",
                            c.nm_m, " pattern (use a csr layer)"));
    }
  } else if (c.format != Format::kCsr) {
    return Invalid(StrCat("format = ", FormatName(c.format), " is not supported (csr or nm)"));
  } else if (c.nm_n != 0 || c.nm_m != 0) {
    return Invalid(StrCat("nm = ", c.nm_n, ":", c.nm_m, " is given for a csr layer (format nm)"));
  }
  RETURN_IF_ERROR(CheckFraction("sparsity", c.sparsity));
  if (c.init != InitKind::kDensePrune && c.init != InitKind::kRandomPattern) {
    return Invalid(StrCat("init = ", static_cast<int>(c.init),
                          " is not dense_prune (1) or random_pattern (2)"));
  }
  RETURN_IF_ERROR(CheckOptimizerHyper(c.optimizer, "optimizer"));
  if (c.pruning.enabled) {
    RETURN_IF_ERROR(CheckFraction("pruning.initial_sparsity", c.pruning.initial_sparsity));
    RETURN_IF_ERROR(CheckFraction("pruning.final_sparsity", c.pruning.final_sparsity));
    RETURN_IF_ERROR(CheckAtLeast("pruning.start_step", c.pruning.start_step, 0));
    RETURN_IF_ERROR(CheckAtLeast("pruning.interval", c.pruning.interval, 1));
    RETURN_IF_ERROR(CheckAtLeast("pruning.count", c.pruning.count, 1));
    if (c.pruning.count > INT64_MAX / c.pruning.interval ||
        c.pruning.start_step > INT64_MAX - c.pruning.interval * c.pruning.count) {
      return Invalid(StrCat("pruning.start_step + interval * count = ", c.pruning.start_step, " + ",
                            c.pruning.interval, " * ", c.pruning.count, " overflows"));
    }
  }
  if (c.rigl.enabled) {
    if (!std::isfinite(c.rigl.alpha) || c.rigl.alpha < 0.0 || c.rigl.alpha > 1.0) {
      return Invalid(StrCat("rigl.alpha = ", c.rigl.alpha, " must be in [0, 1]"));
    }
    RETURN_IF_ERROR(CheckAtLeast("rigl.interval", c.rigl.interval, 1));
    RETURN_IF_ERROR(CheckAtLeast("rigl.end_step", c.rigl.end_step, 1));
    RETURN_IF_ERROR(CheckAtLeast("rigl.tile_rows", c.rigl.tile_rows, 0));
  }
  RETURN_IF_ERROR(CheckAtLeast("max_pending", c.max_pending, 0));
  if (c.max_pending > kMaxPendingLimit) {
    return Invalid(StrCat("max_pending = ", c.max_pending, " must be <= ", kMaxPendingLimit));
  }
  return absl::OkStatus();
}

std::string LayerConfigToJson(const LayerConfig& c) {
  const OptimizerHyper& o = c.optimizer;
  json j = {
      {"in_features", c.in_features},
      {"out_features", c.out_features},
      {"format", std::string(FormatName(c.format))},
      {"sparsity", c.sparsity},
      {"init", std::string(InitName(c.init))},
      {"bias", c.bias},
      {"relu", c.relu},
      {"seed", c.seed},
      {"optimizer",
       {{"kind", std::string(OptimizerName(o.kind))},
        {"lr", o.lr},
        {"momentum", o.momentum},
        {"nesterov", o.nesterov},
        {"weight_decay", o.weight_decay},
        {"beta1", o.beta1},
        {"beta2", o.beta2},
        {"eps", o.eps}}},
      {"pruning",
       {{"enabled", c.pruning.enabled},
        {"initial_sparsity", c.pruning.initial_sparsity},
        {"final_sparsity", c.pruning.final_sparsity},
        {"start_step", c.pruning.start_step},
        {"interval", c.pruning.interval},
        {"count", c.pruning.count}}},
      {"rigl",
       {{"enabled", c.rigl.enabled},
        {"alpha", c.rigl.alpha},
        {"interval", c.rigl.interval},
        {"end_step", c.rigl.end_step},
        {"tile_rows", c.rigl.tile_rows}}},
      {"max_pending", c.max_pending},
  };
  if (c.format == Format::kNm) {
    j["nm_n"] = c.nm_n;
    j["nm_m"] = c.nm_m;
  }
  return j.dump();
}

absl::StatusOr<LayerConfig> LayerConfigFromJson(std::string_view text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    return Invalid(StrCat("config is not valid JSON: ", e.what()));
  }
  LayerConfig c;
  ObjectReader r(j, "");
  RETURN_IF_ERROR(r.CheckObject());
  RETURN_IF_ERROR(
      r.CheckKnown({"in_features", "out_features", "format", "sparsity", "init", "bias", "relu",
                    "seed", "optimizer", "pruning", "rigl", "max_pending", "nm_n", "nm_m"}));
  RETURN_IF_ERROR(r.Int("in_features", c.in_features));
  RETURN_IF_ERROR(r.Int("out_features", c.out_features));
  std::string text_value;
  bool present = false;
  RETURN_IF_ERROR(r.String("format", text_value, present));
  if (present) {
    std::optional<Format> f = ParseFormat(text_value);
    if (!f) return Invalid(StrCat("format = \"", text_value, "\" is not a known format"));
    c.format = *f;
  }
  RETURN_IF_ERROR(r.Number("sparsity", c.sparsity));
  RETURN_IF_ERROR(r.String("init", text_value, present));
  if (present) {
    if (text_value == "dense_prune") {
      c.init = InitKind::kDensePrune;
    } else if (text_value == "random_pattern") {
      c.init = InitKind::kRandomPattern;
    } else {
      return Invalid(StrCat("init = \"", text_value, "\" is not dense_prune or random_pattern"));
    }
  }
  RETURN_IF_ERROR(r.Bool("bias", c.bias));
  RETURN_IF_ERROR(r.Bool("relu", c.relu));
  RETURN_IF_ERROR(r.Int("seed", c.seed));
  if (const json* o = r.Find("optimizer")) RETURN_IF_ERROR(OptimizerFromJson(*o, c.optimizer));
  if (const json* p = r.Find("pruning")) RETURN_IF_ERROR(PruningFromJson(*p, c.pruning));
  if (const json* g = r.Find("rigl")) RETURN_IF_ERROR(RiglFromJson(*g, c.rigl));
  RETURN_IF_ERROR(r.Int("max_pending", c.max_pending));
  int64_t n = 0, m = 0;
  RETURN_IF_ERROR(r.Int("nm_n", n));
  RETURN_IF_ERROR(r.Int("nm_m", m));
  if (n < 0 || n > 32 || m < 0 || m > 32) {
    return Invalid(StrCat("nm = ", n, ":", m, " must have 1 <= n < m <= 32"));
  }
  c.nm_n = static_cast<int>(n);
  c.nm_m = static_cast<int>(m);
  RETURN_IF_ERROR(CheckLayerConfig(c));
  return c;
}

}  // namespace sparsed::train
