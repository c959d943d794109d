// Validator of one format (SPARSED_FUZZ_FORMAT, numbered as sparsed::Format):
// every tensor is either refused with INVALID_ARGUMENT or valid, and a valid
// one (canonicalised first when unsorted input is allowed) satisfies the
// conversion, transposition and inspection invariants.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "sparsed/validate.h"

using namespace sparsed;  // NOLINT(build/namespaces)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::optional<Tensor> t = fuzz::FuzzTensor(in, static_cast<Format>(SPARSED_FUZZ_FORMAT));
  if (!t) return 0;
  ValidateOptions options;
  options.allow_unsorted = in.ConsumeBool();
  options.reject_non_finite = in.ConsumeBool();
  const absl::Status valid = ValidateTensor(*t, options);
  if (!valid.ok()) {
    fuzz::Require(valid.code() == absl::StatusCode::kInvalidArgument && !valid.message().empty(),
                  "ValidateTensor refused with " + valid.ToString());
    return 0;
  }
  if (options.allow_unsorted) {
    absl::StatusOr<Tensor> canonical = SortAndSumDuplicates(*t);
    const Format f = t->format();
    if (f == Format::kCoo || f == Format::kCsr || f == Format::kCsc) {
      fuzz::Require(canonical.ok(), "SortAndSumDuplicates: " + canonical.status().ToString());
    }
    if (!canonical.ok()) return 0;
    const absl::Status again = ValidateTensor(*canonical);
    fuzz::Require(again.ok(), "SortAndSumDuplicates gave an invalid tensor: " + again.ToString());
    fuzz::CheckValidTensorInvariants(*canonical);
    return 0;
  }
  fuzz::CheckValidTensorInvariants(*t);
  return 0;
}
