#include "jit_key.h"

#include <cstdint>
#include <string_view>

#include "sha256.h"

namespace sparsed::jit {
namespace {

// Bump when the framing or the cubin file format changes: old entries then
// simply stop matching.
constexpr std::string_view kFormatTag = "sparsed-jit-cubin-v1";

void AddNumber(Sha256& h, uint64_t n) {
  char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<char>(n >> (8 * i));
  h.Update(std::string_view(le, 8));
}

void AddPart(Sha256& h, std::string_view part) {
  AddNumber(h, part.size());
  h.Update(part);
}

}  // namespace

std::string JitKey(const JitKeyParts& parts) {
  Sha256 h;
  AddPart(h, kFormatTag);
  AddPart(h, parts.source);
  AddNumber(h, parts.options.size());
  for (const std::string& o : parts.options) AddPart(h, o);
  AddPart(h, parts.arch);
  AddPart(h, parts.nvrtc_version);
  AddNumber(h, static_cast<uint64_t>(static_cast<int64_t>(parts.driver_version)));
  return ToHex(h.Final());
}

}  // namespace sparsed::jit
