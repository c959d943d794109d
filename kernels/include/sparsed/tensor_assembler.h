// Assembles a tensor from chunks of its component arrays, the way an upload
// delivers them: each component's chunks contiguous and in order, components
// in any order and interleaved. Every chunk is checked before it is copied.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "sparsed/tensor.h"

namespace sparsed {

class TensorAssembler {
 public:
  // `t` (allocated, host or device) must outlive the assembler.
  explicit TensorAssembler(Tensor& t);

  // Copies `data` to `offset` of `component`. INVALID_ARGUMENT (nothing
  // copied) when the component is not one of the format's, the offset is not
  // where the previous chunk of that component ended, or the chunk would run
  // past the component's end.
  absl::Status AddChunk(std::string_view component, int64_t offset, std::string_view data);

  // OK once every component has received all its bytes; otherwise
  // INVALID_ARGUMENT naming the first incomplete component.
  absl::Status Finish() const;

 private:
  Tensor& t_;
  std::vector<int64_t> received_;  // bytes per component, parallel to t_.specs()
};

}  // namespace sparsed
