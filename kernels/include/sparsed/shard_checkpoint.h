// Checkpoints of sharded tensors (issue 18): a ShardedTensor saved as ordinary
// checkpoint entries (checkpoint.h: one safetensors file, atomic write, a
// CRC-32C per array, strict reader), restorable with the same partition or
// onto another number of shards.
//
// Under a key KEY, shard i is the entry with id "KEY/shard/<i>" (so its arrays
// are "KEY/shard/<i>.row_ptr", ".col_idx", ".values"; a dense shard is the
// array "KEY/shard/<i>"), with no name, and with these labels:
//   sparsed.sharded        KEY
//   sparsed.shard.index    i                  (decimal)
//   sparsed.shard.count    S, the shard count (decimal, same on every shard)
//   sparsed.shard.begin    first row of the shard's range (decimal)
//   sparsed.shard.end      one past its last row (decimal)
//   sparsed.whole.format   "csr" or "dense"   (the whole matrix's description,
//   sparsed.whole.dtype    "f32", ...          the same on every shard)
//   sparsed.whole.index_dtype, sparsed.whole.rows, sparsed.whole.cols,
//   sparsed.whole.nnz
// Labels live in the checkpoint's metadata, covered by its checksum. Where
// each shard lived (device_of_shard) is not saved: a restore places shards
// afresh (PlaceShards / AssignDevices).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/checkpoint.h"
#include "sparsed/shard.h"

namespace sparsed {

inline constexpr std::string_view kShardedLabel = "sparsed.sharded";
inline constexpr std::string_view kShardIndexLabel = "sparsed.shard.index";
inline constexpr std::string_view kShardCountLabel = "sparsed.shard.count";
inline constexpr std::string_view kShardBeginLabel = "sparsed.shard.begin";
inline constexpr std::string_view kShardEndLabel = "sparsed.shard.end";
inline constexpr std::string_view kWholeFormatLabel = "sparsed.whole.format";
inline constexpr std::string_view kWholeDTypeLabel = "sparsed.whole.dtype";
inline constexpr std::string_view kWholeIndexDTypeLabel = "sparsed.whole.index_dtype";
inline constexpr std::string_view kWholeRowsLabel = "sparsed.whole.rows";
inline constexpr std::string_view kWholeColsLabel = "sparsed.whole.cols";
inline constexpr std::string_view kWholeNnzLabel = "sparsed.whole.nnz";

// "KEY/shard/<i>": the id of shard i's entry.
std::string ShardEntryId(std::string_view key, int index);

// Appends one EntryRef per shard of `t` (in shard order, ids and labels as
// above) to `refs`, for checkpoint::Save together with other entries. The
// refs point into `t`, which must outlive the save. Checks `t` first
// (ValidateSharded) and that `key` is non-empty; INVALID_ARGUMENT otherwise,
// with `refs` unchanged.
absl::Status AppendShardedEntries(const ShardedTensor& t, std::string_view key,
                                  std::vector<checkpoint::EntryRef>* refs);

// Moves the entries labelled sparsed.sharded = `key` out of `entries` (others
// are left, in order) and rebuilds the sharded tensor with the saved
// partition: shard i is entry "KEY/shard/<i>", host tensors, device_of_shard
// all 0. Everything is checked before anything is returned (and `entries` is
// unchanged on error): every label present and canonical; the id matching the
// index; shard count in [1, kMaxShards], the same on every shard and equal to
// the number of the key's entries; each index once; ranges contiguous from
// row 0 to whole rows, in index order (no overlap, gap or reversal); the whole
// description (csr or dense, ValidateDesc) the same on every shard; each
// shard's format, dtypes and shape [end - begin, cols] matching; shard nnz
// summing to whole nnz. INVALID_ARGUMENT naming `source`, the entry id and
// the label or field, with both values; NOT_FOUND when no entry has `key`.
absl::StatusOr<ShardedTensor> TakeSharded(std::vector<checkpoint::Entry>& entries,
                                          std::string_view key, std::string_view source);

// Saves `t` alone under `key` to `path` (checkpoint::Save: atomic, CRCs).
absl::Status SaveSharded(const std::string& path, const ShardedTensor& t,
                         std::string_view key = "sharded");

// Loads `path` (checkpoint::Load: every array, checksum and tensor verified;
// DATA_LOSS on a checksum mismatch, INVALID_ARGUMENT on any other defect,
// NOT_FOUND for a missing file) and returns the tensor saved under `key` with
// its saved partition (TakeSharded). Other entries in the file are ignored.
absl::StatusOr<ShardedTensor> LoadSharded(const std::string& path,
                                          std::string_view key = "sharded");

// LoadSharded, then Reshard onto `shards` new nnz-balanced row blocks (the
// partition PartitionRowPtr gives the whole matrix, even when `shards` equals
// the saved count): a checkpoint restored onto another number of devices.
// Needs host memory for the whole matrix plus the shards. CSR only (a dense
// whole is INVALID_ARGUMENT, as for Reshard); `shards` outside
// [1, kMaxShards] is INVALID_ARGUMENT before the file is read.
absl::StatusOr<ShardedTensor> LoadResharded(const std::string& path, std::string_view key,
                                            int shards);

}  // namespace sparsed
