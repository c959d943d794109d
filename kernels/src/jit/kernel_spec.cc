// KernelSpec text and JSON forms (sparsed/kernel_cache.h).
#include <nlohmann/json.hpp>

#include "sparsed/kernel_cache.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using nlohmann::json;

absl::Status Invalid(size_t index, std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(StrCat("kernels[", index, "]", field, " ", what));
}

// A parameter value as text: strings as they are, numbers as decimal text.
bool ParamText(const json& v, std::string* out) {
  if (v.is_string()) {
    *out = v.get<std::string>();
  } else if (v.is_number()) {
    // Integers exactly; floats as the shortest text that reads back the same.
    *out = v.dump();
  } else {
    return false;
  }
  return true;
}

absl::StatusOr<KernelSpec> SpecFromJson(const json& j, size_t i) {
  if (!j.is_object()) return Invalid(i, "", "must be an object {\"kernel\", \"params\"}");
  for (const auto& [field, value] : j.items()) {
    if (field != "kernel" && field != "params") {
      return Invalid(i, StrCat(".", field), "is not a known field (kernel, params)");
    }
  }
  KernelSpec spec;
  auto kernel = j.find("kernel");
  if (kernel == j.end() || !kernel->is_string() || kernel->get_ref<const std::string&>().empty()) {
    return Invalid(i, ".kernel", "must be a non-empty string");
  }
  spec.kernel = kernel->get<std::string>();
  auto params = j.find("params");
  if (params == j.end()) return spec;  // a kernel without parameters
  if (!params->is_object()) return Invalid(i, ".params", "must be an object");
  for (const auto& [name, value] : params->items()) {
    if (name.empty()) return Invalid(i, ".params", "has an empty parameter name");
    std::string text;
    if (!ParamText(value, &text)) {
      return Invalid(i, StrCat(".params.", name),
                     StrCat("must be a string or number, got ", value.dump()));
    }
    spec.params.emplace(name, std::move(text));
  }
  return spec;
}

}  // namespace

std::string KernelSpec::ToString() const {
  std::string s = StrCat(kernel, "(");
  bool first = true;
  for (const auto& [k, v] : params) {
    s += StrCat(first ? "" : ",", k, "=", v);
    first = false;
  }
  s += ")";
  return s;
}

absl::StatusOr<std::vector<KernelSpec>> ParseKernelSpecs(std::string_view text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    std::string_view what = e.what();
    if (const size_t end = what.find("] "); what.starts_with('[') && end != what.npos) {
      what.remove_prefix(end + 2);
    }
    return absl::InvalidArgumentError(StrCat("kernel specs are not valid JSON: ", what));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        "kernel specs: the top level must be an object {\"kernels\"}");
  }
  auto list = doc.find("kernels");
  if (list == doc.end() || !list->is_array()) {
    return absl::InvalidArgumentError("kernel specs: kernels must be an array");
  }
  std::vector<KernelSpec> specs;
  specs.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    absl::StatusOr<KernelSpec> spec = SpecFromJson((*list)[i], i);
    if (!spec.ok()) return spec.status();
    specs.push_back(*std::move(spec));
  }
  return specs;
}

std::string KernelSpecsToJson(const std::vector<KernelSpec>& specs) {
  json list = json::array();
  for (const KernelSpec& s : specs) {
    json params = json::object();
    for (const auto& [k, v] : s.params) params[k] = v;
    list.push_back({{"kernel", s.kernel}, {"params", std::move(params)}});
  }
  return json{{"kernels", std::move(list)}}.dump(2) + "\n";
}

}  // namespace sparsed
