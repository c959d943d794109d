// ShardedTensor invariants, device assignment and the shared helpers.
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "shard_internal.h"
#include "sparsed/shard.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace shard_internal {

std::string IntsString(std::span<const int64_t> v) {
  return StrCat("[", absl::StrJoin(v, ", "), "]");
}
std::string IntsString(std::span<const int> v) { return StrCat("[", absl::StrJoin(v, ", "), "]"); }

absl::Status CheckShardCount(int64_t shards, std::string_view field) {
  if (shards < 1 || shards > kMaxShards) {
    return Invalid(StrCat(field, " = ", shards, " must be in [1, ", kMaxShards, "]"));
  }
  return absl::OkStatus();
}

absl::Status CheckRanges(std::span<const RowRange> ranges, int64_t rows, std::string_view field) {
  RETURN_IF_ERROR(CheckShardCount(static_cast<int64_t>(ranges.size()), StrCat(field, ".size()")));
  int64_t next = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    if (ranges[i].begin != next || ranges[i].end < ranges[i].begin) {
      return Invalid(StrCat(field, "[", i, "] = [", ranges[i].begin, ", ", ranges[i].end,
                            ") must start at row ", next,
                            " and not end before it (ranges are contiguous from row 0)"));
    }
    next = ranges[i].end;
  }
  if (next != rows) {
    return Invalid(StrCat(field, " = ", RangesString(ranges), " end at row ", next,
                          " but the matrix has ", rows, " rows"));
  }
  return absl::OkStatus();
}

std::vector<int64_t> RowPtrOf(const Tensor& csr) {
  return VisitIndexType(csr.desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    const std::span<const I> rp = csr.data<I>("row_ptr");
    return std::vector<int64_t>(rp.begin(), rp.end());
  });
}

}  // namespace shard_internal

using shard_internal::Invalid;

std::string RangesString(std::span<const RowRange> ranges) {
  std::string s = "[";
  for (size_t i = 0; i < ranges.size(); ++i) {
    s += StrCat(i ? ", " : "", "[", ranges[i].begin, ", ", ranges[i].end, ")");
  }
  return s + "]";
}

absl::Status ValidateSharded(const ShardedTensor& t, int device_count, std::string_view field) {
  const TensorDesc& w = t.whole;
  RETURN_IF_ERROR(ValidateDesc(w, StrCat(field, ".whole")));
  if (w.format != Format::kCsr && w.format != Format::kDense) {
    return Invalid(StrCat(field, ".whole.format = ", FormatName(w.format),
                          " must be csr or dense (row blocks of a matrix)"));
  }
  if (w.shape.size() != 2) {
    return Invalid(StrCat(field, ".whole.shape = ", ShapeString(w.shape), " must be 2-D"));
  }
  const size_t n = t.shards.size();
  RETURN_IF_ERROR(
      shard_internal::CheckShardCount(static_cast<int64_t>(n), StrCat(field, ".shards.size()")));
  if (t.ranges.size() != n || t.device_of_shard.size() != n) {
    return Invalid(StrCat(field, " has ", n, " shards but ", t.ranges.size(), " ranges and ",
                          t.device_of_shard.size(), " device_of_shard entries"));
  }
  RETURN_IF_ERROR(shard_internal::CheckRanges(t.ranges, w.rows(), StrCat(field, ".ranges")));
  int64_t nnz = 0;
  for (size_t i = 0; i < n; ++i) {
    const TensorDesc& d = t.shards[i].desc();
    const std::string name = StrCat(field, ".shards[", i, "]");
    if (d.format != w.format || d.dtype != w.dtype ||
        (w.format == Format::kCsr && d.index_dtype != w.index_dtype)) {
      return Invalid(StrCat(name, " is ", FormatName(d.format), " ", DTypeName(d.dtype), "/",
                            DTypeName(d.index_dtype), " but the whole is ", FormatName(w.format),
                            " ", DTypeName(w.dtype), "/", DTypeName(w.index_dtype)));
    }
    const std::vector<int64_t> want = {t.ranges[i].rows(), w.cols()};
    if (d.shape != want) {
      return Invalid(StrCat(name, ".shape = ", ShapeString(d.shape), " must be ", ShapeString(want),
                            " (rows ", t.ranges[i].begin, " to ", t.ranges[i].end,
                            " x all columns)"));
    }
    nnz += d.nnz;
    const int dev = t.device_of_shard[i];
    if (dev < 0 || (device_count >= 0 && dev >= device_count)) {
      return Invalid(StrCat(field, ".device_of_shard[", i, "] = ", dev, " is not a device (",
                            device_count >= 0 ? StrCat("0..", device_count - 1) : ">= 0", ")"));
    }
  }
  if (w.format == Format::kCsr && nnz != w.nnz) {
    return Invalid(
        StrCat(field, " shards hold ", nnz, " entries but ", field, ".whole.nnz = ", w.nnz));
  }
  return absl::OkStatus();
}

absl::Status AssignDevices(ShardedTensor& t, std::vector<int> device_of_shard, int device_count) {
  if (device_count < 1 || device_count > kMaxDevices) {
    return Invalid(StrCat("device_count = ", device_count, " must be in [1, ", kMaxDevices, "]"));
  }
  if (device_of_shard.size() != t.shards.size()) {
    return Invalid(StrCat("device_of_shard has ", device_of_shard.size(), " entries but there are ",
                          t.shards.size(), " shards"));
  }
  for (size_t i = 0; i < device_of_shard.size(); ++i) {
    if (device_of_shard[i] < 0 || device_of_shard[i] >= device_count) {
      return Invalid(StrCat("device_of_shard[", i, "] = ", device_of_shard[i],
                            " is not a device (0..", device_count - 1, ")"));
    }
  }
  t.device_of_shard = std::move(device_of_shard);
  return absl::OkStatus();
}

std::vector<int64_t> ShardBytes(const ShardedTensor& t) {
  std::vector<int64_t> bytes;
  bytes.reserve(t.shards.size());
  for (const Tensor& s : t.shards) bytes.push_back(s.bytes());
  return bytes;
}

}  // namespace sparsed
