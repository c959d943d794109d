// The safetensors layout of a checkpoint, shared by the writer, the reader
// and List (internal to the kernels library).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/tensor.h"

namespace sparsed::checkpoint::internal {

inline constexpr char kFormatValue[] = "sparsed-checkpoint";
inline constexpr char kVersionValue[] = "2";
// Version 1 keyed tensors by name (or id without one); still read.
inline constexpr char kVersion1Value[] = "1";
inline constexpr char kMetadataKey[] = "__metadata__";
inline constexpr char kTensorsKey[] = "sparsed.tensors";
inline constexpr char kChecksumsKey[] = "sparsed.checksums";
// Header lengths beyond this are refused before anything is read or allocated.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;

// "F32", "F16", "BF16", "I32", "I64".
std::string_view SafetensorsDType(DType t);
// The key of a tensor in a version-1 file: its name, or its id when it has
// none. Version 2 keys every tensor by its id, so no name can collide with
// another tensor's key or arrays, or with "__metadata__" (issue 17).
std::string Version1TensorKey(const std::string& id, const std::string& name);
// Dense: the key itself; sparse: "<key>.<component>".
std::string ArrayKey(std::string_view key, Format format, std::string_view component);
// 8 lowercase hex digits (fixed width: the writer patches them in place).
std::string CrcHex(uint32_t crc);

// One array of the file; offsets relative to the data region.
struct ArrayInfo {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

// One tensor of the metadata, checked against the arrays.
struct TensorInfo {
  std::string key, id, name;
  std::map<std::string, std::string> labels;
  TensorDesc desc;
  std::vector<ComponentSpec> specs;     // ComponentsOf(desc)
  std::vector<std::string> array_keys;  // parallel to specs
};

struct Header {
  std::map<std::string, ArrayInfo> arrays;
  std::vector<TensorInfo> tensors;            // in file order
  std::map<std::string, uint32_t> checksums;  // array key -> CRC-32C
};

// The header length stored in the first 8 bytes (`prefix`), checked against
// the file size: at least 2, at most kMaxHeaderBytes and file_size - 8.
absl::StatusOr<uint64_t> ParseHeaderLength(std::string_view prefix, uint64_t file_size,
                                           std::string_view source);

// Every check that needs only the header: JSON, arrays and their offsets in a
// data region of `data_size` bytes, the metadata against the arrays, the
// checksum of the metadata itself. Array checksums are left to the caller.
absl::StatusOr<Header> ParseHeader(std::string_view json, uint64_t data_size,
                                   std::string_view source);

}  // namespace sparsed::checkpoint::internal
