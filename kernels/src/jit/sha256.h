// SHA-256 (FIPS 180-4), written here for the JIT cache keys (internal to the
// kernels library; not for secrets: no constant-time guarantees needed).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace sparsed::jit {

// Incremental hashing: Update any number of times, then Final once.
class Sha256 {
 public:
  Sha256();
  void Update(std::string_view bytes);
  // The 32-byte digest. The object must not be used afterwards.
  std::array<uint8_t, 32> Final();

 private:
  void Block(const uint8_t* block);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex digest of `bytes` (64 characters).
std::string Sha256Hex(std::string_view bytes);
std::string ToHex(const std::array<uint8_t, 32>& digest);

}  // namespace sparsed::jit
