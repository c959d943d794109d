#include <string>

#include "sparsed/client/client.h"

namespace sparsed::client {

namespace {

// `prefix` + "-" + 16 lower-case hex digits.
bool LooksLikeIdWith(const std::string& arg, char prefix) {
  if (arg.size() != 18 || arg[0] != prefix || arg[1] != '-') return false;
  for (size_t i = 2; i < arg.size(); ++i) {
    const char c = arg[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

bool LooksLikeId(const std::string& arg) { return LooksLikeIdWith(arg, 't'); }

bool LooksLikeLayerId(const std::string& arg) { return LooksLikeIdWith(arg, 'l'); }

v1::LayerRef LayerRefFromArg(const std::string& arg) {
  v1::LayerRef ref;
  if (LooksLikeLayerId(arg)) {
    ref.set_id(arg);
  } else {
    ref.set_name(arg);
  }
  return ref;
}

v1::TensorRef RefFromArg(const std::string& arg) {
  v1::TensorRef ref;
  if (LooksLikeId(arg)) {
    ref.set_id(arg);
  } else {
    ref.set_name(arg);
  }
  return ref;
}

std::string RefToString(const v1::TensorRef& ref) {
  switch (ref.ref_case()) {
    case v1::TensorRef::kId:
      return ref.id();
    case v1::TensorRef::kName:
      return ref.name();
    default:
      return "<empty ref>";
  }
}

}  // namespace sparsed::client
