// The file format of one cached cubin (internal to the kernels library):
//
//   offset 0   8 bytes  magic "SPDJITC1"
//          8   u32 LE   CRC-32C of every byte from offset 12 to the end
//         12   u32 LE   meta length M
//         16   u64 LE   cubin length N
//         24   M bytes  meta: JSON {"key", "spec", "arch"}
//       24+M   N bytes  the cubin
//
// The file must be exactly 24 + M + N bytes long, so truncation is caught
// by the lengths and any other damage by the checksum. The meta lets an
// index that was lost be rebuilt from the files alone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sparsed::jit {

struct CubinMeta {
  std::string key, spec, arch;
};

inline constexpr size_t kCubinHeaderBytes = 24;

std::string EncodeCubinFile(const CubinMeta& meta, std::string_view cubin);

struct DecodedCubin {
  CubinMeta meta;
  std::string cubin;
};
// Checks magic, lengths and checksum; DATA_LOSS saying what is wrong.
absl::StatusOr<DecodedCubin> DecodeCubinFile(std::string_view file);
// Only the meta, from the first bytes of a file of `file_size` bytes (at
// least the header and the meta); checks magic and lengths, not the checksum.
absl::StatusOr<CubinMeta> DecodeCubinMeta(std::string_view prefix, uint64_t file_size);

}  // namespace sparsed::jit
