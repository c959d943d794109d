// Checkpoint reader: any input is refused with an error or gives valid
// tensors that, saved again and re-loaded, come back identical.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "sparsed/checkpoint.h"
#include "sparsed/validate.h"

using namespace sparsed;  // NOLINT(build/namespaces)

namespace {

bool SameBytes(const Tensor& a, const Tensor& b) {
  if (a.specs().size() != b.specs().size()) return false;
  for (const ComponentSpec& spec : a.specs()) {
    const Buffer* x = a.component(spec.name);
    const Buffer* y = b.component(spec.name);
    if (y == nullptr || x->size() != y->size()) return false;
    if (x->size() > 0 && std::memcmp(x->data(), y->data(), x->size()) != 0) return false;
  }
  return true;
}

bool SameDesc(const TensorDesc& a, const TensorDesc& b) {
  return a.format == b.format && a.dtype == b.dtype && a.index_dtype == b.index_dtype &&
         a.shape == b.shape && a.nnz == b.nnz && a.block_rows == b.block_rows &&
         a.block_cols == b.block_cols && a.nm_n == b.nm_n && a.nm_m == b.nm_m;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<checkpoint::Entry>> got = checkpoint::Parse(bytes, "fuzz");
  if (!got.ok()) {
    fuzz::Require(!got.status().message().empty(), "an error without a message");
    return 0;
  }
  std::vector<checkpoint::EntryRef> refs;
  for (const checkpoint::Entry& e : *got) {
    const absl::Status valid = ValidateTensor(e.tensor);
    fuzz::Require(valid.ok(), "the reader gave an invalid tensor: " + valid.ToString());
    refs.push_back({e.id, e.name, e.labels, &e.tensor});
  }
  static const std::string dir = [] {
    const std::string d =
        (std::filesystem::temp_directory_path() / ("fuzz_checkpoint." + std::to_string(::getpid())))
            .string();
    std::filesystem::create_directories(d);
    return d;
  }();
  const std::string path = dir + "/round_trip.safetensors";
  const absl::Status saved = checkpoint::Save(path, refs);
  fuzz::Require(saved.ok(), "re-saving a parsed checkpoint: " + saved.ToString());
  absl::StatusOr<std::vector<checkpoint::Entry>> back = checkpoint::Load(path);
  fuzz::Require(back.ok(), "re-loading: " + back.status().ToString());
  fuzz::Require(back->size() == got->size(), "round trip changed the tensor count");
  for (size_t i = 0; i < got->size(); ++i) {
    const checkpoint::Entry& a = (*got)[i];
    const checkpoint::Entry& b = (*back)[i];
    fuzz::Require(a.id == b.id && a.name == b.name && a.labels == b.labels,
                  "round trip changed an id, name or labels");
    fuzz::Require(SameDesc(a.tensor.desc(), b.tensor.desc()), "round trip changed a description");
    fuzz::Require(SameBytes(a.tensor, b.tensor), "round trip changed the bytes");
  }
  return 0;
}
