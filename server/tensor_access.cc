#include "server/tensor_access.h"

#include <memory>

#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::server {

absl::StatusOr<TensorPtr> Resolve(const TensorStore& store, const Caller& caller,
                                  const v1::TensorRef& ref, std::string_view field) {
  switch (ref.ref_case()) {
    case v1::TensorRef::kId:
      return store.FindById(caller.tenant, ref.id());
    case v1::TensorRef::kName:
      return store.FindByName(caller.tenant, ref.name());
    case v1::TensorRef::REF_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(StrCat(field, " names no tensor (set id or name)"));
}

absl::StatusOr<Tensor> MoveToDevice(Tensor t, const Device& device) {
  if (t.device() == device) return t;
  return t.CopyTo(device);
}

absl::StatusOr<TensorPtr> ResolveOperand(const TensorStore& store, const Caller& caller,
                                         const v1::Operand& operand, std::string_view field,
                                         const Device& device) {
  switch (operand.src_case()) {
    case v1::Operand::kRef: {
      const std::string ref_field = StrCat(field, ".ref");
      ASSIGN_OR_RETURN(TensorPtr held, Resolve(store, caller, operand.ref(), ref_field));
      if (held->tensor.device() != device) {
        return absl::InvalidArgumentError(StrCat(
            ref_field, ": tensor ", held->id, " is held on ", held->tensor.device().ToString(),
            " but the backend computes on ", device.ToString()));
      }
      return held;
    }
    case v1::Operand::kInline: {
      const std::string inline_field = StrCat(field, ".inline");
      ASSIGN_OR_RETURN(Tensor t, api::FromInline(operand.inline_(), inline_field));
      RETURN_IF_ERROR(ValidateTensor(t, {}, inline_field));
      auto entry = std::make_shared<StoredTensor>();
      ASSIGN_OR_RETURN(entry->tensor, MoveToDevice(std::move(t), device));
      return TensorPtr(std::move(entry));
    }
    case v1::Operand::SRC_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(StrCat(field, " is missing (set ref or inline)"));
}

v1::TensorInfo DescribeTensor(const StoredTensor& t) {
  v1::TensorInfo info;
  info.set_id(t.id);
  info.set_name(t.name);
  *info.mutable_desc() = api::ToProto(t.tensor.desc());
  info.set_device(t.tensor.device().ToString());
  info.set_bytes(t.tensor.bytes());
  info.set_created_unix_ms(t.created_unix_ms);
  info.set_session_id(t.lifetime.session_id);
  info.set_expires_unix_ms(t.lifetime.expires_unix_ms);
  for (const auto& [k, v] : t.labels) (*info.mutable_labels())[k] = v;
  return info;
}

absl::Status CheckNameAndLabels(const std::string& name,
                                const google::protobuf::Map<std::string, std::string>& labels,
                                std::string_view field) {
  constexpr size_t kMaxName = 256;
  if (name.size() > kMaxName) {
    return absl::InvalidArgumentError(
        StrCat(field, ".name is ", name.size(), " bytes long (at most ", kMaxName, ")"));
  }
  for (unsigned char ch : name) {
    if (ch < 0x20 || ch == 0x7f) {
      return absl::InvalidArgumentError(
          StrCat(field, ".name contains the control character ", static_cast<int>(ch)));
    }
  }
  // Checkpoints store layers as entries "layer/<layer>/<role>" labelled
  // sparsed.layer*; a tensor may not pass for one (server/layer_checkpoint.h).
  if (name.starts_with("layer/")) {
    return absl::InvalidArgumentError(StrCat(field, ".name = '", name,
                                             "': names beginning with 'layer/' are reserved for "
                                             "training layers in checkpoints"));
  }
  if (labels.size() > 64) {
    return absl::InvalidArgumentError(
        StrCat(field, ".labels has ", labels.size(), " entries (at most 64)"));
  }
  for (const auto& [k, v] : labels) {
    if (k.empty() || k.size() > 128 || v.size() > 1024) {
      return absl::InvalidArgumentError(
          StrCat(field, ".labels['", k.substr(0, 128),
                 "']: keys must be 1-128 bytes, values at most 1024"));
    }
    if (k.starts_with("sparsed.layer")) {
      return absl::InvalidArgumentError(StrCat(
          field, ".labels['", k, "']: label keys beginning with 'sparsed.layer' are reserved"));
    }
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> ToStdMap(
    const google::protobuf::Map<std::string, std::string>& labels) {
  return {labels.begin(), labels.end()};
}

}  // namespace sparsed::server
