// Tensors: a description (format, dtype, shape, nnz) plus the component arrays
// that format stores, each in its own Buffer.
#pragma once

#include <cstdint>
#include <memory>
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

// Numbering matches proto sparsed.v1.Format.
enum class Format : int { kDense = 1, kCoo = 2, kCsr = 3, kCsc = 4, kBsr = 5, kNm = 6 };
inline constexpr Format kAllFormats[] = {Format::kDense, Format::kCoo, Format::kCsr,
                                         Format::kCsc,   Format::kBsr, Format::kNm};

std::string_view FormatName(Format f);  // "dense", "coo", "csr", "csc", "bsr", "nm"
std::optional<Format> ParseFormat(std::string_view name);
constexpr bool IsSparse(Format f) { return f != Format::kDense; }

// Everything about a tensor but its bytes.
struct TensorDesc {
  Format format = Format::kDense;
  DType dtype = DType::kF32;        // element type of "values"
  DType index_dtype = DType::kI32;  // element type of index arrays (sparse only)
  std::vector<int64_t> shape;       // dense: 1-D or 2-D; sparse: 2-D [rows, cols]
  // Stored entries (sparse only; dense: ignored). BSR: stored blocks. N:M:
  // stored slots, always rows * (cols / m) * n.
  int64_t nnz = 0;
  int64_t block_rows = 0;  // BSR: block height R (>= 1)
  int64_t block_cols = 0;  // BSR: block width C (>= 1)
  int nm_n = 0;            // N:M: kept entries per group (1 <= n < m)
  int nm_m = 0;            // N:M: group length along a row (m <= 32, divides cols)

  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  int64_t cols() const { return shape.size() < 2 ? 1 : shape[1]; }
  int64_t numel() const;  // product of shape (1 for a 0-d shape)
  // BSR: block rows ceil(rows / R) and block columns ceil(cols / C); edge
  // blocks are padded with zeros.
  int64_t block_row_count() const;
  int64_t block_col_count() const;
  // N:M: groups per row (cols / m).
  int64_t nm_groups() const { return nm_m > 0 ? cols() / nm_m : 0; }
  // True for 2:4, whose metadata is packed as the tensor cores expect.
  bool nm_packed_2_4() const { return nm_n == 2 && nm_m == 4; }
  // Scalar entries the arrays store (BSR: nnz * R * C; others: nnz; dense: numel).
  int64_t stored_values() const;
};

// One component array a format stores.
struct ComponentSpec {
  std::string name;  // "values", "row_ptr", "col_idx", "row_idx"
  DType dtype;
  int64_t count;  // elements
  int64_t bytes() const { return count * SizeOf(dtype); }
};

// The component arrays of a tensor so described, in canonical order:
//   dense: values[numel]                                   (row-major)
//   coo:   row_idx[nnz], col_idx[nnz], values[nnz]
//   csr:   row_ptr[rows + 1], col_idx[nnz], values[nnz]
//   csc:   col_ptr[cols + 1], row_idx[nnz], values[nnz]
//   bsr:   block_row_ptr[block_row_count + 1], block_col_idx[nnz],
//          values[nnz * R * C]                             (each block row-major)
//   nm:    values[rows * groups * n]  (row r, group g, slot s at (r*groups+g)*n+s)
//          meta (i32):
//            2:4  rows * ceil(groups / 8) words; group g of a row is the nibble
//                 at bits 4*(g % 8) of word g / 8: the two kept positions in
//                 the group (0..3), first (smaller) in the low 2 bits. This is
//                 the per-row sparsity metadata of PTX mma.sp (m16n8k16/k32).
//            other rows * groups * n positions, one per slot (0..m-1),
//                  strictly increasing within a group.
//          Every group keeps exactly n slots; a slot may hold 0.
// Checks the description first (see ValidateDesc) so that every count and byte
// size is known to be sane before anything is allocated.
absl::StatusOr<std::vector<ComponentSpec>> ComponentsOf(const TensorDesc& desc);

// Checks a description without looking at any data: known format and dtypes,
// shape rank and non-negative extents, nnz within [0, rows*cols], index dtype
// wide enough for every dimension and nnz, total size below 2^62 bytes.
// Errors are INVALID_ARGUMENT and name `field` (e.g. "header.desc") and value.
// "[2, 3]": a shape as error messages print it.
std::string ShapeString(const std::vector<int64_t>& shape);

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

  // A zero-copy view described by `desc` whose components are `source`'s
  // components named in `source_names` (in the canonical order of `desc`);
  // each must have the size `desc` needs. The memory is shared (writes through
  // either are seen by both) and lives as long as any tensor holding it.
  static absl::StatusOr<Tensor> View(TensorDesc desc, const Tensor& source,
                                     const std::vector<std::string>& source_names);
  // True when some component's memory is shared with another tensor.
  bool shares_memory() const;

  // This tensor's structure (index components shared, zero-copy) with
  // `values` as its values: a dense 1-D tensor on the same device with one
  // element per stored value; the result's dtype is values' dtype. For
  // example, an SDDMM result over a layer's pattern.
  absl::StatusOr<Tensor> WithValues(const Tensor& values) const;

 private:
  TensorDesc desc_;
  Device device_;
  std::vector<ComponentSpec> specs_;
  std::vector<std::shared_ptr<Buffer>> buffers_;  // parallel to specs_
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
