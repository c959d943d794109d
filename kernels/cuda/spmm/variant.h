// The variant mechanism every GPU op × format shares: a Variant<Problem>
// declares what it supports (dtypes, block shapes, transposes, epilogue,
// alignment, minimum architecture) through Supports and min_arch, prepares
// per-problem state into the workspace, and queues its kernels. The tuner
// (tuner.h) picks among the supporting variants of a list.
#pragma once

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "exec_context.h"

namespace sparsed::cuda {

template <class Problem>
class Variant {
 public:
  virtual ~Variant() = default;
  virtual std::string_view name() const = 0;
  // Lowest compute capability (major * 10 + minor) the variant runs on.
  virtual int min_arch() const { return 0; }
  // Not yet verified on a device: the tuner leaves it out unless asked to
  // include such variants (or it is forced by name).
  virtual bool experimental() const { return false; }
  // Whether this variant computes `p` (shapes, alignment, value types,
  // transposes, epilogue).
  virtual bool Supports(const Problem& p) const = 0;
  // One-time work for p's pattern and shapes (workspaces, library plans,
  // JIT compilation); its memory lives in `ws`. UNIMPLEMENTED (or INTERNAL
  // from a failed compile) makes the tuner skip the variant.
  virtual absl::StatusOr<Plan*> Prepare(const Problem& p, const ExecContext& ctx,
                                        Workspace& ws) const = 0;
  // Queues the computation on ctx.stream (asynchronous).
  virtual absl::Status Run(const Problem& p, Plan* plan, const ExecContext& ctx) const = 0;
};

template <class Problem>
const Variant<Problem>* FindVariant(const std::vector<const Variant<Problem>*>& variants,
                                    std::string_view name) {
  for (const Variant<Problem>* v : variants) {
    if (v->name() == name) return v;
  }
  return nullptr;
}

}  // namespace sparsed::cuda
