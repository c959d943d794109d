// Element types of tensor values and indices.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sparsed {

// Numbering matches proto sparsed.v1.DType.
enum class DType : int { kF32 = 1, kF16 = 2, kBF16 = 3, kI32 = 4, kI64 = 5 };

// Bytes per element.
constexpr int64_t SizeOf(DType t) {
  switch (t) {
    case DType::kF32:
      return 4;
    case DType::kF16:
      return 2;
    case DType::kBF16:
      return 2;
    case DType::kI32:
      return 4;
    case DType::kI64:
      return 8;
  }
  return 0;
}

// "f32", "f16", "bf16", "i32", "i64".
std::string_view DTypeName(DType t);
std::optional<DType> ParseDType(std::string_view name);

constexpr bool IsIndexType(DType t) { return t == DType::kI32 || t == DType::kI64; }
// Element types a tensor's values may have.
constexpr bool IsValueType(DType t) {
  return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16;
}

}  // namespace sparsed
