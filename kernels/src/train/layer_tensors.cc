// Device/host helpers of SparseLinear: zeros, flat views of values, and the
// trip of a CSR pattern's index arrays (never its values) through the host.
#include <cstring>
#include <limits>

#include "layer_internal.h"
#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::train {

absl::StatusOr<Tensor> Zeros(const Device& device, int64_t n) {
  TensorDesc d;
  d.format = Format::kDense;
  d.dtype = DType::kF32;
  d.shape = {n};
  ASSIGN_OR_RETURN(Tensor host, Tensor::Allocate(d, Device::Cpu()));
  if (n > 0) std::memset(host.component("values")->data(), 0, n * sizeof(float));
  if (device.is_cpu()) return host;
  return host.CopyTo(device);
}

absl::StatusOr<Tensor> FlatValues(const Tensor& t) {
  TensorDesc d;
  d.format = Format::kDense;
  d.dtype = t.desc().dtype;
  d.shape = {t.desc().stored_values()};
  return Tensor::View(std::move(d), t, {"values"});
}

DType IndexDtypeFor(int64_t rows, int64_t cols, int64_t nnz) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  return rows < kMax && cols <= kMax && nnz <= kMax ? DType::kI32 : DType::kI64;
}

absl::StatusOr<HostPattern> ReadPattern(const Tensor& csr) {
  if (csr.format() != Format::kCsr) {
    return absl::InternalError(StrCat("pattern is ", FormatName(csr.format()), ", not csr"));
  }
  HostPattern p;
  p.rows = csr.desc().rows();
  p.cols = csr.desc().cols();
  p.row_ptr.resize(p.rows + 1);
  p.col_idx.resize(csr.desc().nnz);
  return VisitIndexType(csr.desc().index_dtype, [&](auto tag) -> absl::StatusOr<HostPattern> {
    using I = decltype(tag);
    for (auto [name, out] : {std::pair{"row_ptr", &p.row_ptr}, std::pair{"col_idx", &p.col_idx}}) {
      std::vector<I> raw(out->size());
      if (!raw.empty()) {
        RETURN_IF_ERROR(CopyBytes(raw.data(), Device::Cpu(), csr.component(name)->data(),
                                  csr.device(), static_cast<int64_t>(raw.size() * sizeof(I))));
      }
      out->assign(raw.begin(), raw.end());
    }
    return std::move(p);
  });
}

absl::StatusOr<Tensor> BuildCsr(const HostPattern& pattern, DType index_dtype,
                                const Tensor& values) {
  TensorDesc d;
  d.format = Format::kCsr;
  d.dtype = DType::kF32;
  d.index_dtype = index_dtype;
  d.shape = {pattern.rows, pattern.cols};
  d.nnz = pattern.nnz();
  // Allocated on the device with every component; the values allocation is
  // replaced by `values` (WithValues) and freed with this temporary.
  ASSIGN_OR_RETURN(Tensor structure, Tensor::Allocate(d, values.device()));
  RETURN_IF_ERROR(VisitIndexType(index_dtype, [&](auto tag) -> absl::Status {
    using I = decltype(tag);
    for (auto [name, in] :
         {std::pair{"row_ptr", &pattern.row_ptr}, std::pair{"col_idx", &pattern.col_idx}}) {
      if (in->empty()) continue;
      std::vector<I> raw(in->begin(), in->end());
      RETURN_IF_ERROR(CopyBytes(structure.component(name)->data(), values.device(), raw.data(),
                                Device::Cpu(), static_cast<int64_t>(raw.size() * sizeof(I))));
    }
    return absl::OkStatus();
  }));
  return structure.WithValues(values);
}

absl::Status ApplyPattern(Backend& backend, LayerData& layer, const HostPattern& pattern,
                          const std::vector<int64_t>& source) {
  ASSIGN_OR_RETURN(Tensor old_values, FlatValues(layer.weight));
  ASSIGN_OR_RETURN(Tensor values, backend.GatherOrZero(old_values, source));
  // Gather every weight state first so that a failure leaves the layer as it was.
  std::map<std::string, Tensor> gathered;
  for (auto& [name, tensor] : layer.state) {
    if (!name.starts_with("weight.")) continue;
    ASSIGN_OR_RETURN(Tensor g, backend.GatherOrZero(tensor, source));
    gathered.emplace(name, std::move(g));
  }
  ASSIGN_OR_RETURN(Tensor grad, Zeros(layer.device, pattern.nnz()));
  ASSIGN_OR_RETURN(Tensor weight, BuildCsr(pattern, layer.weight.desc().index_dtype, values));
  layer.weight = std::move(weight);
  layer.weight_grad = std::move(grad);
  for (auto& [name, g] : gathered) layer.state[name] = std::move(g);
  return absl::OkStatus();
}

}  // namespace sparsed::train
