#include "sparsed/tensor.h"

#include <cstring>
#include <limits>

#include "absl/strings/str_join.h"
#include "sparsed/device_memory.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {

std::string_view FormatName(Format f) {
  switch (f) {
    case Format::kDense:
      return "dense";
    case Format::kCoo:
      return "coo";
    case Format::kCsr:
      return "csr";
  }
  return "unknown";
}

std::optional<Format> ParseFormat(std::string_view name) {
  for (Format f : {Format::kDense, Format::kCoo, Format::kCsr}) {
    if (FormatName(f) == name) return f;
  }
  return std::nullopt;
}

int64_t TensorDesc::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {

constexpr int64_t kMaxBytes = int64_t{1} << 62;

std::string ShapeString(const std::vector<int64_t>& shape) {
  return StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

absl::Status ValidateDesc(const TensorDesc& d, std::string_view field) {
  const int fmt = static_cast<int>(d.format);
  if (fmt < static_cast<int>(Format::kDense) || fmt > static_cast<int>(Format::kCsr)) {
    return absl::InvalidArgumentError(
        StrCat(field, ".format = ", fmt, " is not one of DENSE, COO, CSR"));
  }
  const int dt = static_cast<int>(d.dtype);
  if (!IsValueType(d.dtype)) {
    return absl::InvalidArgumentError(
        StrCat(field, ".dtype = ", dt < 1 || dt > 5 ? StrCat(dt) : std::string(DTypeName(d.dtype)),
               " is not supported (values must be f32, f16 or bf16)"));
  }
  if (IsSparse(d.format) && !IsIndexType(d.index_dtype)) {
    return absl::InvalidArgumentError(StrCat(
        field, ".index_dtype = ", static_cast<int>(d.index_dtype), " is not one of I32, I64"));
  }
  if (d.format == Format::kDense) {
    if (d.shape.size() != 1 && d.shape.size() != 2) {
      return absl::InvalidArgumentError(StrCat(field, ".shape = ", ShapeString(d.shape),
                                               " must have 1 or 2 dimensions for dense"));
    }
  } else if (d.shape.size() != 2) {
    return absl::InvalidArgumentError(StrCat(field, ".shape = ", ShapeString(d.shape),
                                             " must have 2 dimensions for ", FormatName(d.format)));
  }
  // Extents: non-negative, and the product must not overflow.
  int64_t numel = 1;
  for (size_t i = 0; i < d.shape.size(); ++i) {
    if (d.shape[i] < 0) {
      return absl::InvalidArgumentError(
          StrCat(field, ".shape[", i, "] = ", d.shape[i], " is negative"));
    }
    if (d.shape[i] > 0 && numel > kMaxBytes / d.shape[i]) {
      return absl::InvalidArgumentError(
          StrCat(field, ".shape = ", ShapeString(d.shape), " is too large"));
    }
    numel *= d.shape[i];
  }
  if (d.format == Format::kDense) {
    if (numel > kMaxBytes / SizeOf(d.dtype)) {
      return absl::InvalidArgumentError(
          StrCat(field, ".shape = ", ShapeString(d.shape), " is too large"));
    }
    return absl::OkStatus();
  }
  if (d.nnz < 0 || d.nnz > numel) {
    return absl::InvalidArgumentError(
        StrCat(field, ".nnz = ", d.nnz, " is outside [0, rows*cols = ", numel, "]"));
  }
  if (d.nnz > kMaxBytes / 16 || d.shape[0] > kMaxBytes / 16) {
    return absl::InvalidArgumentError(StrCat(field, ".nnz = ", d.nnz, " is too large"));
  }
  if (d.index_dtype == DType::kI32) {
    constexpr int64_t kMax32 = std::numeric_limits<int32_t>::max();
    if (d.shape[0] > kMax32 || d.shape[1] > kMax32 || d.nnz > kMax32) {
      return absl::InvalidArgumentError(StrCat(field, ".index_dtype = i32 cannot index shape ",
                                               ShapeString(d.shape), " with nnz ", d.nnz,
                                               " (use I64)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ComponentSpec>> ComponentsOf(const TensorDesc& d) {
  RETURN_IF_ERROR(ValidateDesc(d));
  switch (d.format) {
    case Format::kDense:
      return std::vector<ComponentSpec>{{"values", d.dtype, d.numel()}};
    case Format::kCoo:
      return std::vector<ComponentSpec>{{"row_idx", d.index_dtype, d.nnz},
                                        {"col_idx", d.index_dtype, d.nnz},
                                        {"values", d.dtype, d.nnz}};
    case Format::kCsr:
      return std::vector<ComponentSpec>{{"row_ptr", d.index_dtype, d.shape[0] + 1},
                                        {"col_idx", d.index_dtype, d.nnz},
                                        {"values", d.dtype, d.nnz}};
  }
  return absl::InvalidArgumentError("unknown format");
}

absl::StatusOr<Tensor> Tensor::Allocate(TensorDesc desc, Device device) {
  ASSIGN_OR_RETURN(std::vector<ComponentSpec> specs, ComponentsOf(desc));
  if (!IsSparse(desc.format)) desc.nnz = desc.numel();
  Tensor t;
  t.buffers_.reserve(specs.size());
  for (const ComponentSpec& spec : specs) {
    ASSIGN_OR_RETURN(Buffer b, Buffer::Allocate(spec.bytes(), device));
    t.buffers_.push_back(std::move(b));
  }
  t.desc_ = std::move(desc);
  t.device_ = device;
  t.specs_ = std::move(specs);
  return t;
}

int64_t Tensor::bytes() const {
  int64_t total = 0;
  for (const Buffer& b : buffers_) total += b.size();
  return total;
}

Buffer* Tensor::component(std::string_view name) {
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return &buffers_[i];
  }
  return nullptr;
}

const Buffer* Tensor::component(std::string_view name) const {
  return const_cast<Tensor*>(this)->component(name);
}

absl::StatusOr<Tensor> Tensor::Clone() const { return CopyTo(device_); }

absl::StatusOr<Tensor> Tensor::CopyTo(const Device& device) const {
  ASSIGN_OR_RETURN(Tensor t, Allocate(desc_, device));
  for (size_t i = 0; i < buffers_.size(); ++i) {
    if (buffers_[i].size() == 0) continue;
    if (device.is_cpu() && device_.is_cpu()) {
      std::memcpy(t.buffers_[i].data(), buffers_[i].data(), buffers_[i].size());
    } else {
      RETURN_IF_ERROR(
          CopyBytes(t.buffers_[i].data(), device, buffers_[i].data(), device_, buffers_[i].size()));
    }
  }
  return t;
}

}  // namespace sparsed
