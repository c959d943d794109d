#include "server/op_result.h"

#include <utility>

#include "server/tensor_access.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

absl::Status DeliverResult(ServiceContext& ctx, const Caller& caller, Tensor result,
                           const v1::Output& output, v1::OpResult* response) {
  if (output.inline_()) {
    // Leave room for the envelope of the message.
    const int64_t limit = ctx.config.max_message_bytes - 4096;
    if (result.bytes() > limit) {
      return absl::ResourceExhaustedError(StrCat(
          "the result is ", result.bytes(), " bytes, more than an inline response may carry (",
          limit, "); ask for a held result (output.inline = false) and download it"));
    }
    // Inline results travel from host memory; held ones stay on the device.
    ASSIGN_OR_RETURN(const Tensor host, MoveToDevice(std::move(result), Device::Cpu()));
    ASSIGN_OR_RETURN(*response->mutable_inline_(), api::ToInline(host));
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(CheckNameAndLabels(output.name(), output.labels(), "output"));
  ASSIGN_OR_RETURN(TensorPtr stored,
                   ctx.store.Insert(caller.tenant, std::move(result), output.name(),
                                    ToStdMap(output.labels()),
                                    ResolveLifetime(caller.lifetime, output.name())));
  *response->mutable_tensor() = DescribeTensor(*stored);
  return absl::OkStatus();
}

}  // namespace sparsed::server
