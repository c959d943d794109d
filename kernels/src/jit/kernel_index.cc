#include "kernel_index.h"

#include <nlohmann/json.hpp>

#include "sparsed/str_cat.h"

namespace sparsed::jit {
namespace {

using nlohmann::json;

constexpr int kIndexVersion = 1;

absl::StatusOr<KernelCacheEntry> EntryFromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("must be an object");
  KernelCacheEntry e;
  for (auto [field, out] : {std::pair{"key", &e.key}, {"spec", &e.spec}, {"arch", &e.arch}}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) {
      return absl::InvalidArgumentError(StrCat(field, " must be a string"));
    }
    *out = it->get<std::string>();
  }
  for (auto [field, out] :
       {std::pair{"bytes", &e.bytes}, {"last_used_unix_ms", &e.last_used_unix_ms}}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
      return absl::InvalidArgumentError(StrCat(field, " must be a non-negative integer"));
    }
    *out = it->get<int64_t>();
  }
  return e;
}

}  // namespace

std::string KernelIndexToJson(const std::vector<KernelCacheEntry>& entries) {
  json list = json::array();
  for (const KernelCacheEntry& e : entries) {
    list.push_back({{"key", e.key},
                    {"spec", e.spec},
                    {"arch", e.arch},
                    {"bytes", e.bytes},
                    {"last_used_unix_ms", e.last_used_unix_ms}});
  }
  return json{{"version", kIndexVersion}, {"entries", std::move(list)}}.dump(2) + "\n";
}

absl::StatusOr<std::vector<KernelCacheEntry>> ParseKernelIndex(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("the top level must be an object");
  auto version = doc.find("version");
  if (version == doc.end() || *version != kIndexVersion) {
    return absl::InvalidArgumentError(StrCat("version must be ", kIndexVersion));
  }
  auto list = doc.find("entries");
  if (list == doc.end() || !list->is_array()) {
    return absl::InvalidArgumentError("entries must be an array");
  }
  std::vector<KernelCacheEntry> out;
  for (size_t i = 0; i < list->size(); ++i) {
    absl::StatusOr<KernelCacheEntry> e = EntryFromJson((*list)[i]);
    if (!e.ok()) {
      return absl::InvalidArgumentError(StrCat("entries[", i, "].", e.status().message()));
    }
    out.push_back(*std::move(e));
  }
  return out;
}

}  // namespace sparsed::jit
