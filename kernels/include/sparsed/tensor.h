// Tensors: a description (format, dtype, shape, nnz) plus the component arrays
// that format stores, each in its own Buffer.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/buffer.h"
#include "sparsed/dtype.h"

namespace sparsed {

// Numbering matches proto sparsed.v1.Format. CSC, BSR and N:M come later.
enum class Format : int { kDense = 1, kCoo = 2, kCsr = 3 };

std::string_view FormatName(Format f);  // "dense", "coo", "csr"
std::optional<Format> ParseFormat(std::string_view name);
constexpr bool IsSparse(Format f) { return f != Format::kDense; }

// Everything about a tensor but its bytes.
struct TensorDesc {
  Format format = Format::kDense;
  DType dtype = DType::kF32;        // element type of "values"
  DType index_dtype = DType::kI32;  // element type of index arrays (sparse only)
  std::vector<int64_t> shape;       // dense: 1-D or 2-D; sparse: 2-D [rows, cols]
  int64_t nnz = 0;                  // stored entries (sparse only; dense: ignored)

  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
  int64_t numel() const;  // product of shape (1 for a 0-d shape)
};

// One component array a format stores.
struct ComponentSpec {
  std::string name;  // "values", "row_ptr", "col_idx", "row_idx"
  DType dtype;
  int64_t count;  // elements
  int64_t bytes() const { return count * SizeOf(dtype); }
};

// The component arrays of a tensor so described, in canonical order:
//   dense: values[numel]
//   coo:   row_idx[nnz], col_idx[nnz], values[nnz]
//   csr:   row_ptr[rows + 1], col_idx[nnz], values[nnz]
// Checks the description first (see ValidateDesc) so that every count and byte
// size is known to be sane before anything is allocated.
absl::StatusOr<std::vector<ComponentSpec>> ComponentsOf(const TensorDesc& desc);

// Checks a description without looking at any data: known format and dtypes,
// shape rank and non-negative extents, nnz within [0, rows*cols], index dtype
// wide enough for every dimension and nnz, total size below 2^62 bytes.
// Errors are INVALID_ARGUMENT and name `field` (e.g. "header.desc") and value.
absl::Status ValidateDesc(const TensorDesc& desc, std::string_view field = "desc");

// A tensor in host or device memory. Move-only; Clone() copies.
class Tensor {
 public:
  Tensor() = default;
  // Allocates (uninitialised) every component of `desc`.
  static absl::StatusOr<Tensor> Allocate(TensorDesc desc, Device device = Device::Cpu());

  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;

  const TensorDesc& desc() const { return desc_; }
  Format format() const { return desc_.format; }
  const Device& device() const { return device_; }
  // Sum of component sizes.
  int64_t bytes() const;

  const std::vector<ComponentSpec>& specs() const { return specs_; }
  // nullptr when the format has no such component.
  Buffer* component(std::string_view name);
  const Buffer* component(std::string_view name) const;

  // Typed view of a component. The caller must know its dtype (an index
  // component is int32_t or int64_t per desc().index_dtype).
  template <class T>
  std::span<T> data(std::string_view name) {
    Buffer* b = component(name);
    return b ? std::span<T>(b->as<T>(), b->size() / sizeof(T)) : std::span<T>();
  }
  template <class T>
  std::span<const T> data(std::string_view name) const {
    const Buffer* b = component(name);
    return b ? std::span<const T>(b->as<T>(), b->size() / sizeof(T)) : std::span<const T>();
  }

  absl::StatusOr<Tensor> Clone() const;
  // A copy of this tensor on `device` (host or CUDA), complete on return.
  absl::StatusOr<Tensor> CopyTo(const Device& device) const;

 private:
  TensorDesc desc_;
  Device device_;
  std::vector<ComponentSpec> specs_;
  std::vector<Buffer> buffers_;  // parallel to specs_
};

// Calls f(tag) with tag an int32_t or int64_t value-initialised object, per the
// index dtype, so that templated code can pick the right index type:
//   VisitIndexType(desc.index_dtype, [&](auto tag) { using I = decltype(tag); ... });
template <class F>
decltype(auto) VisitIndexType(DType index_dtype, F&& f) {
  if (index_dtype == DType::kI64) return f(int64_t{});
  return f(int32_t{});
}

}  // namespace sparsed
