#include "sparsed/cast.h"

#include <cstring>

#include "sparsed/half.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

float LoadAsFloat(const void* p, DType t, int64_t i) {
  switch (t) {
    case DType::kF16:
      return HalfToFloat(static_cast<const uint16_t*>(p)[i]);
    case DType::kBF16:
      return Bf16ToFloat(static_cast<const uint16_t*>(p)[i]);
    default:
      return static_cast<const float*>(p)[i];
  }
}

void StoreFromFloat(void* p, DType t, int64_t i, float v) {
  switch (t) {
    case DType::kF16:
      static_cast<uint16_t*>(p)[i] = FloatToHalf(v);
      break;
    case DType::kBF16:
      static_cast<uint16_t*>(p)[i] = FloatToBf16(v);
      break;
    default:
      static_cast<float*>(p)[i] = v;
  }
}

}  // namespace

absl::StatusOr<Tensor> CastValues(const Tensor& t, DType to) {
  if (!t.device().is_cpu()) {
    return absl::FailedPreconditionError(
        StrCat("CastValues needs a host tensor, not one on ", t.device().ToString()));
  }
  if (!IsValueType(to)) {
    return absl::InvalidArgumentError(StrCat("cannot cast values to ", DTypeName(to)));
  }
  const DType from = t.desc().dtype;
  if (from == to) return t.Clone();
  TensorDesc desc = t.desc();
  desc.dtype = to;
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(desc));
  for (const ComponentSpec& spec : t.specs()) {
    const Buffer* src = t.component(spec.name);
    Buffer* dst = out.component(spec.name);
    if (spec.name != "values") {
      if (src->size() > 0) std::memcpy(dst->data(), src->data(), src->size());
      continue;
    }
    for (int64_t i = 0; i < spec.count; ++i) {
      StoreFromFloat(dst->data(), to, i, LoadAsFloat(src->data(), from, i));
    }
  }
  return out;
}

}  // namespace sparsed
