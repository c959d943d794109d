// Shared helpers of the services: finding tensors by reference, turning
// operands into tensors, describing held tensors.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/tensor_store.h"
#include "sparsed/device.h"
#include "sparsed/tensor.h"
#include "sparsed/v1/compute.pb.h"
#include "sparsed/v1/tensor.pb.h"

namespace sparsed::server {

// The caller's tensor: NOT_FOUND for an unknown id or name (or another
// tenant's); INVALID_ARGUMENT naming `field` when the reference is empty.
absl::StatusOr<TensorPtr> Resolve(const TensorStore& store, const Caller& caller,
                                  const v1::TensorRef& ref, std::string_view field);

// A held tensor (by reference) or an inline one, validated (description,
// component sizes and contents) under `field`, on `device` (the backend's).
// Inline tensors are validated on the host, copied to `device` and wrapped in
// a StoredTensor that is not in the store. A held tensor on another device is
// INVALID_ARGUMENT naming `field` and both devices.
absl::StatusOr<TensorPtr> ResolveOperand(const TensorStore& store, const Caller& caller,
                                         const v1::Operand& operand, std::string_view field,
                                         const Device& device);

// `t` itself when it is on `device`, else a copy there (RESOURCE_EXHAUSTED
// when it does not fit).
absl::StatusOr<Tensor> MoveToDevice(Tensor t, const Device& device);

v1::TensorInfo DescribeTensor(const StoredTensor& t);

// Checks a name and labels supplied by a client (length, characters).
absl::Status CheckNameAndLabels(const std::string& name,
                                const google::protobuf::Map<std::string, std::string>& labels,
                                std::string_view field);

std::map<std::string, std::string> ToStdMap(
    const google::protobuf::Map<std::string, std::string>& labels);

}  // namespace sparsed::server
