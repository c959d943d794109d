// Sharded tensors as checkpoint entries: one entry per shard, the partition
// and the whole's description in labels, everything checked on the way back.
#include "sparsed/shard_checkpoint.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "shard_internal.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using shard_internal::Invalid;

// The labels every shard repeats, in the order they are compared.
constexpr std::string_view kCommonLabels[] = {
    kShardCountLabel, kWholeFormatLabel, kWholeDTypeLabel, kWholeIndexDTypeLabel,
    kWholeRowsLabel,  kWholeColsLabel,   kWholeNnzLabel};

const std::string* Label(const checkpoint::Entry& e, std::string_view key) {
  auto it = e.labels.find(std::string(key));
  return it == e.labels.end() ? nullptr : &it->second;
}

absl::StatusOr<std::string> RequireLabel(const checkpoint::Entry& e, std::string_view label,
                                         std::string_view what) {
  const std::string* v = Label(e, label);
  if (v == nullptr) return Invalid(StrCat(what, " lacks the label ", label));
  return *v;
}

// A canonical non-negative decimal (no sign, no leading zero, no spaces)
// no larger than `max`.
absl::StatusOr<int64_t> LabelInt(const checkpoint::Entry& e, std::string_view label, int64_t max,
                                 std::string_view what) {
  ASSIGN_OR_RETURN(const std::string s, RequireLabel(e, label, what));
  int64_t v = -1;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0 || StrCat(v) != s) {
    return Invalid(
        StrCat(what, ": label ", label, " = '", s, "' must be a non-negative decimal integer"));
  }
  if (v > max) {
    return Invalid(StrCat(what, ": label ", label, " = ", v, " must be at most ", max));
  }
  return v;
}

// One shard entry's labels, parsed.
struct ShardLabels {
  size_t pos = 0;  // in `entries`
  std::string what;
  int64_t index = 0, count = 0, begin = 0, end = 0;
};

absl::StatusOr<TensorDesc> ParseWhole(const checkpoint::Entry& e, std::string_view what) {
  TensorDesc w;
  ASSIGN_OR_RETURN(const std::string format, RequireLabel(e, kWholeFormatLabel, what));
  const std::optional<Format> f = ParseFormat(format);
  if (!f.has_value() || (*f != Format::kCsr && *f != Format::kDense)) {
    return Invalid(StrCat(what, ": label ", kWholeFormatLabel, " = '", format,
                          "' must be csr or dense (row blocks of a matrix)"));
  }
  w.format = *f;
  for (auto [label, out] :
       {std::pair{kWholeDTypeLabel, &w.dtype}, std::pair{kWholeIndexDTypeLabel, &w.index_dtype}}) {
    ASSIGN_OR_RETURN(const std::string s, RequireLabel(e, label, what));
    const std::optional<DType> t = ParseDType(s);
    if (!t.has_value()) {
      return Invalid(StrCat(what, ": label ", label, " = '", s, "' is not a dtype"));
    }
    *out = *t;
  }
  constexpr int64_t kMax = INT64_MAX;
  ASSIGN_OR_RETURN(const int64_t rows, LabelInt(e, kWholeRowsLabel, kMax, what));
  ASSIGN_OR_RETURN(const int64_t cols, LabelInt(e, kWholeColsLabel, kMax, what));
  ASSIGN_OR_RETURN(w.nnz, LabelInt(e, kWholeNnzLabel, kMax, what));
  w.shape = {rows, cols};
  RETURN_IF_ERROR(ValidateDesc(w, StrCat(what, ": whole (labels sparsed.whole.*)")));
  return w;
}

}  // namespace

std::string ShardEntryId(std::string_view key, int index) { return StrCat(key, "/shard/", index); }

absl::Status AppendShardedEntries(const ShardedTensor& t, std::string_view key,
                                  std::vector<checkpoint::EntryRef>* refs) {
  if (key.empty()) return Invalid("key must not be empty");
  RETURN_IF_ERROR(ValidateSharded(t));
  const TensorDesc& w = t.whole;
  std::map<std::string, std::string> common = {
      {std::string(kShardedLabel), std::string(key)},
      {std::string(kShardCountLabel), StrCat(t.shard_count())},
      {std::string(kWholeFormatLabel), std::string(FormatName(w.format))},
      {std::string(kWholeDTypeLabel), std::string(DTypeName(w.dtype))},
      {std::string(kWholeIndexDTypeLabel), std::string(DTypeName(w.index_dtype))},
      {std::string(kWholeRowsLabel), StrCat(w.rows())},
      {std::string(kWholeColsLabel), StrCat(w.cols())},
      {std::string(kWholeNnzLabel), StrCat(w.nnz)},
  };
  std::vector<checkpoint::EntryRef> out;
  out.reserve(t.shards.size());
  for (int i = 0; i < t.shard_count(); ++i) {
    std::map<std::string, std::string> labels = common;
    labels[std::string(kShardIndexLabel)] = StrCat(i);
    labels[std::string(kShardBeginLabel)] = StrCat(t.ranges[i].begin);
    labels[std::string(kShardEndLabel)] = StrCat(t.ranges[i].end);
    out.push_back({ShardEntryId(key, i), "", std::move(labels), &t.shards[i]});
  }
  refs->insert(refs->end(), std::make_move_iterator(out.begin()),
               std::make_move_iterator(out.end()));
  return absl::OkStatus();
}

absl::StatusOr<ShardedTensor> TakeSharded(std::vector<checkpoint::Entry>& entries,
                                          std::string_view key, std::string_view source) {
  std::vector<ShardLabels> found;
  for (size_t p = 0; p < entries.size(); ++p) {
    const std::string* k = Label(entries[p], kShardedLabel);
    if (k != nullptr && *k == key) {
      found.push_back({p, StrCat(source, ": entry '", entries[p].id, "' of sharded '", key, "'")});
    }
  }
  if (found.empty()) {
    return absl::NotFoundError(StrCat(source, ": no sharded tensor '", key, "' (no entry has ",
                                      kShardedLabel, " = '", key, "')"));
  }

  // The count and the whole's description: parsed from the first entry,
  // repeated identically by every other.
  const checkpoint::Entry& first = entries[found[0].pos];
  ASSIGN_OR_RETURN(const int64_t count,
                   LabelInt(first, kShardCountLabel, INT64_MAX, found[0].what));
  if (count < 1 || count > kMaxShards) {
    return Invalid(StrCat(found[0].what, ": label ", kShardCountLabel, " = ", count,
                          " must be in [1, ", kMaxShards, "]"));
  }
  ASSIGN_OR_RETURN(const TensorDesc whole, ParseWhole(first, found[0].what));
  for (ShardLabels& s : found) {
    const checkpoint::Entry& e = entries[s.pos];
    for (std::string_view label : kCommonLabels) {
      ASSIGN_OR_RETURN(const std::string v, RequireLabel(e, label, s.what));
      if (v != *Label(first, label)) {
        return Invalid(StrCat(s.what, ": label ", label, " = '", v, "' differs from entry '",
                              first.id, "''s '", *Label(first, label), "'"));
      }
    }
    ASSIGN_OR_RETURN(s.index, LabelInt(e, kShardIndexLabel, INT64_MAX, s.what));
    if (s.index >= count) {
      return Invalid(StrCat(s.what, ": label ", kShardIndexLabel, " = ", s.index, " is not below ",
                            kShardCountLabel, " = ", count));
    }
    const std::string want_id = ShardEntryId(key, static_cast<int>(s.index));
    if (e.id != want_id) {
      return Invalid(StrCat(s.what, ": label ", kShardIndexLabel, " = ", s.index,
                            " but the entry's id is not '", want_id, "'"));
    }
    ASSIGN_OR_RETURN(s.begin, LabelInt(e, kShardBeginLabel, INT64_MAX, s.what));
    ASSIGN_OR_RETURN(s.end, LabelInt(e, kShardEndLabel, INT64_MAX, s.what));
  }
  if (static_cast<int64_t>(found.size()) > count) {
    return Invalid(StrCat(source, ": sharded '", key, "' has ", found.size(), " entries but label ",
                          kShardCountLabel, " = ", count));
  }
  std::sort(found.begin(), found.end(),
            [](const ShardLabels& a, const ShardLabels& b) { return a.index < b.index; });
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i].index != static_cast<int64_t>(i)) {
      return Invalid(StrCat(source, ": sharded '", key, "' has label ", kShardCountLabel, " = ",
                            count, " but shard ", i, " (entry '",
                            ShardEntryId(key, static_cast<int>(i)), "') is ",
                            found[i].index < static_cast<int64_t>(i) ? "there twice" : "missing"));
    }
  }
  if (static_cast<int64_t>(found.size()) < count) {
    return Invalid(StrCat(source, ": sharded '", key, "' has label ", kShardCountLabel, " = ",
                          count, " but only ", found.size(), " shard entries (entry '",
                          ShardEntryId(key, static_cast<int>(found.size())), "' is missing)"));
  }

  // Ranges in index order, contiguous from row 0 to the whole's rows, and
  // each shard's tensor described by its range.
  int64_t next = 0, nnz = 0;
  for (const ShardLabels& s : found) {
    if (s.begin != next) {
      return Invalid(StrCat(s.what, ": label ", kShardBeginLabel, " = ", s.begin, " must be ", next,
                            " (the previous shard ends there; ranges are contiguous from row "
                            "0, in shard order: ",
                            s.begin < next ? "this one overlaps it" : "rows would be missing",
                            ")"));
    }
    if (s.end < s.begin || s.end > whole.rows()) {
      return Invalid(StrCat(s.what, ": label ", kShardEndLabel, " = ", s.end, " must be in [",
                            s.begin, ", ", whole.rows(), "] (", kShardBeginLabel, " = ", s.begin,
                            ", ", kWholeRowsLabel, " = ", whole.rows(), ")"));
    }
    next = s.end;
    const Tensor& t = entries[s.pos].tensor;
    const TensorDesc& d = t.desc();
    if (d.format != whole.format || d.dtype != whole.dtype ||
        (whole.format == Format::kCsr && d.index_dtype != whole.index_dtype)) {
      return Invalid(StrCat(s.what, ": the tensor is ", FormatName(d.format), " ",
                            DTypeName(d.dtype), "/", DTypeName(d.index_dtype),
                            " but the whole (labels sparsed.whole.*) is ", FormatName(whole.format),
                            " ", DTypeName(whole.dtype), "/", DTypeName(whole.index_dtype)));
    }
    const std::vector<int64_t> want = {s.end - s.begin, whole.cols()};
    if (d.shape != want) {
      return Invalid(StrCat(s.what, ": the tensor's shape ", ShapeString(d.shape), " must be ",
                            ShapeString(want), " (rows ", s.begin, " to ", s.end,
                            " of labels sparsed.shard.begin/end x ", kWholeColsLabel, " = ",
                            whole.cols(), ")"));
    }
    if (!t.device().is_cpu()) {
      return Invalid(
          StrCat(s.what, ": the tensor is on ", t.device().ToString(), ", not the host"));
    }
    nnz += d.nnz;
  }
  if (next != whole.rows()) {
    return Invalid(StrCat(found.back().what, ": label ", kShardEndLabel, " = ", next,
                          " must be the last row, ", kWholeRowsLabel, " = ", whole.rows()));
  }
  if (whole.format == Format::kCsr && nnz != whole.nnz) {
    return Invalid(StrCat(source, ": sharded '", key, "': the shards hold ", nnz,
                          " entries but label ", kWholeNnzLabel, " = ", whole.nnz));
  }

  ShardedTensor out;
  out.whole = whole;
  out.device_of_shard.assign(found.size(), 0);
  for (const ShardLabels& s : found) out.ranges.push_back({s.begin, s.end});
  std::set<size_t> taken;
  for (const ShardLabels& s : found) {
    out.shards.push_back(std::move(entries[s.pos].tensor));
    taken.insert(s.pos);
  }
  // Everything above implies the invariants; checked again, and on failure
  // the tensors go back so that `entries` is unchanged.
  if (absl::Status st = ValidateSharded(out, -1, StrCat(source, ": sharded '", key, "'"));
      !st.ok()) {
    for (size_t i = 0; i < found.size(); ++i) {
      entries[found[i].pos].tensor = std::move(out.shards[i]);
    }
    return st;
  }
  std::vector<checkpoint::Entry> rest;
  rest.reserve(entries.size() - taken.size());
  for (size_t p = 0; p < entries.size(); ++p) {
    if (!taken.count(p)) rest.push_back(std::move(entries[p]));
  }
  entries = std::move(rest);
  return out;
}

absl::Status SaveSharded(const std::string& path, const ShardedTensor& t, std::string_view key) {
  std::vector<checkpoint::EntryRef> refs;
  RETURN_IF_ERROR(AppendShardedEntries(t, key, &refs));
  return checkpoint::Save(path, refs);
}

absl::StatusOr<ShardedTensor> LoadSharded(const std::string& path, std::string_view key) {
  ASSIGN_OR_RETURN(std::vector<checkpoint::Entry> entries, checkpoint::Load(path));
  return TakeSharded(entries, key, path);
}

absl::StatusOr<ShardedTensor> LoadResharded(const std::string& path, std::string_view key,
                                            int shards) {
  RETURN_IF_ERROR(shard_internal::CheckShardCount(shards, "shards"));
  ASSIGN_OR_RETURN(const ShardedTensor saved, LoadSharded(path, key));
  if (saved.whole.format != Format::kCsr) {
    return Invalid(StrCat(path, ": sharded '", key, "' is ", FormatName(saved.whole.format),
                          ": only csr is resharded by non-zeros (load it with LoadSharded)"));
  }
  return Reshard(saved, shards);
}

}  // namespace sparsed
