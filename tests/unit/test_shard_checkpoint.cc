// Checkpoints of sharded tensors: round trips with the saved partition,
// restores onto another shard count (compared with the unsharded original's
// arrays, encoded independently by the test helpers, and with PartitionRowPtr
// on its row pointer), and tampered or damaged files refused with errors
// naming the entry and label.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "format_test_util.h"
#include "sparsed/checkpoint.h"
#include "sparsed/shard.h"
#include "sparsed/shard_checkpoint.h"
#include "sparsed/str_cat.h"
#include "status_test_util.h"

namespace sparsed {
namespace {

using test::Must;
using test::ReadFile;
using test::WriteFile;

using test::Encode;
using test::ExpectSameTensor;
using test::FormatParams;
using test::Matrix;
using test::RandomMatrix;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "shard_ckpt_test_XXXXXX").string();
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& f) const { return (fs::path(path_) / f).string(); }

 private:
  std::string path_;
};

// A matrix with skewed rows: some empty, some long.
Matrix SkewedMatrix(int64_t rows, int64_t cols, DType dt, std::mt19937_64& rng) {
  Matrix x = RandomMatrix(rows, cols, 0.4, dt, rng);
  for (int64_t r = 0; r < rows; ++r) {
    if (r % 4 == 1) {
      for (int64_t c = 0; c < cols; ++c) x.bits[r * cols + c] = 0;
    }
  }
  return x;
}

FormatParams Params(DType idx) {
  FormatParams p;
  p.idx = idx;
  return p;
}

std::vector<int64_t> RowPtrOf(const Tensor& csr) { return test::GetIndices(csr, "row_ptr"); }

// The reassembled matrix is the original (bit for bit) and the shards are
// what was saved.
void ExpectSameSharded(const ShardedTensor& got, const ShardedTensor& want) {
  ASSERT_EQ(got.shard_count(), want.shard_count());
  EXPECT_EQ(got.ranges, want.ranges)
      << RangesString(got.ranges) << " vs " << RangesString(want.ranges);
  EXPECT_EQ(got.whole.format, want.whole.format);
  EXPECT_EQ(got.whole.dtype, want.whole.dtype);
  EXPECT_EQ(got.whole.shape, want.whole.shape);
  EXPECT_EQ(got.whole.nnz, want.whole.nnz);
  EXPECT_EQ(got.device_of_shard, std::vector<int>(got.shards.size(), 0));
  for (int i = 0; i < got.shard_count(); ++i) {
    SCOPED_TRACE(StrCat("shard ", i));
    EXPECT_TRUE(got.shards[i].device().is_cpu());
    ExpectSameTensor(got.shards[i], want.shards[i]);
  }
}

struct Case {
  Format format;
  DType dtype;
  DType idx;
};

const Case kCases[] = {
    {Format::kCsr, DType::kF32, DType::kI32},
    {Format::kCsr, DType::kF16, DType::kI64},
    {Format::kCoo, DType::kBF16, DType::kI32},
    {Format::kCsc, DType::kF32, DType::kI64},
};

TEST(ShardCheckpoint, RoundTripKeepsThePartition) {
  TempDir dir;
  std::mt19937_64 rng(18);
  for (const Case& c : kCases) {
    for (const int64_t rows : {5, 13}) {
      const Matrix m = SkewedMatrix(rows, 6, c.dtype, rng);
      const Tensor original = Encode(m, c.format, Params(c.idx));
      const Tensor reference = Encode(m, Format::kCsr, Params(c.idx));
      for (const int shards : {1, 2, 3, 7}) {
        SCOPED_TRACE(StrCat(FormatName(c.format), " ", DTypeName(c.dtype), "/", DTypeName(c.idx),
                            " rows ", rows, " shards ", shards));
        const ShardedTensor saved = Must(ShardByRows(original, shards));
        if (shards > rows) {
          EXPECT_TRUE(std::any_of(saved.ranges.begin(), saved.ranges.end(),
                                  [](const RowRange& r) { return r.rows() == 0; }));
        }
        const std::string path = dir / "s.safetensors";
        ASSERT_TRUE(SaveSharded(path, saved, "W").ok());
        const ShardedTensor loaded = Must(LoadSharded(path, "W"));
        ExpectSameSharded(loaded, saved);
        EXPECT_EQ(loaded.ranges, Must(PartitionRowPtr(RowPtrOf(reference), shards)));
        ExpectSameTensor(Must(Reassemble(loaded)), reference);
        // Loading with the same count repartitions to the same ranges.
        const ShardedTensor again = Must(LoadResharded(path, "W", shards));
        EXPECT_EQ(again.ranges, loaded.ranges);
        ExpectSameTensor(Must(Reassemble(again)), reference);
      }
    }
  }
}

TEST(ShardCheckpoint, DenseRowBlocksRoundTrip) {
  TempDir dir;
  std::mt19937_64 rng(3);
  const Matrix m = RandomMatrix(4, 3, 1.0, DType::kF32, rng);
  const Tensor dense = Encode(m, Format::kDense, Params(DType::kI32));
  const std::vector<RowRange> ranges = {{0, 1}, {1, 1}, {1, 4}};
  const ShardedTensor saved = Must(SplitRows(dense, ranges));
  const std::string path = dir / "d.safetensors";
  ASSERT_TRUE(SaveSharded(path, saved).ok());
  const ShardedTensor loaded = Must(LoadSharded(path));
  ExpectSameSharded(loaded, saved);
  ExpectSameTensor(Must(Reassemble(loaded)), dense);
  EXPECT_INVALID(LoadResharded(path, "sharded", 2).status(), "only csr is resharded");
}

TEST(ShardCheckpoint, RestoresOntoAnotherShardCount) {
  TempDir dir;
  std::mt19937_64 rng(5);
  const std::pair<int, int> moves[] = {{3, 2}, {2, 5}, {4, 1}, {1, 4}, {7, 3}};
  for (const Case& c : kCases) {
    const Matrix m = SkewedMatrix(23, 9, c.dtype, rng);
    const Tensor original = Encode(m, c.format, Params(c.idx));
    const Tensor reference = Encode(m, Format::kCsr, Params(c.idx));
    const std::vector<int64_t> rp = RowPtrOf(reference);
    for (const auto& [from, to] : moves) {
      SCOPED_TRACE(StrCat(FormatName(c.format), " ", DTypeName(c.idx), " ", from, " -> ", to));
      const std::string path = dir / "r.safetensors";
      ASSERT_TRUE(SaveSharded(path, Must(ShardByRows(original, from)), "A").ok());
      const ShardedTensor restored = Must(LoadResharded(path, "A", to));
      ASSERT_EQ(restored.shard_count(), to);
      EXPECT_EQ(restored.ranges, Must(PartitionRowPtr(rp, to)));
      EXPECT_EQ(restored.device_of_shard, std::vector<int>(to, 0));
      EXPECT_TRUE(ValidateSharded(restored).ok());
      ExpectSameTensor(Must(Reassemble(restored)), reference);
      // Each shard is exactly the original's rows of its range.
      for (int i = 0; i < to; ++i) {
        const RowRange r = restored.ranges[i];
        EXPECT_EQ(restored.shards[i].desc().nnz, rp[r.end] - rp[r.begin]);
      }
    }
  }
}

TEST(ShardCheckpoint, SeveralKeysBesideOtherEntries) {
  TempDir dir;
  std::mt19937_64 rng(9);
  const Tensor a = Encode(SkewedMatrix(6, 4, DType::kF32, rng), Format::kCsr, Params(DType::kI32));
  const Tensor b = Encode(SkewedMatrix(3, 5, DType::kF32, rng), Format::kCsr, Params(DType::kI64));
  const ShardedTensor sa = Must(ShardByRows(a, 2));
  const ShardedTensor sb = Must(ShardByRows(b, 4));
  std::vector<checkpoint::EntryRef> refs;
  refs.push_back({"plain", "P", {}, &a});
  ASSERT_TRUE(AppendShardedEntries(sa, "x", &refs).ok());
  ASSERT_TRUE(AppendShardedEntries(sb, "layer/y", &refs).ok());
  EXPECT_EQ(refs.size(), 7u);
  EXPECT_EQ(refs[1].id, "x/shard/0");
  EXPECT_EQ(refs[6].id, "layer/y/shard/3");
  EXPECT_INVALID(AppendShardedEntries(sa, "", &refs), "key");
  EXPECT_EQ(refs.size(), 7u);
  const std::string path = dir / "m.safetensors";
  ASSERT_TRUE(checkpoint::Save(path, refs).ok());

  std::vector<checkpoint::Entry> entries = Must(checkpoint::Load(path));
  EXPECT_ERROR(TakeSharded(entries, "z", "m").status(), absl::StatusCode::kNotFound,
               "no sharded tensor 'z'");
  const ShardedTensor gb = Must(TakeSharded(entries, "layer/y", "m"));
  ExpectSameSharded(gb, sb);
  ExpectSameTensor(Must(Reassemble(gb)), b);
  ASSERT_EQ(entries.size(), 3u);
  const ShardedTensor ga = Must(TakeSharded(entries, "x", "m"));
  ExpectSameTensor(Must(Reassemble(ga)), a);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].id, "plain");
  ExpectSameTensor(entries[0].tensor, a);
}

TEST(ShardCheckpoint, SaveRefusesAnInconsistentShardedTensor) {
  TempDir dir;
  std::mt19937_64 rng(2);
  const Tensor a = Encode(SkewedMatrix(8, 4, DType::kF32, rng), Format::kCsr, Params(DType::kI32));
  ShardedTensor s = Must(ShardByRows(a, 3));
  s.ranges[1].end += 1;
  const std::string path = dir / "bad.safetensors";
  EXPECT_INVALID(SaveSharded(path, s), "sharded.ranges[2]");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_INVALID(LoadResharded(path, "sharded", 0).status(), "shards = 0");
  EXPECT_INVALID(LoadResharded(path, "sharded", kMaxShards + 1).status(), "shards = 1025");
  EXPECT_ERROR(LoadSharded(path).status(), absl::StatusCode::kNotFound, path);
}

// Tampering: a writer that kept the checksums right but wrote wrong labels
// (so only the sharded checks can catch it).
class Tampered : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(11);
    // 9 rows, every row non-empty, so that no range can be empty.
    Matrix m = RandomMatrix(9, 5, 0.5, DType::kF32, rng);
    for (int64_t r = 0; r < 9; ++r) m.bits[r * 5 + r % 5] = 0x3f800000u;
    original_ = Encode(m, Format::kCsr, Params(DType::kI32));
    sharded_ = Must(ShardByRows(original_, 3));
    for (const RowRange& r : sharded_.ranges) ASSERT_GT(r.rows(), 0);
    ASSERT_TRUE(AppendShardedEntries(sharded_, "K", &refs_).ok());
    ASSERT_EQ(refs_.size(), 3u);
  }
  std::string& L(int shard, std::string_view label) {
    return refs_[shard].labels[std::string(label)];
  }
  // Saves refs_ and loads it back with LoadSharded.
  absl::Status SaveAndLoad() {
    const std::string path = dir_ / "t.safetensors";
    EXPECT_TRUE(checkpoint::Save(path, refs_).ok());
    std::vector<checkpoint::Entry> entries = Must(checkpoint::Load(path));
    const size_t n = entries.size();
    absl::StatusOr<ShardedTensor> taken = TakeSharded(entries, "K", "t");
    if (!taken.ok()) {
      EXPECT_EQ(entries.size(), n) << "entries taken despite an error";
      for (const checkpoint::Entry& e : entries) EXPECT_EQ(e.tensor.desc().shape.size(), 2u);
    }
    absl::StatusOr<ShardedTensor> loaded = LoadSharded(path, "K");
    EXPECT_EQ(loaded.status().code(), taken.status().code());
    return loaded.status();
  }

  TempDir dir_;
  Tensor original_;
  ShardedTensor sharded_;
  std::vector<checkpoint::EntryRef> refs_;
};

TEST_F(Tampered, Untouched) {
  EXPECT_TRUE(SaveAndLoad().ok());
  const ShardedTensor loaded = Must(LoadSharded(dir_ / "t.safetensors", "K"));
  ExpectSameSharded(loaded, sharded_);
  ExpectSameTensor(Must(Reassemble(loaded)), original_);
}

TEST_F(Tampered, ShardCountTooLarge) {
  for (int i = 0; i < 3; ++i) L(i, kShardCountLabel) = "4";
  EXPECT_INVALID(SaveAndLoad(), "only 3 shard entries (entry 'K/shard/3' is missing)");
}

TEST_F(Tampered, ShardCountTooSmall) {
  for (int i = 0; i < 3; ++i) L(i, kShardCountLabel) = "2";
  EXPECT_INVALID(SaveAndLoad(),
                 "entry 'K/shard/2' of sharded 'K': label sparsed.shard.index = 2 is not below "
                 "sparsed.shard.count = 2");
}

TEST_F(Tampered, ShardCountOutOfLimits) {
  for (const char* bad : {"0", "1025"}) {
    for (int i = 0; i < 3; ++i) L(i, kShardCountLabel) = bad;
    EXPECT_INVALID(SaveAndLoad(), StrCat("sparsed.shard.count = ", bad, " must be in [1, 1024]"));
  }
}

TEST_F(Tampered, ShardCountDisagrees) {
  L(2, kShardCountLabel) = "4";
  EXPECT_INVALID(SaveAndLoad(),
                 "entry 'K/shard/2' of sharded 'K': label sparsed.shard.count = '4' differs "
                 "from entry 'K/shard/0''s '3'");
}

TEST_F(Tampered, NonCanonicalNumber) {
  L(1, kShardBeginLabel) = "0" + L(1, kShardBeginLabel);
  EXPECT_INVALID(SaveAndLoad(), "entry 'K/shard/1' of sharded 'K': label sparsed.shard.begin = '0");
  L(1, kShardBeginLabel) = "-1";
  EXPECT_INVALID(SaveAndLoad(), "must be a non-negative decimal integer");
}

TEST_F(Tampered, MissingLabel) {
  refs_[1].labels.erase(std::string(kShardEndLabel));
  EXPECT_INVALID(SaveAndLoad(),
                 "entry 'K/shard/1' of sharded 'K' lacks the label sparsed.shard.end");
}

TEST_F(Tampered, OverlappingRanges) {
  const int64_t b = sharded_.ranges[1].begin;
  L(1, kShardBeginLabel) = StrCat(b - 1);
  EXPECT_INVALID(SaveAndLoad(), StrCat("entry 'K/shard/1' of sharded 'K': label "
                                       "sparsed.shard.begin = ",
                                       b - 1, " must be ", b));
  EXPECT_INVALID(SaveAndLoad(), "overlaps");
}

TEST_F(Tampered, GapBetweenRanges) {
  L(1, kShardBeginLabel) = StrCat(sharded_.ranges[1].begin + 1);
  EXPECT_INVALID(SaveAndLoad(), "rows would be missing");
}

TEST_F(Tampered, RangeBeyondTheMatrix) {
  L(2, kShardEndLabel) = "10";
  EXPECT_INVALID(SaveAndLoad(),
                 "entry 'K/shard/2' of sharded 'K': label sparsed.shard.end = 10 "
                 "must be in [");
}

TEST_F(Tampered, LastRangeEndsEarly) {
  L(2, kShardEndLabel) = StrCat(sharded_.ranges[2].end - 1);
  EXPECT_INVALID(SaveAndLoad(), "the tensor's shape");
}

TEST_F(Tampered, ShardRowsDisagreeWithItsRange) {
  // Ranges still contiguous and covering, but shard 1's tensor has other rows.
  const int64_t e = sharded_.ranges[1].end;
  L(1, kShardEndLabel) = StrCat(e + 1);
  L(2, kShardBeginLabel) = StrCat(e + 1);
  EXPECT_INVALID(SaveAndLoad(), StrCat("entry 'K/shard/1' of sharded 'K': the tensor's shape [",
                                       sharded_.ranges[1].rows(), ", 5] must be [",
                                       sharded_.ranges[1].rows() + 1, ", 5]"));
}

TEST_F(Tampered, WholeDescription) {
  for (int i = 0; i < 3; ++i) L(i, kWholeNnzLabel) = StrCat(original_.desc().nnz + 1);
  EXPECT_INVALID(SaveAndLoad(),
                 StrCat("the shards hold ", original_.desc().nnz,
                        " entries but label sparsed.whole.nnz = ", original_.desc().nnz + 1));
  for (int i = 0; i < 3; ++i) L(i, kWholeNnzLabel) = StrCat(original_.desc().nnz);
  for (int i = 0; i < 3; ++i) L(i, kWholeRowsLabel) = "8";
  EXPECT_INVALID(SaveAndLoad(), "label sparsed.shard.end = 9 must be in [");
  for (int i = 0; i < 3; ++i) L(i, kWholeRowsLabel) = "9";
  L(1, kWholeColsLabel) = "6";
  EXPECT_INVALID(SaveAndLoad(), "label sparsed.whole.cols = '6' differs");
  for (int i = 0; i < 3; ++i) L(i, kWholeColsLabel) = "6";
  EXPECT_INVALID(SaveAndLoad(), "the tensor's shape");
  for (int i = 0; i < 3; ++i) L(i, kWholeColsLabel) = "5";
  for (int i = 0; i < 3; ++i) L(i, kWholeFormatLabel) = "coo";
  EXPECT_INVALID(SaveAndLoad(), "label sparsed.whole.format = 'coo' must be csr or dense");
  for (int i = 0; i < 3; ++i) L(i, kWholeFormatLabel) = "csr";
  for (int i = 0; i < 3; ++i) L(i, kWholeDTypeLabel) = "f16";
  EXPECT_INVALID(SaveAndLoad(), "the tensor is csr f32/i32 but the whole");
  for (int i = 0; i < 3; ++i) L(i, kWholeDTypeLabel) = "f99";
  EXPECT_INVALID(SaveAndLoad(), "label sparsed.whole.dtype = 'f99' is not a dtype");
}

TEST_F(Tampered, IndexAndIdDisagree) {
  L(0, kShardIndexLabel) = "1";
  L(1, kShardIndexLabel) = "0";
  EXPECT_INVALID(SaveAndLoad(),
                 "entry 'K/shard/0' of sharded 'K': label sparsed.shard.index = 1 but the "
                 "entry's id is not 'K/shard/1'");
}

TEST_F(Tampered, MissingShardEntry) {
  refs_.erase(refs_.begin() + 1);
  EXPECT_INVALID(SaveAndLoad(), "shard 1 (entry 'K/shard/1') is missing");
}

TEST_F(Tampered, DamagedFileIsRefused) {
  const std::string path = dir_ / "d.safetensors";
  ASSERT_TRUE(checkpoint::Save(path, refs_).ok());
  const std::string good = ReadFile(path);
  // A flipped data byte (the last array's last byte): checksum mismatch.
  std::string flipped = good;
  flipped.back() ^= 0x01;
  WriteFile(path, flipped);
  EXPECT_ERROR(LoadSharded(path, "K").status(), absl::StatusCode::kDataLoss, "checksum mismatch");
  EXPECT_ERROR(LoadResharded(path, "K", 2).status(), absl::StatusCode::kDataLoss, path);
  // Truncations anywhere: refused, naming the file.
  for (const size_t len : {size_t{0}, size_t{7}, size_t{8}, size_t{40}, good.size() / 2,
                           good.size() - 4, good.size() - 1}) {
    WriteFile(path, good.substr(0, len));
    const absl::Status s = LoadSharded(path, "K").status();
    EXPECT_FALSE(s.ok()) << "truncated to " << len;
    EXPECT_TRUE(s.code() == absl::StatusCode::kInvalidArgument ||
                s.code() == absl::StatusCode::kDataLoss)
        << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(path)) << len;
  }
  WriteFile(path, good);
  EXPECT_TRUE(LoadSharded(path, "K").ok());
}

}  // namespace
}  // namespace sparsed
