// Placement decisions: which device takes each shard, and an op's result.
#include <algorithm>
#include <numeric>
#include <span>
#include <vector>

#include "shard_internal.h"
#include "sparsed/shard.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using shard_internal::IntsString;
using shard_internal::Invalid;

absl::Status CheckFreeBytes(std::span<const int64_t> free_bytes) {
  if (free_bytes.empty()) return Invalid("free_bytes is empty: there is no device");
  if (free_bytes.size() > static_cast<size_t>(kMaxDevices)) {
    return Invalid(StrCat("free_bytes has ", free_bytes.size(), " devices; at most ", kMaxDevices));
  }
  for (size_t d = 0; d < free_bytes.size(); ++d) {
    if (free_bytes[d] < 0) {
      return Invalid(StrCat("free_bytes[", d, "] = ", free_bytes[d], " must be >= 0"));
    }
  }
  return absl::OkStatus();
}

// The device with the most free bytes (ties: the lowest index).
int MostFree(std::span<const int64_t> free_bytes) {
  return static_cast<int>(std::max_element(free_bytes.begin(), free_bytes.end()) -
                          free_bytes.begin());
}

}  // namespace

absl::StatusOr<std::vector<int>> PlaceShards(std::span<const int64_t> free_bytes,
                                             std::span<const int64_t> shard_bytes) {
  RETURN_IF_ERROR(CheckFreeBytes(free_bytes));
  if (shard_bytes.size() > static_cast<size_t>(kMaxShards)) {
    return Invalid(StrCat("shard_bytes has ", shard_bytes.size(), " shards; at most ", kMaxShards));
  }
  for (size_t i = 0; i < shard_bytes.size(); ++i) {
    if (shard_bytes[i] < 0) {
      return Invalid(StrCat("shard_bytes[", i, "] = ", shard_bytes[i], " must be >= 0"));
    }
  }
  std::vector<int> order(shard_bytes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int x, int y) { return shard_bytes[x] > shard_bytes[y]; });
  std::vector<int64_t> left(free_bytes.begin(), free_bytes.end());
  std::vector<int> device_of_shard(shard_bytes.size(), 0);
  for (const int i : order) {
    const int d = MostFree(left);
    if (shard_bytes[i] > left[d]) {
      return absl::ResourceExhaustedError(StrCat(
          "shard ", i, " (", shard_bytes[i], " bytes) fits on no device: free bytes per ",
          "device ", IntsString(std::span<const int64_t>(free_bytes)),
          ", left after placing the larger shards ", IntsString(std::span<const int64_t>(left))));
    }
    left[d] -= shard_bytes[i];
    device_of_shard[i] = d;
  }
  return device_of_shard;
}

absl::StatusOr<int> PlaceBesideOperands(std::span<const OperandBytes> operands,
                                        std::span<const int64_t> free_bytes, int64_t result_bytes) {
  RETURN_IF_ERROR(CheckFreeBytes(free_bytes));
  if (result_bytes < 0) return Invalid(StrCat("result_bytes = ", result_bytes, " must be >= 0"));
  const int devices = static_cast<int>(free_bytes.size());
  std::vector<int64_t> held(devices, 0);
  for (size_t i = 0; i < operands.size(); ++i) {
    const OperandBytes& o = operands[i];
    if (o.device < 0 || o.device >= devices) {
      return Invalid(StrCat("operands[", i, "].device = ", o.device, " is not a device (0..",
                            devices - 1, ")"));
    }
    if (o.bytes < 0) {
      return Invalid(StrCat("operands[", i, "].bytes = ", o.bytes, " must be >= 0"));
    }
    held[o.device] += o.bytes;
  }
  // Beside the operands: most operand bytes, then most free, then lowest index.
  int best = -1;
  for (int d = 0; d < devices; ++d) {
    if (held[d] == 0 || free_bytes[d] < result_bytes) continue;
    if (best < 0 || held[d] > held[best] ||
        (held[d] == held[best] && free_bytes[d] > free_bytes[best])) {
      best = d;
    }
  }
  if (best >= 0) return best;
  // Otherwise the least used device, if the result fits anywhere.
  const int d = MostFree(free_bytes);
  if (free_bytes[d] >= result_bytes) return d;
  return absl::ResourceExhaustedError(StrCat("the result (", result_bytes,
                                             " bytes) fits on no device: free bytes per device ",
                                             IntsString(free_bytes)));
}

}  // namespace sparsed
