// Checkpoints: named tensors saved as one safetensors file, crash-safe, with a
// checksum per array, and a strict reader.
//
// File layout (https://huggingface.co/docs/safetensors): 8-byte little-endian
// header length N, N bytes of JSON header (padded with spaces to a multiple of
// 8), then the raw little-endian arrays back to back, with no holes. Header:
//   "__metadata__": {"format": "sparsed-checkpoint", "version": "2",
//                    "sparsed.tensors": "<JSON string: one object per tensor:
//                       key, id, name, labels, format, dtype, index_dtype,
//                       shape, nnz, block, n, m, components>",
//                    "sparsed.checksums": "<JSON string: array key -> CRC-32C
//                       as 8 lowercase hex digits; key "sparsed.tensors": the
//                       CRC-32C of the sparsed.tensors string itself>"}
//   "<key>":          dense tensors: the array itself (2-D or 1-D shape)
//   "<key>.<comp>":   sparse tensors: one 1-D array per component
//                     (e.g. "t-1f.row_ptr", "t-1f.col_idx", "t-1f.values"; N:M ".meta")
// <key> is the tensor's id (the daemon's handle), never its name, so no
// name can collide with another tensor's arrays or with "__metadata__"
// (version 1 keyed by name; Load still reads it). Any safetensors reader can
// open the file; names and the sparse structure are in __metadata__.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed::checkpoint {

// One tensor of a checkpoint.
struct Entry {
  std::string id;    // the id it was held under when saved
  std::string name;  // optional
  std::map<std::string, std::string> labels;
  Tensor tensor;  // Load: on the host
};

// A tensor to save; it may live on any device (components are copied to the
// file through a bounded host buffer).
struct EntryRef {
  std::string id;
  std::string name;
  std::map<std::string, std::string> labels;
  const Tensor* tensor = nullptr;
};

struct Summary {
  std::string name;  // checkpoint name (file stem)
  int64_t tensors = 0;
  int64_t bytes = 0;  // file size
  int64_t modified_unix_ms = 0;
};

// Checkpoint names: 1-128 characters of [A-Za-z0-9._-], not starting with '.'.
// INVALID_ARGUMENT naming `field` otherwise.
absl::Status CheckName(std::string_view name, std::string_view field = "name");

// Writes the entries to `path` atomically: a temporary file in the same
// directory, fsync, rename over `path`, fsync the directory. A crash at any
// moment leaves either the previous file or the complete new one. An empty
// id, the id "__metadata__", two entries with the same id or the same
// non-empty name, ids whose array keys collide ("W.values" beside a sparse
// "W") are INVALID_ARGUMENT, and so are ids, names or labels that are not
// valid UTF-8. Any name is otherwise fine. Contents are not re-validated
// here (Load validates every tensor).
absl::Status Save(const std::string& path, const std::vector<EntryRef>& entries);

// Reads and verifies a whole checkpoint before returning any of it: header
// length and JSON, every array's dtype/shape/byte length/offsets (inside the
// file, contiguous, no overlap or hole), the metadata against the arrays,
// every checksum, and every tensor with ValidateTensor. Any defect is
// INVALID_ARGUMENT (DATA_LOSS for a checksum mismatch) naming the file, the
// array or tensor and the offending value; NOT_FOUND if the file is absent.
absl::StatusOr<std::vector<Entry>> Load(const std::string& path);
// The same checks on bytes already in memory (what Load and the fuzzer use).
absl::StatusOr<std::vector<Entry>> Parse(std::string_view bytes, std::string_view source);

// Checkpoints in `dir` (files NAME.safetensors with NAME passing CheckName),
// sorted by name; temporary files (NAME.safetensors.tmp.*) are ignored. Reads
// only each header, with the header checks of Load (not the array checksums).
// A file whose header fails them is still listed, with tensors = -1. A
// missing `dir` gives an empty list.
absl::StatusOr<std::vector<Summary>> List(const std::string& dir);

// Removes the temporary files (NAME.safetensors.tmp.PID.N) in `dir` that
// saves interrupted by a crash left behind: those whose writer process no
// longer runs, and with own_pid_is_stale (at start-up, before any save) also
// those carrying this process's pid. Returns how many were removed.
absl::StatusOr<int64_t> RemoveStaleTemporaries(const std::string& dir, bool own_pid_is_stale);

// CRC-32C (Castagnoli) of bytes, continuing from `crc` (0 to start).
uint32_t Crc32c(std::string_view bytes, uint32_t crc = 0);

}  // namespace sparsed::checkpoint
