#include "cubin_file.h"

#include <nlohmann/json.hpp>

#include "sparsed/checkpoint.h"  // Crc32c
#include "sparsed/str_cat.h"

namespace sparsed::jit {
namespace {

using nlohmann::json;

constexpr std::string_view kMagic = "SPDJITC1";

void PutLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}

uint64_t GetLe(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(in[at + i])} << (8 * i);
  return v;
}

struct Header {
  uint32_t crc;
  uint64_t meta_len, cubin_len;
};

absl::StatusOr<Header> ReadHeader(std::string_view file, uint64_t file_size) {
  if (file.size() < kCubinHeaderBytes || file_size < kCubinHeaderBytes) {
    return absl::DataLossError(StrCat("shorter (", file_size, " bytes) than its header"));
  }
  if (file.substr(0, kMagic.size()) != kMagic) return absl::DataLossError("bad magic");
  Header h{static_cast<uint32_t>(GetLe(file, 8, 4)), GetLe(file, 12, 4), GetLe(file, 16, 8)};
  const uint64_t body = file_size - kCubinHeaderBytes;
  if (h.meta_len > body || h.cubin_len != body - h.meta_len) {  // no overflow possible
    return absl::DataLossError(StrCat("is ", file_size, " bytes, its header says ",
                                      kCubinHeaderBytes, " + ", h.meta_len, " + ", h.cubin_len));
  }
  return h;
}

absl::StatusOr<CubinMeta> ParseMeta(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  CubinMeta m;
  if (!j.is_object()) return absl::DataLossError("meta is not a JSON object");
  for (auto [field, out] : {std::pair{"key", &m.key}, {"spec", &m.spec}, {"arch", &m.arch}}) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string()) {
      return absl::DataLossError(StrCat("meta.", field, " is not a string"));
    }
    *out = it->get<std::string>();
  }
  return m;
}

}  // namespace

std::string EncodeCubinFile(const CubinMeta& meta, std::string_view cubin) {
  const std::string meta_text =
      json{{"key", meta.key}, {"spec", meta.spec}, {"arch", meta.arch}}.dump();
  std::string out(kMagic);
  PutLe(out, 0, 4);  // the checksum, filled in below
  PutLe(out, meta_text.size(), 4);
  PutLe(out, cubin.size(), 8);
  out += meta_text;
  out.append(cubin.data(), cubin.size());
  const uint32_t crc = checkpoint::Crc32c(std::string_view(out).substr(12));
  for (int i = 0; i < 4; ++i) out[8 + i] = static_cast<char>(crc >> (8 * i));
  return out;
}

absl::StatusOr<DecodedCubin> DecodeCubinFile(std::string_view file) {
  absl::StatusOr<Header> h = ReadHeader(file, file.size());
  if (!h.ok()) return h.status();
  const uint32_t crc = checkpoint::Crc32c(file.substr(12));
  if (crc != h->crc) {
    return absl::DataLossError(
        StrCat("checksum mismatch (stored ", h->crc, ", computed ", crc, ")"));
  }
  absl::StatusOr<CubinMeta> meta = ParseMeta(file.substr(kCubinHeaderBytes, h->meta_len));
  if (!meta.ok()) return meta.status();
  return DecodedCubin{*std::move(meta), std::string(file.substr(kCubinHeaderBytes + h->meta_len))};
}

absl::StatusOr<CubinMeta> DecodeCubinMeta(std::string_view prefix, uint64_t file_size) {
  absl::StatusOr<Header> h = ReadHeader(prefix, file_size);
  if (!h.ok()) return h.status();
  if (prefix.size() < kCubinHeaderBytes + h->meta_len) {
    return absl::DataLossError("shorter than its meta");
  }
  return ParseMeta(prefix.substr(kCubinHeaderBytes, h->meta_len));
}

}  // namespace sparsed::jit
