// Helpers shared by the shard module's files (not installed).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/shard.h"
#include "sparsed/tensor.h"

namespace sparsed::shard_internal {

inline absl::Status Invalid(std::string msg) { return absl::InvalidArgumentError(std::move(msg)); }

// "[1, 2, 3]".
std::string IntsString(std::span<const int64_t> v);
std::string IntsString(std::span<const int> v);

// INVALID_ARGUMENT unless 1 <= shards <= kMaxShards.
absl::Status CheckShardCount(int64_t shards, std::string_view field);

// INVALID_ARGUMENT unless `ranges` (1..kMaxShards of them) are contiguous
// from row 0 to `rows`.
absl::Status CheckRanges(std::span<const RowRange> ranges, int64_t rows, std::string_view field);

// A host CSR's row pointer as int64 (either index dtype).
std::vector<int64_t> RowPtrOf(const Tensor& csr);

// SplitRows without its checks: `t` a valid host CSR or 2-D dense matrix,
// `ranges` already checked.
absl::StatusOr<ShardedTensor> SplitRowsUnchecked(const Tensor& t, std::span<const RowRange> ranges);

}  // namespace sparsed::shard_internal
