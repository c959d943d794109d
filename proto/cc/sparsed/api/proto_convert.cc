#include "sparsed/api/proto_convert.h"

#include <cstring>
#include <vector>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::api {

TensorDesc FromProto(const v1::TensorDesc& p) {
  TensorDesc d;
  d.format = static_cast<Format>(p.format());
  d.dtype = static_cast<DType>(p.dtype());
  d.index_dtype =
      p.index_dtype() == v1::DTYPE_UNSPECIFIED ? DType::kI32 : static_cast<DType>(p.index_dtype());
  d.shape.assign(p.shape().begin(), p.shape().end());
  d.nnz = p.nnz();
  if (p.block_size() > 0) d.block_rows = p.block(0);
  if (p.block_size() > 1) d.block_cols = p.block(1);
  if (p.block_size() == 1) d.block_cols = p.block(0);  // [R] means R x R
  d.nm_n = p.n();
  d.nm_m = p.m();
  return d;
}

absl::Status CheckDescProto(const v1::TensorDesc& p, std::string_view field) {
  if (p.block_size() > 2) {
    std::string sides;
    for (int64_t b : p.block()) sides += StrCat(sides.empty() ? "" : ", ", b);
    return absl::InvalidArgumentError(StrCat(field, ".block = [", sides, "] has ", p.block_size(),
                                             " entries (give [R, C] or [R])"));
  }
  return absl::OkStatus();
}

v1::TensorDesc ToProto(const TensorDesc& d) {
  v1::TensorDesc p;
  p.set_format(static_cast<v1::Format>(d.format));
  p.set_dtype(static_cast<v1::DType>(d.dtype));
  if (IsSparse(d.format)) p.set_index_dtype(static_cast<v1::DType>(d.index_dtype));
  for (int64_t s : d.shape) p.add_shape(s);
  p.set_nnz(IsSparse(d.format) ? d.nnz : d.numel());
  if (d.format == Format::kBsr) {
    p.add_block(d.block_rows);
    p.add_block(d.block_cols);
  }
  if (d.format == Format::kNm) {
    p.set_n(d.nm_n);
    p.set_m(d.nm_m);
  }
  return p;
}

absl::StatusOr<v1::InlineTensor> ToInline(const Tensor& t) {
  if (!t.device().is_cpu()) return absl::InternalError("ToInline needs a host tensor");
  v1::InlineTensor msg;
  *msg.mutable_desc() = ToProto(t.desc());
  for (const ComponentSpec& spec : t.specs()) {
    v1::Component* c = msg.add_components();
    c->set_name(spec.name);
    const Buffer* b = t.component(spec.name);
    c->mutable_data()->assign(static_cast<const char*>(b->data()), b->size());
  }
  return msg;
}

absl::StatusOr<Tensor> FromInline(const v1::InlineTensor& msg, std::string_view field) {
  RETURN_IF_ERROR(CheckDescProto(msg.desc(), StrCat(field, ".desc")));
  const TensorDesc desc = FromProto(msg.desc());
  RETURN_IF_ERROR(ValidateDesc(desc, StrCat(field, ".desc")));
  ASSIGN_OR_RETURN(std::vector<ComponentSpec> specs, ComponentsOf(desc));
  std::vector<const v1::Component*> found(specs.size(), nullptr);
  for (int i = 0; i < msg.components_size(); ++i) {
    const v1::Component& c = msg.components(i);
    size_t k = 0;
    while (k < specs.size() && specs[k].name != c.name()) ++k;
    if (k == specs.size()) {
      return absl::InvalidArgumentError(StrCat(field, ".components[", i, "].name = '", c.name(),
                                               "' is not a component of ",
                                               FormatName(desc.format)));
    }
    if (found[k] != nullptr) {
      return absl::InvalidArgumentError(
          StrCat(field, ".components[", i, "]: component '", c.name(), "' appears twice"));
    }
    if (static_cast<int64_t>(c.data().size()) != specs[k].bytes()) {
      return absl::InvalidArgumentError(
          StrCat(field, ".components[", i, "] ('", c.name(), "') has ", c.data().size(),
                 " bytes but the desc needs ", specs[k].bytes(), " (", specs[k].count, " x ",
                 DTypeName(specs[k].dtype), ")"));
    }
    found[k] = &c;
  }
  for (size_t k = 0; k < specs.size(); ++k) {
    if (found[k] == nullptr) {
      return absl::InvalidArgumentError(
          StrCat(field, ": component '", specs[k].name, "' is missing"));
    }
  }
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(desc));
  for (size_t k = 0; k < specs.size(); ++k) {
    if (specs[k].bytes() > 0) {
      std::memcpy(t.component(specs[k].name)->data(), found[k]->data().data(), specs[k].bytes());
    }
  }
  return t;
}

std::string_view StatusCodeName(int code) {
  static constexpr std::string_view kNames[] = {"OK",
                                                "CANCELLED",
                                                "UNKNOWN",
                                                "INVALID_ARGUMENT",
                                                "DEADLINE_EXCEEDED",
                                                "NOT_FOUND",
                                                "ALREADY_EXISTS",
                                                "PERMISSION_DENIED",
                                                "RESOURCE_EXHAUSTED",
                                                "FAILED_PRECONDITION",
                                                "ABORTED",
                                                "OUT_OF_RANGE",
                                                "UNIMPLEMENTED",
                                                "INTERNAL",
                                                "UNAVAILABLE",
                                                "DATA_LOSS",
                                                "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "UNKNOWN";
  return kNames[code];
}

}  // namespace sparsed::api
