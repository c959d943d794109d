// The op dispatch interface, implemented once per backend (CPU now; CUDA next).
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "sparsed/device.h"
#include "sparsed/spmm.h"
#include "sparsed/tensor.h"

namespace sparsed {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;  // "cpu", "cuda"
  virtual Device device() const = 0;

  // See spmm.h. Validates with CheckSpmm before allocating the result.
  virtual absl::StatusOr<Tensor> Spmm(const SpmmArgs& args) = 0;
};

// The CPU backend: every core (threads = 0 means hardware concurrency),
// float64 accumulation; the reference every other backend is tested against.
std::unique_ptr<Backend> MakeCpuBackend(int threads = 0);

}  // namespace sparsed
