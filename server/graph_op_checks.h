// The checks of one graph op against its operands' descriptions, before
// anything runs: what Compute, TrainingOps and the backends' Check*
// functions would refuse is refused here, naming the op's field, the operand
// and its shape ("ops[3].spmm.b: output 'h2' is 512x1024 but a (tensor 'x')
// is 1200x1024; ..."), so a graph never fails half-way on a mistake the
// descriptions show. What only the data can tell (a group with more than n
// non-zeros, NaN in a pruned tensor) is left to the run.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/graph_plan.h"
#include "sparsed/tensor.h"
#include "sparsed/v1/graph.pb.h"

namespace sparsed::server {

// What validation knows of an operand.
struct OperandInfo {
  const TensorDesc* desc = nullptr;  // nullptr: absent
  std::string what;                  // "output 'h2'", "tensor 'w0'", "the inline tensor"
  bool exact = true;                 // false: desc->nnz is only an upper bound
};
using OperandInfos = std::array<OperandInfo, kMaxGraphOperands>;

// An operand position of an op: its message (nullptr when the op has no such
// operand or an optional one is not set), its field name ("a", "bias") and
// whether it must be given.
struct OperandSlot {
  const v1::GraphOperand* operand = nullptr;
  std::string_view name;
  bool required = false;
};
using OperandSlots = std::array<OperandSlot, kMaxGraphOperands>;

// The kind of a GraphOp that is not a repeat; INVALID_ARGUMENT naming
// `field` when no op is set.
absl::StatusOr<GraphOpKind> GraphOpKindOf(const v1::GraphOp& op, std::string_view field);

// The operand positions of `op` (see graph_plan.h for their order).
OperandSlots OperandSlotsOf(const v1::GraphOp& op, GraphOpKind kind);

// Checks step.op (of step.kind) against `in` and fills step.convert,
// step.prune, step.dtype, step.out, step.out_bytes and step.work. Errors are
// INVALID_ARGUMENT naming `field` + "." + kind (+ "." + operand field).
absl::Status CheckGraphOp(const OperandInfos& in, std::string_view field, PlanStep& step);

// `status` with "FIELD: " before its message, its code kept.
absl::Status WithField(std::string_view field, const absl::Status& status);

// Bytes of every component of a tensor so described; INVALID_ARGUMENT
// naming `field` when the description is not valid.
absl::StatusOr<int64_t> DescBytes(const TensorDesc& desc, std::string_view field);

}  // namespace sparsed::server
