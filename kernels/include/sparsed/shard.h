// Sharding across devices (issue 18, the device-independent part): a sparse
// matrix split by contiguous row blocks balanced by non-zeros, the sharded
// tensor that holds the blocks under one description, placement decisions
// (which device takes which shard or result), and SpMM with a row-sharded A
// as an explicit plan (broadcast B, compute each shard on its device, gather
// C) executed through one Backend per device.
//
// Devices are numbered 0..D-1: an index into the caller's list of backends
// (and of per-device free bytes). On a machine without GPUs every "device" is
// a CPU backend over host memory, which is how the tests simulate several.
// Everything here validates sizes and descriptions before allocating; errors
// are INVALID_ARGUMENT naming the field and its value unless stated.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/spmm.h"
#include "sparsed/tensor.h"

namespace sparsed {

class Backend;

// Limits on shard and device counts (checked before anything is allocated).
inline constexpr int kMaxShards = 1024;
inline constexpr int kMaxDevices = 1024;

// Rows [begin, end) of the whole matrix.
struct RowRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t rows() const { return end - begin; }
  friend bool operator==(const RowRange&, const RowRange&) = default;
};

// "[[0, 3), [3, 3), [3, 10)]" as error messages and plans print ranges.
std::string RangesString(std::span<const RowRange> ranges);

// ---------------------------------------------------------------------------
// Partitioning

// Splits rows into `shards` contiguous ranges (in order, covering [0, rows)
// exactly once; a row is never split) minimising the largest range's nnz.
// `row_ptr` is a CSR row pointer (rows + 1 non-decreasing values from 0).
// Among the ranges achieving that minimum, each boundary is put as close as
// possible to an even share of the non-zeros (i * nnz / shards), ties broken
// towards an even share of the rows, so an all-zero matrix splits by rows.
// Ranges may be empty (shards > rows, or non-zeros concentrated in a few
// rows). Guarantees: max range nnz <= ceil(nnz / shards) + max row nnz.
// Cost O(shards * log(rows) * log(nnz)).
// INVALID_ARGUMENT: shards outside [1, kMaxShards], empty or malformed
// row_ptr (naming the first bad position).
absl::StatusOr<std::vector<RowRange>> PartitionRowPtr(std::span<const int64_t> row_ptr, int shards);

// ---------------------------------------------------------------------------
// Sharded tensors

// A matrix held as row blocks, each on one device.
//   whole:           the description of the whole matrix: CSR (the sparse
//                    operand) or 2-D dense (a row-sharded SpMM result or C).
//   ranges:          one per shard, contiguous and covering [0, whole.rows()).
//   shards:          shard i holds rows ranges[i] x all columns, in whole's
//                    format, dtype and index dtype (CSR row_ptr rebased to 0,
//                    column indices unchanged); an empty range is a valid
//                    [0, cols] tensor.
//   device_of_shard: the device index holding shard i.
struct ShardedTensor {
  TensorDesc whole;
  std::vector<RowRange> ranges;
  std::vector<Tensor> shards;
  std::vector<int> device_of_shard;

  int shard_count() const { return static_cast<int>(shards.size()); }
};

// Checks the invariants above from descriptions only (no data read): whole
// valid, CSR or 2-D dense; 1..kMaxShards shards; the three vectors the same
// length; ranges contiguous from 0 to rows; every shard's description
// matching its range; shard nnz summing to whole.nnz; devices in
// [0, device_count) (device_count < 0: only >= 0 is checked).
absl::Status ValidateSharded(const ShardedTensor& t, int device_count = -1,
                             std::string_view field = "sharded");

// Splits a valid host sparse matrix into `shards` CSR row blocks balanced by
// non-zeros (PartitionRowPtr). COO, CSC, BSR and N:M are converted to CSR
// first, exactly (convert.h: BSR/N:M drop their zero fill), keeping the index
// dtype; dense is refused (nothing to balance: use SplitRows). The contents
// are validated (ValidateTensor) before anything is copied. Shards are host
// tensors, every device_of_shard 0 (see PlaceShards / AssignDevices).
absl::StatusOr<ShardedTensor> ShardByRows(const Tensor& a, int shards);

// Splits a valid host CSR or 2-D dense matrix at the given ranges (which
// must be contiguous and cover every row); device_of_shard all 0. Used for a
// C operand sharded like A, and by ShardByRows.
absl::StatusOr<ShardedTensor> SplitRows(const Tensor& t, std::span<const RowRange> ranges);

// Sets where each shard lives after checking one device per shard, each in
// [0, device_count). The shards' memory is not moved (a multi-GPU daemon
// copies each to its device; on simulated CPU devices they stay on the host).
absl::Status AssignDevices(ShardedTensor& t, std::vector<int> device_of_shard, int device_count);

// The whole matrix as one host tensor (CSR or dense, whole's description):
// the concatenation of the row blocks. Shards on a device are copied to the
// host first. Bit-exact inverse of ShardByRows / SplitRows.
absl::StatusOr<Tensor> Reassemble(const ShardedTensor& t);

// The same matrix split into `shards` new nnz-balanced blocks (a checkpoint
// restored onto another number of devices). Goes through the reassembled
// host matrix, so it needs host memory for the whole matrix plus the new
// shards; every device_of_shard 0. CSR only (dense: Reassemble + SplitRows).
absl::StatusOr<ShardedTensor> Reshard(const ShardedTensor& t, int shards);

// Bytes of each shard (Tensor::bytes), the input of PlaceShards.
std::vector<int64_t> ShardBytes(const ShardedTensor& t);

// ---------------------------------------------------------------------------
// Placement decisions (pure functions)

// Assigns each shard a device: shards largest first (ties: lower shard
// index), each to the device with the most free bytes left after the shards
// already placed (i.e. the least used one; ties: lower device index).
// Greedy, so it may refuse a packing an exact bin-packer would find; it never
// overcommits. RESOURCE_EXHAUSTED naming the shard, its size, and the free
// bytes per device (initially and at that point) when one does not fit.
// INVALID_ARGUMENT: no device, more than kMaxDevices devices or kMaxShards
// shards, a negative size (naming the index and value).
absl::StatusOr<std::vector<int>> PlaceShards(std::span<const int64_t> free_bytes,
                                             std::span<const int64_t> shard_bytes);

// Bytes of an op's operand resident on one device (a sharded operand
// contributes one entry per shard).
struct OperandBytes {
  int device = 0;
  int64_t bytes = 0;
};

// The device for an op's result of `result_bytes`: the one holding most of
// its operand bytes among those with room for the result (ties: more free
// bytes, then lower index); when no operand-holding device has room, the
// device with the most free bytes that does. RESOURCE_EXHAUSTED naming the
// result size and the free bytes per device when none has room.
// INVALID_ARGUMENT: no device, a device index out of range, a negative size.
absl::StatusOr<int> PlaceBesideOperands(std::span<const OperandBytes> operands,
                                        std::span<const int64_t> free_bytes, int64_t result_bytes);

// ---------------------------------------------------------------------------
// SpMM with a row-sharded sparse A:
//   C[rows_i, :] = epilogue(alpha * A_i * op(B) + beta * C_i)   for every shard i
// Every output row depends on one shard of A only, so each shard runs the
// ordinary Backend::Spmm on its device and the results are exactly the rows
// the unsharded product would produce (bit for bit on the CPU backend).

struct ShardedSpmmArgs {
  const ShardedTensor* a = nullptr;  // CSR shards
  const Tensor* b = nullptr;         // dense, whole, resident on device b_device
  int b_device = 0;
  // Refused: the rows of Aᵀ are A's columns, so every shard would contribute
  // a partial sum to every output row (a reduce-scatter, not a concatenation).
  // Transpose A before sharding it (or shard it by columns: not built).
  bool transpose_a = false;
  bool transpose_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;
  // Dense f32 C sharded like A (same ranges and devices); needed when beta != 0.
  const ShardedTensor* c = nullptr;
  Epilogue epilogue;  // bias (whole, on b_device) is broadcast like B
  DType out_dtype = DType::kF32;
  // Concatenate C onto gather_device; otherwise C stays sharded like A.
  bool gather = true;
  int gather_device = 0;
};

enum class ShardStepKind {
  kBroadcast,  // operand copied from `root` to every device in `devices`
  kCompute,    // Spmm of shard `shard` on `device`
  kGather,     // every shard's C rows copied to `root` and concatenated
};
std::string_view ShardStepKindName(ShardStepKind kind);  // "broadcast", ...

// One step of a plan. A CUDA/NCCL implementation fills the same steps with
// ncclBroadcast (or cudaMemcpyPeerAsync), a stream per device, and
// ncclAllGather/ncclSend-Recv into C's row blocks.
struct ShardStep {
  ShardStepKind kind = ShardStepKind::kCompute;
  std::string operand;       // broadcast: "b" or "epilogue.bias"; else "c"
  int root = -1;             // broadcast: source; gather: destination
  std::vector<int> devices;  // broadcast: receivers (excluding root)
  int shard = -1;            // compute
  int device = -1;           // compute: where it runs
  RowRange rows;             // compute: the C rows it writes
  int64_t bytes = 0;         // broadcast: per receiver; gather: all of C;
                             // compute: A shard bytes
};

struct ShardedSpmmPlan {
  std::vector<int64_t> out_shape;  // {m, n}
  std::vector<ShardStep> steps;    // broadcasts, then computes, then gather
  // One line per step ("broadcast b 0 -> [1, 2] 4096 B", ...), for logs.
  std::string ToString() const;
};

// Checks everything (A valid sharded CSR with devices < device_count, B,
// transposes, C sharded like A, epilogue, out_dtype: each shard's arguments
// pass CheckSpmm, whose messages are prefixed with "shard i: ") and lists the
// steps. Reads descriptions only.
absl::StatusOr<ShardedSpmmPlan> PlanShardedSpmm(const ShardedSpmmArgs& args, int device_count);

// Result of a sharded SpMM: with gather, `gathered` holds C [m, n] on the
// gather device and `sharded` is empty; without, `sharded` holds C as dense
// row blocks with A's ranges and devices.
struct ShardedSpmmResult {
  Tensor gathered;
  ShardedTensor sharded;
};

// Runs a plan from PlanShardedSpmm(args, backends.size()) with
// backends[d] the backend of device d. Broadcasts are copies (Tensor::CopyTo)
// only where the receiving backend's Device differs from the operand's, so
// simulated CPU devices share the host B. The first failing step's status
// is returned, prefixed with the step ("shard 2 on device 1: ...").
absl::StatusOr<ShardedSpmmResult> ExecuteShardedSpmm(const ShardedSpmmArgs& args,
                                                     const ShardedSpmmPlan& plan,
                                                     std::span<Backend* const> backends);

// PlanShardedSpmm then ExecuteShardedSpmm.
absl::StatusOr<ShardedSpmmResult> ShardedSpmm(const ShardedSpmmArgs& args,
                                              std::span<Backend* const> backends);

}  // namespace sparsed
