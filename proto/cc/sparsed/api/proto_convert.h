// Conversions between kernel types (sparsed::Tensor, TensorDesc) and the
// public API messages (sparsed.v1). Shared by the daemon and the clients.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"
#include "sparsed/v1/tensor.pb.h"

namespace sparsed::api {

// Enum numbering is identical on both sides; an unspecified index dtype means
// I32. Values out of range are passed through and rejected by ValidateDesc.
TensorDesc FromProto(const v1::TensorDesc& desc);
// What FromProto cannot express and would drop: a block of more than two
// sides. INVALID_ARGUMENT naming `field` (e.g. "header.desc"); call before
// FromProto on a client's description.
absl::Status CheckDescProto(const v1::TensorDesc& desc, std::string_view field);
v1::TensorDesc ToProto(const TensorDesc& desc);

// Copies a host tensor into an inline message.
absl::StatusOr<v1::InlineTensor> ToInline(const Tensor& t);

// Builds a host tensor from an inline message: checks the description
// (ValidateDesc), that every component is present exactly once with exactly
// the expected byte length, before allocating; does not check contents
// (use ValidateTensor). Errors name `field` (e.g. "a.inline").
absl::StatusOr<Tensor> FromInline(const v1::InlineTensor& msg, std::string_view field = "inline");

// grpc status code name, e.g. "INVALID_ARGUMENT", for a numeric code.
std::string_view StatusCodeName(int code);

}  // namespace sparsed::api
