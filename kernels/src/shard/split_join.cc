// Splitting a matrix into row blocks and joining them back.
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "shard_internal.h"
#include "sparsed/convert.h"
#include "sparsed/shard.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed {
namespace {

using shard_internal::Invalid;

void CopyBytes(void* dst, const void* src, int64_t bytes) {
  if (bytes > 0) std::memcpy(dst, src, static_cast<size_t>(bytes));
}

char* Bytes(Tensor& t, std::string_view name) { return t.component(name)->as<char>(); }
const char* Bytes(const Tensor& t, std::string_view name) { return t.component(name)->as<char>(); }

// Writes offsets base + (src[i] - shift) into a row_ptr of index type I.
template <class I>
void WriteRowPtr(Tensor& t, const int64_t* src, int64_t count, int64_t shift, int64_t base) {
  std::span<I> rp = t.data<I>("row_ptr");
  for (int64_t i = 0; i < count; ++i) rp[i] = static_cast<I>(base + src[i] - shift);
}

absl::Status CheckSplittable(const Tensor& t, std::string_view field) {
  if (!t.device().is_cpu()) {
    return Invalid(
        StrCat(field, " is on ", t.device().ToString(), ": splitting needs a host tensor"));
  }
  RETURN_IF_ERROR(ValidateDesc(t.desc(), field));
  if (t.desc().shape.size() != 2) {
    return Invalid(StrCat(field, ".shape = ", ShapeString(t.desc().shape), " must be 2-D"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace shard_internal {

absl::StatusOr<ShardedTensor> SplitRowsUnchecked(const Tensor& t,
                                                 std::span<const RowRange> ranges) {
  const TensorDesc& w = t.desc();
  const int64_t cols = w.cols(), es = SizeOf(w.dtype);
  ShardedTensor out;
  out.whole = w;
  out.ranges.assign(ranges.begin(), ranges.end());
  out.device_of_shard.assign(ranges.size(), 0);
  out.shards.reserve(ranges.size());
  const std::vector<int64_t> rp = w.format == Format::kCsr ? RowPtrOf(t) : std::vector<int64_t>();
  const int64_t is = SizeOf(w.index_dtype);
  for (const RowRange& r : ranges) {
    TensorDesc d = w;
    d.shape = {r.rows(), cols};
    if (w.format == Format::kDense) {
      ASSIGN_OR_RETURN(Tensor s, Tensor::Allocate(d));
      CopyBytes(Bytes(s, "values"), Bytes(t, "values") + r.begin * cols * es, r.rows() * cols * es);
      out.shards.push_back(std::move(s));
      continue;
    }
    const int64_t first = rp[r.begin], last = rp[r.end];
    d.nnz = last - first;
    ASSIGN_OR_RETURN(Tensor s, Tensor::Allocate(d));
    VisitIndexType(w.index_dtype, [&](auto tag) {
      WriteRowPtr<decltype(tag)>(s, rp.data() + r.begin, r.rows() + 1, first, 0);
    });
    CopyBytes(Bytes(s, "col_idx"), Bytes(t, "col_idx") + first * is, d.nnz * is);
    CopyBytes(Bytes(s, "values"), Bytes(t, "values") + first * es, d.nnz * es);
    out.shards.push_back(std::move(s));
  }
  return out;
}

}  // namespace shard_internal

absl::StatusOr<ShardedTensor> SplitRows(const Tensor& t, std::span<const RowRange> ranges) {
  RETURN_IF_ERROR(CheckSplittable(t, "tensor"));
  if (t.format() != Format::kCsr && t.format() != Format::kDense) {
    return Invalid(StrCat("tensor.format = ", FormatName(t.format()),
                          " must be csr or dense (convert it first, or use ShardByRows)"));
  }
  RETURN_IF_ERROR(shard_internal::CheckRanges(ranges, t.desc().rows(), "ranges"));
  if (t.format() == Format::kCsr) RETURN_IF_ERROR(ValidateTensor(t, {}, "tensor"));
  return shard_internal::SplitRowsUnchecked(t, ranges);
}

absl::StatusOr<ShardedTensor> ShardByRows(const Tensor& a, int shards) {
  RETURN_IF_ERROR(shard_internal::CheckShardCount(shards, "shards"));
  RETURN_IF_ERROR(CheckSplittable(a, "a"));
  if (!IsSparse(a.format())) {
    return Invalid(StrCat("a.format = ", FormatName(a.format()),
                          " is not sparse: sharding balances non-zeros of a coo, csr, csc, bsr "
                          "or nm matrix (split a dense one with SplitRows)"));
  }
  RETURN_IF_ERROR(ValidateTensor(a, {}, "a"));
  Tensor converted;
  const Tensor* csr = &a;
  if (a.format() != Format::kCsr) {
    ASSIGN_OR_RETURN(converted, Convert(a, Format::kCsr, a.desc().index_dtype));
    csr = &converted;
  }
  const std::vector<int64_t> rp = shard_internal::RowPtrOf(*csr);
  ASSIGN_OR_RETURN(std::vector<RowRange> ranges, PartitionRowPtr(rp, shards));
  return shard_internal::SplitRowsUnchecked(*csr, ranges);
}

absl::StatusOr<Tensor> Reassemble(const ShardedTensor& t) {
  RETURN_IF_ERROR(ValidateSharded(t));
  // Shards held on a device come to the host first.
  std::vector<Tensor> copies(t.shards.size());
  std::vector<const Tensor*> host(t.shards.size());
  for (size_t i = 0; i < t.shards.size(); ++i) {
    host[i] = &t.shards[i];
    if (!t.shards[i].device().is_cpu()) {
      ASSIGN_OR_RETURN(copies[i], t.shards[i].CopyTo(Device::Cpu()));
      host[i] = &copies[i];
    }
  }
  const TensorDesc& w = t.whole;
  ASSIGN_OR_RETURN(Tensor out, Tensor::Allocate(w));
  const int64_t cols = w.cols(), es = SizeOf(w.dtype), is = SizeOf(w.index_dtype);
  if (w.format == Format::kDense) {
    for (size_t i = 0; i < host.size(); ++i) {
      CopyBytes(Bytes(out, "values") + t.ranges[i].begin * cols * es, Bytes(*host[i], "values"),
                t.ranges[i].rows() * cols * es);
    }
    return out;
  }
  int64_t base = 0;
  for (size_t i = 0; i < host.size(); ++i) {
    const Tensor& s = *host[i];
    const std::vector<int64_t> rp = shard_internal::RowPtrOf(s);
    if (rp.front() != 0 || rp.back() != s.desc().nnz) {
      return Invalid(StrCat("shards[", i, "].row_ptr runs from ", rp.front(), " to ", rp.back(),
                            " but the shard holds ", s.desc().nnz, " entries"));
    }
    // Shard i's offsets land at rows [begin, end] (its last one is the next
    // shard's first, rewritten to the same value).
    VisitIndexType(w.index_dtype, [&](auto tag) {
      using I = decltype(tag);
      std::span<I> dst = out.data<I>("row_ptr");
      for (size_t r = 0; r < rp.size(); ++r) {
        dst[t.ranges[i].begin + static_cast<int64_t>(r)] = static_cast<I>(base + rp[r]);
      }
    });
    CopyBytes(Bytes(out, "col_idx") + base * is, Bytes(s, "col_idx"), s.desc().nnz * is);
    CopyBytes(Bytes(out, "values") + base * es, Bytes(s, "values"), s.desc().nnz * es);
    base += s.desc().nnz;
  }
  return out;
}

absl::StatusOr<ShardedTensor> Reshard(const ShardedTensor& t, int shards) {
  RETURN_IF_ERROR(shard_internal::CheckShardCount(shards, "shards"));
  RETURN_IF_ERROR(ValidateSharded(t));
  if (t.whole.format != Format::kCsr) {
    return Invalid(StrCat("sharded.whole.format = ", FormatName(t.whole.format),
                          " must be csr to reshard by non-zeros"));
  }
  ASSIGN_OR_RETURN(Tensor whole, Reassemble(t));
  return ShardByRows(whole, shards);
}

}  // namespace sparsed
