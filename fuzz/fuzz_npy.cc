// .npy reader: any input is refused with an error or gives a valid tensor
// whose encoding reads back to the same tensor.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "sparsed/io/npy.h"
#include "sparsed/validate.h"

using namespace sparsed;  // NOLINT(build/namespaces)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Tensor> t = io::ParseNpy(bytes, "fuzz");
  if (!t.ok()) {
    fuzz::Require(!t.status().message().empty(), "an error without a message");
    return 0;
  }
  const absl::Status valid = ValidateTensor(*t);
  fuzz::Require(valid.ok(), "the reader gave an invalid tensor: " + valid.ToString());
  absl::StatusOr<std::string> encoded = io::EncodeNpy(*t);
  fuzz::Require(encoded.ok(), "EncodeNpy: " + encoded.status().ToString());
  absl::StatusOr<Tensor> back = io::ParseNpy(*encoded, "round trip");
  fuzz::Require(back.ok(), "re-reading the encoding: " + back.status().ToString());
  fuzz::Require(back->desc().shape == t->desc().shape && back->desc().dtype == t->desc().dtype,
                "round trip changed the description");
  const Buffer* a = t->component("values");
  const Buffer* b = back->component("values");
  fuzz::Require(a->size() == b->size() && std::string_view(a->as<char>(), a->size()) ==
                                              std::string_view(b->as<char>(), b->size()),
                "round trip changed the bytes");
  return 0;
}
