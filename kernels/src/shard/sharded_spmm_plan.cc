// PlanShardedSpmm: checks a sharded SpMM and lists its steps.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "shard_internal.h"
#include "sparsed/shard.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using shard_internal::IntsString;
using shard_internal::Invalid;

absl::Status CheckDevice(std::string_view field, int device, int device_count) {
  if (device < 0 || device >= device_count) {
    return Invalid(StrCat(field, " = ", device, " is not a device (0..", device_count - 1, ")"));
  }
  return absl::OkStatus();
}

// The arguments of shard i's Spmm (descriptions are all CheckSpmm reads).
SpmmArgs ShardArgs(const ShardedSpmmArgs& args, int i) {
  SpmmArgs s;
  s.a = &args.a->shards[i];
  s.b = args.b;
  s.transpose_b = args.transpose_b;
  s.alpha = args.alpha;
  s.beta = args.beta;
  s.c = args.beta != 0.0f && args.c != nullptr ? &args.c->shards[i] : nullptr;
  s.epilogue = args.epilogue;
  s.out_dtype = args.out_dtype;
  return s;
}

}  // namespace

std::string_view ShardStepKindName(ShardStepKind kind) {
  switch (kind) {
    case ShardStepKind::kBroadcast:
      return "broadcast";
    case ShardStepKind::kCompute:
      return "compute";
    case ShardStepKind::kGather:
      return "gather";
  }
  return "unknown";
}

std::string ShardedSpmmPlan::ToString() const {
  std::string s;
  for (const ShardStep& st : steps) {
    s += ShardStepKindName(st.kind);
    switch (st.kind) {
      case ShardStepKind::kBroadcast:
        s += StrCat(" ", st.operand, " ", st.root, " -> ", IntsString(st.devices));
        break;
      case ShardStepKind::kCompute:
        s += StrCat(" shard ", st.shard, " on ", st.device, " rows [", st.rows.begin, ", ",
                    st.rows.end, ")");
        break;
      case ShardStepKind::kGather:
        s += StrCat(" ", st.operand, " -> ", st.root);
        break;
    }
    s += StrCat(" ", st.bytes, " B\n");
  }
  return s;
}

absl::StatusOr<ShardedSpmmPlan> PlanShardedSpmm(const ShardedSpmmArgs& args, int device_count) {
  if (device_count < 1 || device_count > kMaxDevices) {
    return Invalid(StrCat("device_count = ", device_count, " must be in [1, ", kMaxDevices, "]"));
  }
  if (args.a == nullptr) return Invalid("a is missing");
  if (args.b == nullptr) return Invalid("b is missing");
  const ShardedTensor& a = *args.a;
  RETURN_IF_ERROR(ValidateSharded(a, device_count, "a"));
  if (a.whole.format != Format::kCsr) {
    return Invalid(StrCat("a.whole.format = ", FormatName(a.whole.format),
                          " must be csr: a sharded spmm multiplies a row-sharded sparse a"));
  }
  if (args.transpose_a) {
    return Invalid(
        "transpose_a = true is not supported for a row-sharded a: the rows of op(a) are a's "
        "columns, so every shard would add a partial sum into every output row (a "
        "reduce-scatter, not a concatenation); shard the transpose instead");
  }
  RETURN_IF_ERROR(CheckDevice("b_device", args.b_device, device_count));
  if (args.gather) RETURN_IF_ERROR(CheckDevice("gather_device", args.gather_device, device_count));
  if (args.beta != 0.0f) {
    if (args.c == nullptr)
      return Invalid(StrCat("c is missing but beta = ", args.beta, " is not 0"));
    const ShardedTensor& c = *args.c;
    RETURN_IF_ERROR(ValidateSharded(c, device_count, "c"));
    if (c.whole.format != Format::kDense) {
      return Invalid(StrCat("c.whole.format = ", FormatName(c.whole.format), " must be dense"));
    }
    if (c.ranges != a.ranges) {
      return Invalid(StrCat("c.ranges = ", RangesString(c.ranges), " must be a's ranges ",
                            RangesString(a.ranges), " (c is sharded like a)"));
    }
    if (c.device_of_shard != a.device_of_shard) {
      return Invalid(StrCat("c.device_of_shard = ", IntsString(c.device_of_shard), " must be a's ",
                            IntsString(a.device_of_shard), " (each c block beside its a shard)"));
    }
  }
  ShardedSpmmPlan plan;
  int64_t n = 0;
  for (int i = 0; i < a.shard_count(); ++i) {
    absl::StatusOr<std::vector<int64_t>> shape = CheckSpmm(ShardArgs(args, i));
    if (!shape.ok()) {
      return absl::Status(shape.status().code(),
                          StrCat("shard ", i, ": ", shape.status().message()));
    }
    n = (*shape)[1];
  }
  plan.out_shape = {a.whole.rows(), n};

  // Every device holding a shard needs B (and the bias); the root has them.
  const std::set<int> used(a.device_of_shard.begin(), a.device_of_shard.end());
  std::vector<int> receivers;
  for (const int d : used) {
    if (d != args.b_device) receivers.push_back(d);
  }
  if (!receivers.empty()) {
    plan.steps.push_back({.kind = ShardStepKind::kBroadcast,
                          .operand = "b",
                          .root = args.b_device,
                          .devices = receivers,
                          .bytes = args.b->bytes()});
    if (args.epilogue.bias != nullptr) {
      plan.steps.push_back({.kind = ShardStepKind::kBroadcast,
                            .operand = "epilogue.bias",
                            .root = args.b_device,
                            .devices = receivers,
                            .bytes = args.epilogue.bias->bytes()});
    }
  }
  for (int i = 0; i < a.shard_count(); ++i) {
    plan.steps.push_back({.kind = ShardStepKind::kCompute,
                          .operand = "c",
                          .shard = i,
                          .device = a.device_of_shard[i],
                          .rows = a.ranges[i],
                          .bytes = a.shards[i].bytes()});
  }
  if (args.gather) {
    plan.steps.push_back({.kind = ShardStepKind::kGather,
                          .operand = "c",
                          .root = args.gather_device,
                          .bytes = plan.out_shape[0] * n * SizeOf(args.out_dtype)});
  }
  return plan;
}

}  // namespace sparsed
