// ExecuteShardedSpmm: runs a plan's steps through one Backend per device.
#include <deque>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "shard_internal.h"
#include "sparsed/backend.h"
#include "sparsed/shard.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using shard_internal::Invalid;

absl::Status Prefixed(const absl::Status& s, std::string_view prefix) {
  return absl::Status(s.code(), StrCat(prefix, ": ", s.message()));
}

// Where each device reads one broadcast operand from.
class DeviceCopies {
 public:
  DeviceCopies(const Tensor* source, int root, size_t devices) : at_(devices, nullptr) {
    at_[root] = source;
  }
  const Tensor* at(int d) const { return at_[d]; }

  // The operand on device d: the root's tensor itself when d's backend has
  // the same memory (simulated CPU devices), else a copy. A CUDA/NCCL
  // implementation replaces this with ncclBroadcast into per-device buffers.
  absl::Status Receive(int root, int d, Backend& backend) {
    const Tensor* src = at_[root];
    if (backend.device() == src->device()) {
      at_[d] = src;
      return absl::OkStatus();
    }
    ASSIGN_OR_RETURN(Tensor copy, src->CopyTo(backend.device()));
    copies_.push_back(std::move(copy));
    at_[d] = &copies_.back();
    return absl::OkStatus();
  }

 private:
  std::vector<const Tensor*> at_;
  std::deque<Tensor> copies_;  // stable addresses
};

absl::Status CheckPlan(const ShardedSpmmPlan& plan, int shards, int devices) {
  auto bad = [&](size_t i, std::string_view what) {
    return Invalid(StrCat("plan.steps[", i, "] (", ShardStepKindName(plan.steps[i].kind), ") ",
                          what, " (", shards, " shards, ", devices, " devices)"));
  };
  if (plan.out_shape.size() != 2) return Invalid("plan.out_shape must be 2-D");
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const ShardStep& s = plan.steps[i];
    switch (s.kind) {
      case ShardStepKind::kBroadcast:
        if (s.operand != "b" && s.operand != "epilogue.bias")
          return bad(i, "has an unknown operand");
        if (s.root < 0 || s.root >= devices) return bad(i, "has a bad root");
        for (const int d : s.devices) {
          if (d < 0 || d >= devices) return bad(i, "has a bad receiver");
        }
        break;
      case ShardStepKind::kCompute:
        if (s.shard < 0 || s.shard >= shards) return bad(i, "has a bad shard");
        if (s.device < 0 || s.device >= devices) return bad(i, "has a bad device");
        break;
      case ShardStepKind::kGather:
        if (s.root < 0 || s.root >= devices) return bad(i, "has a bad root");
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ShardedSpmmResult> ExecuteShardedSpmm(const ShardedSpmmArgs& args,
                                                     const ShardedSpmmPlan& plan,
                                                     std::span<Backend* const> backends) {
  const int devices = static_cast<int>(backends.size());
  if (devices < 1 || devices > kMaxDevices) {
    return Invalid(
        StrCat("backends has ", backends.size(), " devices; it needs 1 to ", kMaxDevices));
  }
  for (int d = 0; d < devices; ++d) {
    if (backends[d] == nullptr) return Invalid(StrCat("backends[", d, "] is null"));
  }
  if (args.a == nullptr || args.b == nullptr) return Invalid("a and b are required");
  const ShardedTensor& a = *args.a;
  RETURN_IF_ERROR(ValidateSharded(a, devices, "a"));
  RETURN_IF_ERROR(CheckPlan(plan, a.shard_count(), devices));
  if (args.b_device < 0 || args.b_device >= devices) {
    return Invalid(StrCat("b_device = ", args.b_device, " is not a device (0..", devices - 1, ")"));
  }
  const Device root_device = backends[args.b_device]->device();
  for (const auto& [field, t] : {std::pair<std::string_view, const Tensor*>{"b", args.b},
                                 {"epilogue.bias", args.epilogue.bias}}) {
    if (t != nullptr && t->device() != root_device) {
      return Invalid(StrCat(field, " is on ", t->device().ToString(),
                            " but b_device = ", args.b_device, " is ", root_device.ToString()));
    }
  }

  DeviceCopies b(args.b, args.b_device, backends.size());
  DeviceCopies bias(args.epilogue.bias, args.b_device, backends.size());
  std::vector<Tensor> out(a.shards.size());
  std::vector<bool> computed(a.shards.size(), false);
  ShardedSpmmResult result;
  int gather_root = -1;
  for (const ShardStep& step : plan.steps) {
    switch (step.kind) {
      case ShardStepKind::kBroadcast: {
        const bool is_b = step.operand == "b";
        if (!is_b && args.epilogue.bias == nullptr) break;
        DeviceCopies& copies = is_b ? b : bias;
        for (const int d : step.devices) {
          absl::Status s = copies.Receive(step.root, d, *backends[d]);
          if (!s.ok()) {
            return Prefixed(s, StrCat("broadcast of ", step.operand, " to device ", d));
          }
        }
        break;
      }
      case ShardStepKind::kCompute: {
        const int i = step.shard, d = step.device;
        if (b.at(d) == nullptr || (args.epilogue.bias != nullptr && bias.at(d) == nullptr)) {
          return Invalid(StrCat("plan computes shard ", i, " on device ", d,
                                " before b (and the bias) were broadcast there"));
        }
        SpmmArgs s;
        s.a = &a.shards[i];
        s.b = b.at(d);
        s.transpose_a = args.transpose_a;
        s.transpose_b = args.transpose_b;
        s.alpha = args.alpha;
        s.beta = args.beta;
        s.c = args.beta != 0.0f && args.c != nullptr ? &args.c->shards[i] : nullptr;
        s.epilogue = args.epilogue;
        s.epilogue.bias = args.epilogue.bias != nullptr ? bias.at(d) : nullptr;
        s.out_dtype = args.out_dtype;
        absl::StatusOr<Tensor> c = backends[d]->Spmm(s);
        if (!c.ok()) return Prefixed(c.status(), StrCat("shard ", i, " on device ", d));
        out[i] = std::move(c).value();
        computed[i] = true;
        break;
      }
      case ShardStepKind::kGather:
        gather_root = step.root;
        break;
    }
  }
  for (size_t i = 0; i < computed.size(); ++i) {
    if (!computed[i]) return Invalid(StrCat("plan never computes shard ", i));
  }
  ShardedTensor c;
  c.whole = {Format::kDense, args.out_dtype, DType::kI32, plan.out_shape, 0};
  c.whole.nnz = c.whole.numel();
  c.ranges = a.ranges;
  c.shards = std::move(out);
  c.device_of_shard = a.device_of_shard;
  if (gather_root < 0) {
    result.sharded = std::move(c);
    return result;
  }
  // The gather: row blocks concatenated on the host, then moved to the root.
  ASSIGN_OR_RETURN(Tensor whole, Reassemble(c));
  const Device to = backends[gather_root]->device();
  if (to.is_cpu()) {
    result.gathered = std::move(whole);
  } else {
    ASSIGN_OR_RETURN(result.gathered, whole.CopyTo(to));
  }
  return result;
}

absl::StatusOr<ShardedSpmmResult> ShardedSpmm(const ShardedSpmmArgs& args,
                                              std::span<Backend* const> backends) {
  ASSIGN_OR_RETURN(ShardedSpmmPlan plan, PlanShardedSpmm(args, static_cast<int>(backends.size())));
  return ExecuteShardedSpmm(args, plan, backends);
}

}  // namespace sparsed
