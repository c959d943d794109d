#include "safetensors_layout.h"

#include <cstdio>

#include "sparsed/str_cat.h"

namespace sparsed::checkpoint::internal {

std::string_view SafetensorsDType(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "I32";
    case DType::kI64:
      return "I64";
  }
  return "?";
}

std::string Version1TensorKey(const std::string& id, const std::string& name) {
  return name.empty() ? id : name;
}

std::string ArrayKey(std::string_view key, Format format, std::string_view component) {
  return IsSparse(format) ? StrCat(key, ".", component) : std::string(key);
}

std::string CrcHex(uint32_t crc) {
  char buf[9];
  std::snprintf(buf, sizeof(buf), "%08x", crc);
  return std::string(buf, 8);
}

}  // namespace sparsed::checkpoint::internal
