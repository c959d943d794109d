#include "tune_json.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sparsed/str_cat.h"

namespace sparsed::tune::internal {
namespace {

using nlohmann::json;

bool IsTiming(double ms) { return std::isfinite(ms) && ms >= 0; }

// One entry of the "entries" array; the message names the field.
absl::StatusOr<TuneEntry> EntryFromJson(const json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("must be an object");
  TuneEntry e;
  for (const char* field : {"key", "variant"}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
      return absl::InvalidArgumentError(StrCat(field, " must be a non-empty string"));
    }
  }
  e.key = j.at("key").get<std::string>();
  e.variant = j.at("variant").get<std::string>();
  auto timings = j.find("timings_ms");
  if (timings == j.end() || !timings->is_object()) {
    return absl::InvalidArgumentError("timings_ms must be an object of candidate: milliseconds");
  }
  for (const auto& [name, ms] : timings->items()) {
    if (name.empty()) return absl::InvalidArgumentError("timings_ms has an empty candidate name");
    if (!ms.is_number() || !IsTiming(ms.get<double>())) {
      return absl::InvalidArgumentError(StrCat("timings_ms.", name, " must be a finite ",
                                               "non-negative number of milliseconds, got ",
                                               ms.dump()));
    }
    e.timings_ms[name] = ms.get<double>();
  }
  if (auto created = j.find("created_unix_ms"); created != j.end()) {
    if (!created->is_number_integer() || created->get<int64_t>() < 0) {
      return absl::InvalidArgumentError(
          StrCat("created_unix_ms must be a non-negative integer, got ", created->dump()));
    }
    e.created_unix_ms = created->get<int64_t>();
  }
  return e;
}

}  // namespace

std::string TuneEntriesToJson(const std::vector<const TuneEntry*>& entries) {
  json list = json::array();
  for (const TuneEntry* e : entries) {
    json timings = json::object();
    for (const auto& [name, ms] : e->timings_ms) timings[name] = ms;
    list.push_back({{"key", e->key},
                    {"variant", e->variant},
                    {"timings_ms", std::move(timings)},
                    {"created_unix_ms", e->created_unix_ms}});
  }
  json doc = {{"version", kTuneJsonVersion}, {"entries", std::move(list)}};
  return doc.dump(2) + "\n";
}

absl::StatusOr<std::vector<TuneEntry>> ParseTuneJson(const std::string& text) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix.
    std::string_view what = e.what();
    if (const size_t end = what.find("] "); what.starts_with('[') && end != what.npos) {
      what.remove_prefix(end + 2);
    }
    return absl::InvalidArgumentError(StrCat("not valid JSON: ", what));
  }
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("the top level must be an object {\"version\", \"entries\"}");
  }
  auto version = doc.find("version");
  if (version == doc.end() || !version->is_number_integer() ||
      version->get<int64_t>() != kTuneJsonVersion) {
    return absl::InvalidArgumentError(
        StrCat("version must be ", kTuneJsonVersion, ", got ",
               version == doc.end() ? std::string("nothing") : version->dump()));
  }
  auto list = doc.find("entries");
  if (list == doc.end() || !list->is_array()) {
    return absl::InvalidArgumentError("entries must be an array");
  }
  std::vector<TuneEntry> out;
  out.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    absl::StatusOr<TuneEntry> e = EntryFromJson((*list)[i]);
    if (e.ok()) {
      if (absl::Status s = ValidateTuneEntry(*e); !s.ok()) e = s;
    }
    if (!e.ok()) {
      return absl::InvalidArgumentError(StrCat("entry ", i, ": ", e.status().message()));
    }
    out.push_back(*std::move(e));
  }
  return out;
}

absl::Status ValidateTuneEntry(const TuneEntry& e) {
  if (e.key.empty()) return absl::InvalidArgumentError("key must be a non-empty string");
  if (e.variant.empty()) return absl::InvalidArgumentError("variant must be a non-empty string");
  if (e.key.size() > kMaxTuneKeyBytes) {
    return absl::InvalidArgumentError(
        StrCat("key has ", e.key.size(), " bytes (at most ", kMaxTuneKeyBytes, ")"));
  }
  if (e.variant.size() > kMaxTuneVariantBytes) {
    return absl::InvalidArgumentError(
        StrCat("variant has ", e.variant.size(), " bytes (at most ", kMaxTuneVariantBytes, ")"));
  }
  if (e.timings_ms.size() > kMaxTuneCandidates) {
    return absl::InvalidArgumentError(StrCat("timings_ms has ", e.timings_ms.size(),
                                             " candidates (at most ", kMaxTuneCandidates, ")"));
  }
  for (const auto& [name, ms] : e.timings_ms) {
    if (name.empty()) return absl::InvalidArgumentError("timings_ms has an empty candidate name");
    if (name.size() > kMaxTuneVariantBytes) {
      return absl::InvalidArgumentError(StrCat("timings_ms has a candidate name of ", name.size(),
                                               " bytes (at most ", kMaxTuneVariantBytes, ")"));
    }
    if (!IsTiming(ms)) {
      return absl::InvalidArgumentError(StrCat(
          "timings_ms.", name, " must be a finite non-negative number of milliseconds, got ", ms));
    }
  }
  if (e.created_unix_ms < 0) {
    return absl::InvalidArgumentError("created_unix_ms must be non-negative");
  }
  return absl::OkStatus();
}

}  // namespace sparsed::tune::internal
