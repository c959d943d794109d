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
    case Format::kCsc:
      return "csc";
    case Format::kBsr:
      return "bsr";
    case Format::kNm:
      return "nm";
  }
  return "unknown";
}

std::optional<Format> ParseFormat(std::string_view name) {
  for (Format f : kAllFormats) {
    if (FormatName(f) == name) return f;
  }
  return std::nullopt;
}

int64_t TensorDesc::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int64_t TensorDesc::block_row_count() const {
  return block_rows > 0 ? (rows() + block_rows - 1) / block_rows : 0;
}

int64_t TensorDesc::block_col_count() const {
  return block_cols > 0 ? (cols() + block_cols - 1) / block_cols : 0;
}

int64_t TensorDesc::stored_values() const {
  if (format == Format::kDense) return numel();
  if (format == Format::kBsr) return nnz * block_rows * block_cols;
  return nnz;
}

namespace {

constexpr int64_t kMaxBytes = int64_t{1} << 62;
constexpr int64_t kMaxBlockSide = 1024;  // BSR block height/width

}  // namespace

std::string ShapeString(const std::vector<int64_t>& shape) {
  return StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status ValidateDesc(const TensorDesc& d, std::string_view field) {
  const int fmt = static_cast<int>(d.format);
  if (fmt < static_cast<int>(Format::kDense) || fmt > static_cast<int>(Format::kNm)) {
    return absl::InvalidArgumentError(
        StrCat(field, ".format = ", fmt, " is not one of DENSE, COO, CSR, CSC, BSR, NM"));
  }
  if (d.format != Format::kBsr && (d.block_rows != 0 || d.block_cols != 0)) {
    return absl::InvalidArgumentError(StrCat(field, ".block = [", d.block_rows, ", ", d.block_cols,
                                             "] is only for BSR, not ", FormatName(d.format)));
  }
  if (d.format != Format::kNm && (d.nm_n != 0 || d.nm_m != 0)) {
    return absl::InvalidArgumentError(StrCat(field, ".n:m = ", d.nm_n, ":", d.nm_m,
                                             " is only for NM, not ", FormatName(d.format)));
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
  if (d.format == Format::kBsr) {
    for (auto [name, v] :
         {std::pair{"block[0]", d.block_rows}, std::pair{"block[1]", d.block_cols}}) {
      if (v < 1 || v > kMaxBlockSide) {
        return absl::InvalidArgumentError(
            StrCat(field, ".", name, " = ", v, " is outside [1, ", kMaxBlockSide, "]"));
      }
    }
    const int64_t blocks = d.block_row_count() * d.block_col_count();
    if (d.nnz < 0 || d.nnz > blocks) {
      return absl::InvalidArgumentError(StrCat(field, ".nnz = ", d.nnz,
                                               " (stored blocks) is outside [0, block rows * block "
                                               "cols = ",
                                               blocks, "]"));
    }
    if (d.nnz > kMaxBytes / 16 / (d.block_rows * d.block_cols)) {
      return absl::InvalidArgumentError(StrCat(field, ".nnz = ", d.nnz, " blocks is too large"));
    }
  } else if (d.format == Format::kNm) {
    if (d.nm_m < 2 || d.nm_m > 32 || d.nm_n < 1 || d.nm_n >= d.nm_m) {
      return absl::InvalidArgumentError(
          StrCat(field, ".n:m = ", d.nm_n, ":", d.nm_m, " must satisfy 1 <= n < m <= 32"));
    }
    if (d.shape[1] % d.nm_m != 0) {
      return absl::InvalidArgumentError(
          StrCat(field, ".shape[1] = ", d.shape[1], " is not a multiple of m = ", d.nm_m));
    }
    const int64_t slots = d.shape[0] * (d.shape[1] / d.nm_m) * d.nm_n;
    if (d.nnz != slots) {
      return absl::InvalidArgumentError(StrCat(field, ".nnz = ", d.nnz,
                                               " must be rows * (cols / m) * n = ", slots, " for ",
                                               d.nm_n, ":", d.nm_m));
    }
  } else if (d.nnz < 0 || d.nnz > numel) {
    return absl::InvalidArgumentError(
        StrCat(field, ".nnz = ", d.nnz, " is outside [0, rows*cols = ", numel, "]"));
  }
  if (d.nnz > kMaxBytes / 16 || d.shape[0] > kMaxBytes / 16 || d.shape[1] > kMaxBytes / 16) {
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
    case Format::kCsc:
      return std::vector<ComponentSpec>{{"col_ptr", d.index_dtype, d.shape[1] + 1},
                                        {"row_idx", d.index_dtype, d.nnz},
                                        {"values", d.dtype, d.nnz}};
    case Format::kBsr:
      return std::vector<ComponentSpec>{{"block_row_ptr", d.index_dtype, d.block_row_count() + 1},
                                        {"block_col_idx", d.index_dtype, d.nnz},
                                        {"values", d.dtype, d.nnz * d.block_rows * d.block_cols}};
    case Format::kNm: {
      const int64_t meta = d.nm_packed_2_4() ? d.shape[0] * ((d.nm_groups() + 7) / 8) : d.nnz;
      return std::vector<ComponentSpec>{{"values", d.dtype, d.nnz}, {"meta", DType::kI32, meta}};
    }
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
    t.buffers_.push_back(std::make_shared<Buffer>(std::move(b)));
  }
  t.desc_ = std::move(desc);
  t.device_ = device;
  t.specs_ = std::move(specs);
  return t;
}

int64_t Tensor::bytes() const {
  int64_t total = 0;
  for (const std::shared_ptr<Buffer>& b : buffers_) total += b->size();
  return total;
}

Buffer* Tensor::component(std::string_view name) {
  for (size_t i = 0; i < specs_.size(); ++i) {
    if (specs_[i].name == name) return buffers_[i].get();
  }
  return nullptr;
}

absl::StatusOr<Tensor> Tensor::View(TensorDesc desc, const Tensor& source,
                                    const std::vector<std::string>& source_names) {
  ASSIGN_OR_RETURN(std::vector<ComponentSpec> specs, ComponentsOf(desc));
  if (specs.size() != source_names.size()) {
    return absl::InvalidArgumentError(StrCat("view of ", FormatName(desc.format), " needs ",
                                             specs.size(), " components, got ",
                                             source_names.size()));
  }
  Tensor t;
  for (size_t i = 0; i < specs.size(); ++i) {
    size_t k = 0;
    while (k < source.specs_.size() && source.specs_[k].name != source_names[i]) ++k;
    if (k == source.specs_.size()) {
      return absl::InvalidArgumentError(
          StrCat("view: the source has no component '", source_names[i], "'"));
    }
    if (source.specs_[k].dtype != specs[i].dtype ||
        source.buffers_[k]->size() != specs[i].bytes()) {
      return absl::InvalidArgumentError(
          StrCat("view: component '", source_names[i], "' (", source.buffers_[k]->size(),
                 " bytes, ", DTypeName(source.specs_[k].dtype), ") cannot be '", specs[i].name,
                 "' (", specs[i].bytes(), " bytes, ", DTypeName(specs[i].dtype), ")"));
    }
    t.buffers_.push_back(source.buffers_[k]);
  }
  if (!IsSparse(desc.format)) desc.nnz = desc.numel();
  t.desc_ = std::move(desc);
  t.device_ = source.device_;
  t.specs_ = std::move(specs);
  return t;
}

bool Tensor::shares_memory() const {
  for (const std::shared_ptr<Buffer>& b : buffers_) {
    if (b.use_count() > 1) return true;
  }
  return false;
}

const Buffer* Tensor::component(std::string_view name) const {
  return const_cast<Tensor*>(this)->component(name);
}

absl::StatusOr<Tensor> Tensor::Clone() const { return CopyTo(device_); }

absl::StatusOr<Tensor> Tensor::CopyTo(const Device& device) const {
  ASSIGN_OR_RETURN(Tensor t, Allocate(desc_, device));
  for (size_t i = 0; i < buffers_.size(); ++i) {
    const Buffer& from = *buffers_[i];
    Buffer& to = *t.buffers_[i];
    if (from.size() == 0) continue;
    if (device.is_cpu() && device_.is_cpu()) {
      std::memcpy(to.data(), from.data(), from.size());
    } else {
      RETURN_IF_ERROR(CopyBytes(to.data(), device, from.data(), device_, from.size()));
    }
  }
  return t;
}

absl::StatusOr<Tensor> Tensor::WithValues(const Tensor& values) const {
  if (values.format() != Format::kDense || values.desc().shape.size() != 1) {
    return absl::InvalidArgumentError("values must be a dense 1-D tensor");
  }
  if (values.device() != device_) {
    return absl::InvalidArgumentError(StrCat("values are on ", values.device().ToString(),
                                             " but the structure is on ", device_.ToString()));
  }
  if (values.desc().shape[0] != desc_.stored_values()) {
    return absl::InvalidArgumentError(StrCat("values has ", values.desc().shape[0],
                                             " elements but the structure stores ",
                                             desc_.stored_values()));
  }
  Tensor t;
  t.desc_ = desc_;
  t.desc_.dtype = values.desc().dtype;
  t.device_ = device_;
  ASSIGN_OR_RETURN(t.specs_, ComponentsOf(t.desc_));
  for (const ComponentSpec& spec : t.specs_) {
    if (spec.name == "values") {
      t.buffers_.push_back(values.buffers_[0]);
      continue;
    }
    size_t k = 0;
    while (k < specs_.size() && specs_[k].name != spec.name) ++k;
    if (k == specs_.size()) return absl::InternalError(StrCat("no component ", spec.name));
    t.buffers_.push_back(buffers_[k]);
  }
  return t;
}

}  // namespace sparsed
