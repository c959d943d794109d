// checkpoint_tool FILE.mtx OUT.safetensors: reads a Matrix Market file with
// sparsed::io, canonicalises it (sorted, duplicates summed) and saves a
// checkpoint holding it as CSR under the name "A" (id "a-id", label
// source=FILE) and, when it has at most 2^20 elements, as a dense array "A_dense"
// (id "d-id"). Used by tests/unit/test_checkpoint_interop.py, which reads the
// file with its own safetensors reader and compares with scipy.io.mmread; the
// fuzz seeds in fuzz/corpus/fuzz_checkpoint were written with it.
#include <cstdio>
#include <string>
#include <vector>

#include "sparsed/checkpoint.h"
#include "sparsed/convert.h"
#include "sparsed/io/matrix_market.h"
#include "sparsed/validate.h"

namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "%s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s FILE.mtx OUT.safetensors\n", argv[0]);
    return 2;
  }
  absl::StatusOr<sparsed::Tensor> read = sparsed::io::ReadMatrixMarket(argv[1]);
  if (!read.ok()) return Fail(read.status());
  sparsed::Tensor coo;
  if (read->format() == sparsed::Format::kDense) {
    absl::StatusOr<sparsed::Tensor> c = sparsed::Convert(*read, sparsed::Format::kCoo);
    if (!c.ok()) return Fail(c.status());
    coo = std::move(*c);
  } else {
    absl::StatusOr<sparsed::Tensor> c = sparsed::SortAndSumDuplicates(*read);
    if (!c.ok()) return Fail(c.status());
    coo = std::move(*c);
  }
  absl::StatusOr<sparsed::Tensor> csr = sparsed::Convert(coo, sparsed::Format::kCsr);
  if (!csr.ok()) return Fail(csr.status());
  std::vector<sparsed::checkpoint::EntryRef> entries = {
      {"a-id", "A", {{"source", argv[1]}}, &*csr}};
  absl::StatusOr<sparsed::Tensor> dense;
  if (csr->desc().rows() * csr->desc().cols() <= (int64_t{1} << 20)) {
    dense = sparsed::Convert(*csr, sparsed::Format::kDense);
    if (!dense.ok()) return Fail(dense.status());
    entries.push_back({"d-id", "A_dense", {}, &*dense});
  }
  const absl::Status s = sparsed::checkpoint::Save(argv[2], entries);
  if (!s.ok()) return Fail(s);
  return 0;
}
