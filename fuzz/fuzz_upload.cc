// The upload path's tensor assembly, as the daemon runs it: an API header
// (FromProto, ValidateDesc), allocation, chunks through TensorAssembler,
// content validation and optional canonicalisation. Every step either refuses
// with INVALID_ARGUMENT or hands on a tensor the next step accepts.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/tensor_assembler.h"
#include "sparsed/validate.h"

using namespace sparsed;  // NOLINT(build/namespaces)

namespace {

void RequireInvalidArgument(const absl::Status& s, const std::string& step) {
  fuzz::Require(s.code() == absl::StatusCode::kInvalidArgument && !s.message().empty(),
                step + " refused with " + s.ToString());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  // Either a well-formed tensor's description and bytes, or arbitrary ones.
  const Format format = static_cast<Format>(in.ConsumeIntegralInRange(1, 6));
  std::optional<Tensor> source = fuzz::FuzzTensor(in, format);
  v1::TensorDesc header;
  if (source) {
    header = api::ToProto(source->desc());
  } else {
    const TensorDesc d = fuzz::FuzzDesc(in, format);
    header.set_format(static_cast<v1::Format>(static_cast<int>(d.format)));
    header.set_dtype(static_cast<v1::DType>(static_cast<int>(d.dtype)));
    header.set_index_dtype(static_cast<v1::DType>(static_cast<int>(d.index_dtype)));
    for (int64_t s : d.shape) header.add_shape(s);
    header.set_nnz(d.nnz);
    if (in.ConsumeBool()) header.add_block(d.block_rows);
    if (in.ConsumeBool()) header.add_block(d.block_cols);
    header.set_n(d.nm_n);
    header.set_m(d.nm_m);
  }
  const TensorDesc desc = api::FromProto(header);
  const absl::Status desc_ok = ValidateDesc(desc, "header.desc");
  if (!desc_ok.ok()) {
    RequireInvalidArgument(desc_ok, "ValidateDesc");
    return 0;
  }
  absl::StatusOr<std::vector<ComponentSpec>> specs = ComponentsOf(desc);
  fuzz::Require(specs.ok(), "ComponentsOf after ValidateDesc: " + specs.status().ToString());
  int64_t bytes = 0;
  for (const ComponentSpec& s : *specs) bytes += s.bytes();
  if (bytes > fuzz::kMaxFuzzBytes) return 0;
  absl::StatusOr<Tensor> t = Tensor::Allocate(desc);
  fuzz::Require(t.ok(), "Allocate after ValidateDesc: " + t.status().ToString());

  // Chunks: the source's bytes in fuzzed pieces, or fuzzed names/offsets/bytes.
  TensorAssembler assembler(*t);
  std::vector<int64_t> sent(specs->size(), 0);
  while (in.remaining_bytes() > 0) {
    const size_t k = in.ConsumeIntegralInRange<size_t>(0, specs->size() - 1);
    const std::string& name = (*specs)[k].name;
    absl::Status s;
    if (source && in.ConsumeIntegralInRange(0, 7) != 0) {
      const Buffer* b = source->component(name);
      const int64_t len =
          std::min<int64_t>(in.ConsumeIntegralInRange<int64_t>(0, 64), b->size() - sent[k]);
      s = assembler.AddChunk(name, sent[k], std::string_view(b->as<char>() + sent[k], len));
      if (s.ok()) sent[k] += len;
    } else {
      const std::string component = in.ConsumeBool() ? name : in.ConsumeRandomLengthString(16);
      const int64_t offset = in.ConsumeBool() ? sent[k] : in.ConsumeIntegral<int64_t>();
      const std::string chunk = in.ConsumeRandomLengthString(64);
      s = assembler.AddChunk(component, offset, chunk);
      if (s.ok()) {
        fuzz::Require(component == name && offset == sent[k], "a misplaced chunk was accepted");
        sent[k] += static_cast<int64_t>(chunk.size());
      }
    }
    if (!s.ok()) RequireInvalidArgument(s, "AddChunk");
    if (in.ConsumeIntegralInRange(0, 15) == 0) break;
  }
  if (source) {
    // Finish whatever the fuzzer left incomplete, half the time.
    if (in.ConsumeBool()) {
      for (size_t k = 0; k < specs->size(); ++k) {
        const Buffer* b = source->component((*specs)[k].name);
        const absl::Status s =
            assembler.AddChunk((*specs)[k].name, sent[k],
                               std::string_view(b->as<char>() + sent[k], b->size() - sent[k]));
        fuzz::Require(s.ok(), "completing the upload: " + s.ToString());
      }
    }
  }
  const absl::Status finished = assembler.Finish();
  if (!finished.ok()) {
    RequireInvalidArgument(finished, "Finish");
    return 0;
  }
  ValidateOptions options;
  options.allow_unsorted = in.ConsumeBool();
  const absl::Status valid = ValidateTensor(*t, options, "upload");
  if (!valid.ok()) {
    RequireInvalidArgument(valid, "ValidateTensor");
    return 0;
  }
  if (options.allow_unsorted) {
    absl::StatusOr<Tensor> canonical = SortAndSumDuplicates(*t);
    if (!canonical.ok()) {
      RequireInvalidArgument(canonical.status(), "SortAndSumDuplicates");
      return 0;
    }
    const absl::Status again = ValidateTensor(*canonical);
    fuzz::Require(again.ok(), "canonical tensor invalid: " + again.ToString());
  }
  return 0;
}
