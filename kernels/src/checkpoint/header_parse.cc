// Strict parsing of a checkpoint's safetensors header: nothing is trusted,
// every field is type-checked and every size is checked for overflow before
// it is used.
#include <algorithm>
#include <climits>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "safetensors_layout.h"
#include "sparsed/checkpoint.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::checkpoint::internal {
namespace {

using nlohmann::json;

template <class... Args>
absl::Status Bad(std::string_view source, const Args&... args) {
  return absl::InvalidArgumentError(StrCat(source, ": ", args...));
}

// Short, printable rendering of a JSON value for error messages.
std::string Show(const json& v) {
  // Nested values are not dumped: dump() recurses, and a hostile header may
  // nest millions of levels deep.
  if (v.is_structured()) {
    for (const json& e : v) {
      if (e.is_structured()) return StrCat("an ", v.type_name(), " of ", v.size(), " items");
    }
  }
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (s.size() > 80) s = s.substr(0, 77) + "...";
  return s;
}

absl::StatusOr<int64_t> GetInt(const json& v, std::string_view source, std::string_view what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) return Bad(source, what, " is too large: ", u);
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return Bad(source, what, " must be an integer, got ", Show(v));
}

absl::StatusOr<int64_t> GetNonNegative(const json& v, std::string_view source,
                                       std::string_view what) {
  ASSIGN_OR_RETURN(const int64_t i, GetInt(v, source, what));
  if (i < 0) return Bad(source, what, " must be >= 0, got ", i);
  return i;
}

absl::StatusOr<std::string> GetString(const json& v, std::string_view source,
                                      std::string_view what) {
  if (!v.is_string()) return Bad(source, what, " must be a string, got ", Show(v));
  return v.get<std::string>();
}

// Checks that `obj` is an object with exactly the keys `keys`.
absl::Status ExpectKeys(const json& obj, const std::set<std::string>& keys, std::string_view source,
                        std::string_view what) {
  if (!obj.is_object()) return Bad(source, what, " must be an object, got ", Show(obj));
  for (const auto& [k, v] : obj.items()) {
    if (!keys.count(k)) return Bad(source, what, " has an unknown field '", k, "'");
  }
  for (const std::string& k : keys) {
    if (!obj.contains(k)) return Bad(source, what, " lacks the field '", k, "'");
  }
  return absl::OkStatus();
}

absl::StatusOr<DType> ParseArrayDType(const json& v, std::string_view source,
                                      std::string_view what) {
  ASSIGN_OR_RETURN(const std::string s, GetString(v, source, what));
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kI32, DType::kI64}) {
    if (s == SafetensorsDType(t)) return t;
  }
  return Bad(source, what, " is not one of F32, F16, BF16, I32, I64: '", s, "'");
}

absl::StatusOr<ArrayInfo> ParseArray(const std::string& key, const json& v, uint64_t data_size,
                                     std::string_view source) {
  const std::string what = StrCat("array '", key, "'");
  RETURN_IF_ERROR(ExpectKeys(v, {"dtype", "shape", "data_offsets"}, source, what));
  ArrayInfo a;
  ASSIGN_OR_RETURN(a.dtype, ParseArrayDType(v["dtype"], source, what + " dtype"));
  const json& shape = v["shape"];
  if (!shape.is_array()) return Bad(source, what, " shape must be an array, got ", Show(shape));
  uint64_t count = 1;
  bool overflow = false;
  for (const json& d : shape) {
    ASSIGN_OR_RETURN(const int64_t extent, GetNonNegative(d, source, what + " shape extent"));
    a.shape.push_back(extent);
    const uint64_t e = static_cast<uint64_t>(extent);
    if (e != 0 && count > static_cast<uint64_t>(INT64_MAX) / e) overflow = true;
    count *= e;  // may wrap, but then overflow is set
  }
  // Only a 0 extent makes an empty array (a wrapped product may also read 0).
  const bool empty = std::count(a.shape.begin(), a.shape.end(), 0) > 0;
  if (empty) {
    count = 0;
    overflow = false;
  }
  const uint64_t size = static_cast<uint64_t>(SizeOf(a.dtype));
  if (overflow || count > static_cast<uint64_t>(INT64_MAX) / size) {
    return Bad(source, what, " shape ", Show(shape), " is too large");
  }
  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2) {
    return Bad(source, what, " data_offsets must be [begin, end], got ", Show(off));
  }
  ASSIGN_OR_RETURN(const int64_t begin, GetNonNegative(off[0], source, what + " begin offset"));
  ASSIGN_OR_RETURN(const int64_t end, GetNonNegative(off[1], source, what + " end offset"));
  a.begin = static_cast<uint64_t>(begin);
  a.end = static_cast<uint64_t>(end);
  if (a.begin > a.end) return Bad(source, what, " begin offset ", begin, " > end offset ", end);
  if (a.end > data_size) {
    return Bad(source, what, " end offset ", end, " is beyond the data region of ", data_size,
               " bytes");
  }
  if (a.end - a.begin != count * size) {
    return Bad(source, what, " holds ", a.end - a.begin, " bytes but shape ", Show(shape), " of ",
               SafetensorsDType(a.dtype), " needs ", count * size);
  }
  return a;
}

// Arrays back to back in offset order, covering the data region exactly.
absl::Status CheckContiguous(const std::map<std::string, ArrayInfo>& arrays, uint64_t data_size,
                             std::string_view source) {
  std::vector<std::pair<const std::string*, const ArrayInfo*>> order;
  for (const auto& [k, a] : arrays) order.emplace_back(&k, &a);
  std::sort(order.begin(), order.end(), [](const auto& x, const auto& y) {
    return std::make_pair(x.second->begin, x.second->end) <
           std::make_pair(y.second->begin, y.second->end);
  });
  uint64_t at = 0;
  for (const auto& [k, a] : order) {
    if (a->begin != at) {
      return Bad(source, "array '", *k, "' starts at offset ", a->begin, " but the previous ",
                 a->begin < at ? "one ends at " : "data ends at ", at,
                 a->begin < at ? " (overlap)" : " (hole)");
    }
    at = a->end;
  }
  if (at != data_size) {
    return Bad(source, "the arrays cover ", at, " bytes of a data region of ", data_size);
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseEmbeddedJson(const std::string& text, std::string_view source,
                                       std::string_view what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad(source, what, " is not valid JSON");
  return j;
}

absl::StatusOr<std::map<std::string, uint32_t>> ParseChecksums(const std::string& text,
                                                               std::string_view source) {
  ASSIGN_OR_RETURN(const json j, ParseEmbeddedJson(text, source, kChecksumsKey));
  if (!j.is_object()) return Bad(source, kChecksumsKey, " must be an object");
  std::map<std::string, uint32_t> out;
  for (const auto& [k, v] : j.items()) {
    const std::string what = StrCat(kChecksumsKey, " of '", k, "'");
    ASSIGN_OR_RETURN(const std::string hex, GetString(v, source, what));
    bool ok = hex.size() == 8;
    uint32_t crc = 0;
    for (const char c : hex) {
      if (c >= '0' && c <= '9') {
        crc = crc << 4 | static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        crc = crc << 4 | static_cast<uint32_t>(c - 'a' + 10);
      } else {
        ok = false;
      }
    }
    if (!ok) return Bad(source, what, " must be 8 lowercase hex digits, got '", hex, "'");
    out[k] = crc;
  }
  return out;
}

absl::StatusOr<TensorInfo> ParseTensor(const json& v, size_t index, Header& header,
                                       std::set<std::string>& used, bool version1,
                                       std::string_view source) {
  std::string what = StrCat("tensor #", index);
  RETURN_IF_ERROR(ExpectKeys(v,
                             {"key", "id", "name", "labels", "format", "dtype", "index_dtype",
                              "shape", "nnz", "block", "n", "m", "components"},
                             source, what));
  TensorInfo t;
  ASSIGN_OR_RETURN(t.key, GetString(v["key"], source, what + " key"));
  what = StrCat("tensor '", t.key, "'");
  ASSIGN_OR_RETURN(t.id, GetString(v["id"], source, what + " id"));
  ASSIGN_OR_RETURN(t.name, GetString(v["name"], source, what + " name"));
  if (version1 ? t.key.empty() || t.key != Version1TensorKey(t.id, t.name)
               : t.key.empty() || t.key != t.id) {
    return Bad(source, what,
               version1 ? " key must be its name or (without one) its id" : " key must be its id",
               ", name '", t.name, "', id '", t.id, "'");
  }
  const json& labels = v["labels"];
  if (!labels.is_object()) return Bad(source, what, " labels must be an object");
  for (const auto& [k, lv] : labels.items()) {
    ASSIGN_OR_RETURN(t.labels[k], GetString(lv, source, StrCat(what, " label '", k, "'")));
  }
  TensorDesc& d = t.desc;
  ASSIGN_OR_RETURN(const std::string format, GetString(v["format"], source, what + " format"));
  const std::optional<Format> f = ParseFormat(format);
  if (!f) return Bad(source, what, " format is unknown: '", format, "'");
  d.format = *f;
  for (auto [field, out] :
       {std::pair{"dtype", &d.dtype}, std::pair{"index_dtype", &d.index_dtype}}) {
    ASSIGN_OR_RETURN(const std::string s, GetString(v[field], source, StrCat(what, " ", field)));
    const std::optional<DType> dt = ParseDType(s);
    if (!dt) return Bad(source, what, " ", field, " is unknown: '", s, "'");
    *out = *dt;
  }
  const json& shape = v["shape"];
  if (!shape.is_array()) return Bad(source, what, " shape must be an array");
  for (const json& e : shape) {
    ASSIGN_OR_RETURN(const int64_t x, GetInt(e, source, what + " shape extent"));
    d.shape.push_back(x);
  }
  ASSIGN_OR_RETURN(d.nnz, GetInt(v["nnz"], source, what + " nnz"));
  const json& block = v["block"];
  if (!block.is_array() || block.size() != 2) return Bad(source, what, " block must be [R, C]");
  ASSIGN_OR_RETURN(d.block_rows, GetInt(block[0], source, what + " block rows"));
  ASSIGN_OR_RETURN(d.block_cols, GetInt(block[1], source, what + " block cols"));
  for (auto [field, out] : {std::pair{"n", &d.nm_n}, std::pair{"m", &d.nm_m}}) {
    ASSIGN_OR_RETURN(const int64_t x, GetInt(v[field], source, StrCat(what, " ", field)));
    if (x < INT_MIN || x > INT_MAX) return Bad(source, what, " ", field, " is out of range: ", x);
    *out = static_cast<int>(x);
  }
  RETURN_IF_ERROR(ValidateDesc(d, StrCat(source, ": ", what)));
  ASSIGN_OR_RETURN(t.specs, ComponentsOf(d));
  const json& comps = v["components"];
  if (!comps.is_object() || comps.size() != t.specs.size()) {
    return Bad(source, what, " components must name the ", t.specs.size(), " arrays of format ",
               format);
  }
  for (const ComponentSpec& spec : t.specs) {
    const std::string cw = StrCat(what, " component '", spec.name, "'");
    if (!comps.contains(spec.name)) return Bad(source, cw, " is missing");
    ASSIGN_OR_RETURN(std::string key, GetString(comps[spec.name], source, cw));
    if (key != ArrayKey(t.key, d.format, spec.name)) {
      return Bad(source, cw, " names the array '", key, "', expected '",
                 ArrayKey(t.key, d.format, spec.name), "'");
    }
    auto it = header.arrays.find(key);
    if (it == header.arrays.end()) return Bad(source, cw, ": no array '", key, "'");
    if (!used.insert(key).second) return Bad(source, "array '", key, "' is used twice");
    const ArrayInfo& a = it->second;
    if (a.dtype != spec.dtype) {
      return Bad(source, "array '", key, "' has dtype ", SafetensorsDType(a.dtype), " but ", cw,
                 " needs ", SafetensorsDType(spec.dtype));
    }
    const std::vector<int64_t> want =
        IsSparse(d.format) ? std::vector<int64_t>{spec.count} : d.shape;
    if (a.shape != want) {
      return Bad(source, "array '", key, "' has shape ", json(a.shape).dump(), " but ", cw,
                 " needs ", json(want).dump());
    }
    t.array_keys.push_back(std::move(key));
  }
  return t;
}

}  // namespace

absl::StatusOr<uint64_t> ParseHeaderLength(std::string_view prefix, uint64_t file_size,
                                           std::string_view source) {
  if (file_size < 8 || prefix.size() < 8) {
    return Bad(source, "file of ", file_size, " bytes is shorter than the 8-byte header length");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(prefix[i]);
  if (n < 2) return Bad(source, "header length ", n, " is below 2");
  if (n > kMaxHeaderBytes) return Bad(source, "header length ", n, " exceeds ", kMaxHeaderBytes);
  if (n > file_size - 8) {
    return Bad(source, "header length ", n, " exceeds the ", file_size - 8,
               " bytes after the length");
  }
  return n;
}

absl::StatusOr<Header> ParseHeader(std::string_view text, uint64_t data_size,
                                   std::string_view source) {
  const json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Bad(source, "the header is not valid JSON");
  if (!root.is_object()) return Bad(source, "the header must be a JSON object");
  Header h;
  const json* meta = nullptr;
  for (const auto& [k, v] : root.items()) {
    if (k == kMetadataKey) {
      meta = &v;
      continue;
    }
    ASSIGN_OR_RETURN(h.arrays[k], ParseArray(k, v, data_size, source));
  }
  RETURN_IF_ERROR(CheckContiguous(h.arrays, data_size, source));
  if (meta == nullptr) return Bad(source, "not a sparsed checkpoint: no ", kMetadataKey);
  RETURN_IF_ERROR(
      ExpectKeys(*meta, {"format", "version", kTensorsKey, kChecksumsKey}, source, kMetadataKey));
  std::map<std::string, std::string> m;
  for (const auto& [k, v] : meta->items()) {
    ASSIGN_OR_RETURN(m[k], GetString(v, source, StrCat(kMetadataKey, " value of '", k, "'")));
  }
  if (m["format"] != kFormatValue) {
    return Bad(source, "not a sparsed checkpoint: format '", m["format"], "'");
  }
  const bool version1 = m["version"] == kVersion1Value;
  if (m["version"] != kVersionValue && !version1) {
    return Bad(source, "unsupported checkpoint version '", m["version"], "'");
  }
  ASSIGN_OR_RETURN(h.checksums, ParseChecksums(m[kChecksumsKey], source));
  // The metadata has its own checksum: a damaged id, name or label that is
  // still valid JSON must not load as a different tensor.
  auto meta_crc = h.checksums.find(kTensorsKey);
  if (meta_crc == h.checksums.end()) return Bad(source, kChecksumsKey, " lacks ", kTensorsKey);
  const uint32_t actual = Crc32c(m[kTensorsKey]);
  if (actual != meta_crc->second) {
    return absl::DataLossError(StrCat(source, ": checksum mismatch for ", kTensorsKey,
                                      ": expected ", CrcHex(meta_crc->second), ", actual ",
                                      CrcHex(actual)));
  }
  if (h.checksums.size() != h.arrays.size() + 1) {
    return Bad(source, kChecksumsKey, " has ", h.checksums.size() - 1, " array checksums for ",
               h.arrays.size(), " arrays");
  }
  for (const auto& [k, a] : h.arrays) {
    if (!h.checksums.count(k)) return Bad(source, kChecksumsKey, " lacks array '", k, "'");
  }
  ASSIGN_OR_RETURN(const json tensors, ParseEmbeddedJson(m[kTensorsKey], source, kTensorsKey));
  if (!tensors.is_array()) return Bad(source, kTensorsKey, " must be an array");
  std::set<std::string> used;
  std::set<std::string> keys, names;
  for (size_t i = 0; i < tensors.size(); ++i) {
    ASSIGN_OR_RETURN(TensorInfo t, ParseTensor(tensors[i], i, h, used, version1, source));
    if (!keys.insert(t.key).second) return Bad(source, "duplicate tensor key '", t.key, "'");
    if (!t.name.empty() && !names.insert(t.name).second) {
      return Bad(source, "duplicate tensor name '", t.name, "'");
    }
    h.tensors.push_back(std::move(t));
  }
  for (const auto& [k, a] : h.arrays) {
    if (!used.count(k)) return Bad(source, "array '", k, "' belongs to no tensor");
  }
  return h;
}

}  // namespace sparsed::checkpoint::internal
