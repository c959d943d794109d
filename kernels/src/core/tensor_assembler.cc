#include "sparsed/tensor_assembler.h"

#include <string>

#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {

TensorAssembler::TensorAssembler(Tensor& t) : t_(t), received_(t.specs().size(), 0) {}

absl::Status TensorAssembler::AddChunk(std::string_view component, int64_t offset,
                                       std::string_view data) {
  const std::vector<ComponentSpec>& specs = t_.specs();
  size_t k = 0;
  while (k < specs.size() && specs[k].name != component) ++k;
  if (k == specs.size()) {
    std::string names;
    for (const ComponentSpec& s : specs) names += (names.empty() ? "" : ", ") + s.name;
    return absl::InvalidArgumentError(StrCat("chunk.component = '", component,
                                             "' is not a component of ", FormatName(t_.format()),
                                             " (", names, ")"));
  }
  if (offset != received_[k]) {
    return absl::InvalidArgumentError(
        StrCat("chunk.offset = ", offset, " for component '", specs[k].name, "' but ", received_[k],
               " bytes of it have arrived (chunks must be contiguous, in order)"));
  }
  const int64_t len = static_cast<int64_t>(data.size());
  if (len > specs[k].bytes() - received_[k]) {
    return absl::InvalidArgumentError(StrCat("chunk of ", len, " bytes at offset ", offset,
                                             " overruns component '", specs[k].name, "' of ",
                                             specs[k].bytes(), " bytes"));
  }
  if (len > 0) {
    Buffer* buf = t_.component(specs[k].name);
    RETURN_IF_ERROR(CopyBytes(static_cast<char*>(buf->data()) + received_[k], buf->device(),
                              data.data(), Device::Cpu(), len));
  }
  received_[k] += len;
  return absl::OkStatus();
}

absl::Status TensorAssembler::Finish() const {
  const std::vector<ComponentSpec>& specs = t_.specs();
  for (size_t k = 0; k < specs.size(); ++k) {
    if (received_[k] != specs[k].bytes()) {
      return absl::InvalidArgumentError(StrCat("upload ended with ", received_[k], " of ",
                                               specs[k].bytes(), " bytes of component '",
                                               specs[k].name, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsed
