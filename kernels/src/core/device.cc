#include "sparsed/device.h"

#include <charconv>

#include "sparsed/str_cat.h"

namespace sparsed {

std::string Device::ToString() const {
  return kind == Kind::kCpu ? std::string("cpu") : StrCat("cuda:", index);
}

absl::StatusOr<Device> ParseDevice(std::string_view text) {
  if (text == "cpu") return Device::Cpu();
  constexpr std::string_view kCuda = "cuda:";
  if (text.substr(0, kCuda.size()) == kCuda) {
    std::string_view digits = text.substr(kCuda.size());
    int index = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (ec == std::errc() && end == digits.data() + digits.size() && index >= 0 &&
        !digits.empty()) {
      return Device::Cuda(index);
    }
  }
  return absl::InvalidArgumentError(
      StrCat("device '", std::string(text), "' is not one of cpu, cuda:N"));
}

}  // namespace sparsed
