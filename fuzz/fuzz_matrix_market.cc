// Matrix Market reader: any input is refused with an error or gives a valid
// (sorted, duplicates kept) tensor that survives a write/read round trip.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "fuzz_util.h"
#include "sparsed/io/matrix_market.h"
#include "sparsed/validate.h"

using namespace sparsed;  // NOLINT(build/namespaces)

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<Tensor> t = io::ParseMatrixMarket(in, "fuzz");
  if (!t.ok()) {
    fuzz::Require(!t.status().message().empty(), "an error without a message");
    return 0;
  }
  // Coordinate entries come sorted but with the file's duplicates kept.
  ValidateOptions options;
  options.allow_unsorted = true;
  const absl::Status valid = ValidateTensor(*t, options);
  fuzz::Require(valid.ok(), "the reader gave an invalid tensor: " + valid.ToString());
  if (t->bytes() > fuzz::kMaxFuzzBytes || !fuzz::DenseFits(t->desc())) return 0;
  absl::StatusOr<Tensor> canonical = SortAndSumDuplicates(*t);
  fuzz::Require(canonical.ok(), "SortAndSumDuplicates: " + canonical.status().ToString());
  std::ostringstream out;
  const absl::Status written = io::WriteMatrixMarket(*t, out);
  fuzz::Require(written.ok(), "WriteMatrixMarket: " + written.ToString());
  std::istringstream back_in(out.str());
  absl::StatusOr<Tensor> back = io::ParseMatrixMarket(back_in, "round trip");
  fuzz::Require(back.ok(), "re-reading what was written: " + back.status().ToString());
  fuzz::Require(back->desc().shape == t->desc().shape, "round trip changed the shape");
  absl::StatusOr<Tensor> back_canonical = SortAndSumDuplicates(*back);
  fuzz::Require(back_canonical.ok(), "SortAndSumDuplicates: " + back_canonical.status().ToString());
  fuzz::Require(fuzz::DenseBits(*back_canonical) == fuzz::DenseBits(*canonical),
                "round trip changed a value");
  return 0;
}
