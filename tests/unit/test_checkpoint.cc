// Checkpoints: round trips of every format and dtype, durability of Save,
// List, and a strict reader that refuses every truncation, byte flip and
// absurd header value.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "format_test_util.h"
#include "sparsed/checkpoint.h"
#include "sparsed/str_cat.h"
#include "status_test_util.h"

namespace sparsed::checkpoint {
namespace {

using test::ReadFile;
using test::WriteFile;

using test::Encode;
using test::ExpectSameTensor;
using test::FormatParams;
using test::RandomMatrix;

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "ckpt_test_XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& f) const { return (fs::path(path_) / f).string(); }
  const std::string& path() const { return path_; }
  std::vector<std::string> Files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::string path_;
};

struct Owned {
  std::string id, name;
  std::map<std::string, std::string> labels;
  Tensor tensor;
};

std::vector<EntryRef> Refs(const std::vector<Owned>& v) {
  std::vector<EntryRef> out;
  for (const Owned& o : v) out.push_back(EntryRef{o.id, o.name, o.labels, &o.tensor});
  return out;
}

void ExpectSameEntries(const std::vector<Entry>& got, const std::vector<Owned>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    SCOPED_TRACE(want[i].id);
    EXPECT_EQ(got[i].id, want[i].id);
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].labels, want[i].labels);
    EXPECT_TRUE(got[i].tensor.device().is_cpu());
    ExpectSameTensor(got[i].tensor, want[i].tensor);
  }
}

// A tensor of format f from a random matrix (N:M: at most n per group).
Tensor MakeTensor(Format f, DType dt, DType idx, int64_t rows, int64_t cols, double density,
                  std::mt19937_64& rng, int n = 2, int m = 4) {
  FormatParams p;
  p.idx = idx;
  p.block_rows = 2;
  p.block_cols = 3;
  p.nm_n = n;
  p.nm_m = m;
  const bool nm = f == Format::kNm;
  return Encode(RandomMatrix(rows, cols, density, dt, rng, nm ? n : 0, nm ? m : 0), f, p);
}

// A small checkpoint with a CSR, a dense and a 2:4 tensor.
std::string SmallCheckpoint(const TempDir& dir) {
  std::mt19937_64 rng(7);
  std::vector<Owned> v;
  v.push_back({"id-csr",
               "W",
               {{"k", "v"}},
               MakeTensor(Format::kCsr, DType::kF32, DType::kI32, 3, 4, 0.5, rng)});
  v.push_back(
      {"id-dense", "", {}, MakeTensor(Format::kDense, DType::kF16, DType::kI32, 2, 2, 1.0, rng)});
  v.push_back(
      {"id-nm", "S", {}, MakeTensor(Format::kNm, DType::kBF16, DType::kI32, 2, 8, 0.8, rng)});
  const std::string path = dir / "small.safetensors";
  EXPECT_TRUE(Save(path, Refs(v)).ok());
  return ReadFile(path);
}

TEST(Crc32c, KnownAnswers) {
  // Standard check value of CRC-32C and the iSCSI vectors of RFC 3720 B.4.
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string inc;
  for (int i = 0; i < 32; ++i) inc.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(inc), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("6789", Crc32c("12345")), 0xE3069283u);
}

// Bit-at-a-time CRC-32C straight from the definition (reflected, 0x82F63B78).
uint32_t BitwiseCrc32c(std::string_view bytes) {
  uint32_t c = 0xFFFFFFFFu;
  for (const char ch : bytes) {
    c ^= static_cast<uint8_t>(ch);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

TEST(Crc32c, MatchesBitwiseDefinitionAtEveryLengthAndSplit) {
  std::mt19937_64 rng(29);
  std::string s(300, '\0');
  for (char& ch : s) ch = static_cast<char>(rng());
  for (size_t len = 0; len <= s.size(); ++len) {
    const std::string_view v(s.data(), len);
    ASSERT_EQ(Crc32c(v), BitwiseCrc32c(v)) << len;
    const size_t cut = rng() % (len + 1);
    ASSERT_EQ(Crc32c(v.substr(cut), Crc32c(v.substr(0, cut))), BitwiseCrc32c(v)) << len;
  }
  // Unaligned starts.
  for (size_t off = 1; off < 8; ++off) {
    const std::string_view v(s.data() + off, 200);
    EXPECT_EQ(Crc32c(v), BitwiseCrc32c(v)) << off;
  }
}

TEST(CheckName, AcceptsAndRefuses) {
  for (const char* ok : {"a", "ckpt-1", "A.b_c-9", "x.safetensors"})
    EXPECT_TRUE(CheckName(ok).ok()) << ok;
  EXPECT_TRUE(CheckName(std::string(128, 'a')).ok());
  for (const std::string& bad : {std::string(), std::string(129, 'a'), std::string(".hidden"),
                                 std::string("a/b"), std::string("a b"), std::string("é")}) {
    const absl::Status s = CheckName(bad, "checkpoint");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(absl::StrContains(s.message(), "checkpoint")) << s;
  }
}

TEST(Checkpoint, RoundTripsEveryFormatDtypeAndIndexType) {
  TempDir dir;
  std::mt19937_64 rng(42);
  std::vector<Owned> v;
  int i = 0;
  for (Format f : kAllFormats) {
    for (DType dt : {DType::kF32, DType::kF16, DType::kBF16}) {
      for (DType idx : {DType::kI32, DType::kI64}) {
        std::vector<std::pair<int, int>> nms = {{2, 4}};
        if (f == Format::kNm) nms = {{2, 4}, {4, 8}, {1, 4}};
        for (auto [n, m] : nms) {
          Owned o;
          o.id = StrCat("id", i);
          if (i % 3 != 0) o.name = StrCat("t_", FormatName(f), "_", DTypeName(dt), "_", i);
          if (i % 2 == 0) o.labels = {{"fmt", std::string(FormatName(f))}, {"i", StrCat(i)}};
          const int64_t rows = 5 + i % 4;
          o.tensor = MakeTensor(f, dt, idx, rows, 16, 0.3, rng, n, m);
          v.push_back(std::move(o));
          ++i;
        }
      }
    }
  }
  const std::string path = dir / "all.safetensors";
  ASSERT_TRUE(Save(path, Refs(v)).ok());
  absl::StatusOr<std::vector<Entry>> back = Load(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
  EXPECT_EQ(dir.Files(), std::vector<std::string>{"all.safetensors"});
}

TEST(Checkpoint, OneDimensionalDenseKeepsItsShape) {
  TempDir dir;
  Owned o{"vec", "", {}, test::MakeDense({5}, {1, 2, 3, 4, 5})};
  std::vector<Owned> v;
  v.push_back(std::move(o));
  ASSERT_TRUE(Save(dir / "v.safetensors", Refs(v)).ok());
  auto back = Load(dir / "v.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
}

TEST(Checkpoint, EmptyCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(Save(dir / "e.safetensors", {}).ok());
  auto back = Load(dir / "e.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(back->empty());
  auto list = List(dir.path());
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].tensors, 0);
}

TEST(Checkpoint, ZeroNnzAndZeroRows) {
  TempDir dir;
  std::mt19937_64 rng(3);
  std::vector<Owned> v;
  int i = 0;
  for (Format f : kAllFormats) {
    for (int64_t rows : {0, 6}) {
      for (DType idx : {DType::kI32, DType::kI64}) {
        v.push_back({StrCat("z", i++), "", {}, MakeTensor(f, DType::kF32, idx, rows, 8, 0.0, rng)});
      }
    }
  }
  // 0 columns too (dense and the formats without a block or group constraint).
  for (Format f : {Format::kDense, Format::kCoo, Format::kCsr, Format::kCsc}) {
    v.push_back(
        {StrCat("z", i++), "", {}, MakeTensor(f, DType::kF16, DType::kI32, 4, 0, 0.0, rng)});
  }
  ASSERT_TRUE(Save(dir / "z.safetensors", Refs(v)).ok());
  auto back = Load(dir / "z.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
}

TEST(Checkpoint, DuplicateIdsOrNamesAreRefused) {
  TempDir dir;
  std::mt19937_64 rng(5);
  auto t = [&](Format f) { return MakeTensor(f, DType::kF32, DType::kI32, 3, 8, 0.5, rng); };
  const std::vector<std::vector<std::pair<std::string, std::string>>> cases = {
      {{"a", "W"}, {"b", "W"}},  // same name
      {{"x", ""}, {"x", ""}},    // same id, no names
      {{"x", "A"}, {"x", "B"}},  // same id, different names
  };
  for (const auto& c : cases) {
    std::vector<Owned> v;
    for (const auto& [id, name] : c) v.push_back({id, name, {}, t(Format::kCsr)});
    const absl::Status s = Save(dir / "d.safetensors", Refs(v));
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_TRUE(absl::StrContains(s.message(), "duplicate")) << s;
  }
  // No id at all, the reserved key as an id, ids whose array keys collide
  // (a dense "a.values" beside a sparse "a"), a name that is not UTF-8.
  std::vector<Owned> w;
  w.push_back({"", "named", {}, t(Format::kCoo)});
  EXPECT_EQ(Save(dir / "d.safetensors", Refs(w)).code(), absl::StatusCode::kInvalidArgument);
  w[0].id = "__metadata__";
  EXPECT_EQ(Save(dir / "d.safetensors", Refs(w)).code(), absl::StatusCode::kInvalidArgument);
  {
    std::vector<Owned> c;
    c.push_back({"a", "", {}, t(Format::kCsr)});
    c.push_back({"a.values", "", {}, t(Format::kDense)});
    EXPECT_EQ(Save(dir / "d.safetensors", Refs(c)).code(), absl::StatusCode::kInvalidArgument);
  }
  w[0].id = "ok";
  w[0].name = "\xff\xfe";  // not UTF-8: cannot go into a JSON header
  EXPECT_EQ(Save(dir / "d.safetensors", Refs(w)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(dir.Files().empty());
}

// Issue 17: names that used to collide with keys made every full checkpoint
// fail (a tensor named "__metadata__", one named like another's id, a dense
// "Q.values" beside a sparse "Q"). Tensors are keyed by id now: all of these
// save and load back as they were.
TEST(Checkpoint, AnyNamesRoundTrip) {
  TempDir dir;
  std::mt19937_64 rng(23);
  std::vector<Owned> v;
  v.push_back({"t-01",
               "__metadata__",
               {},
               MakeTensor(Format::kDense, DType::kF32, DType::kI32, 3, 4, 1.0, rng)});
  v.push_back(
      {"t-02", "t-03", {}, MakeTensor(Format::kCsr, DType::kBF16, DType::kI32, 5, 6, 0.5, rng)});
  v.push_back(
      {"t-03", "Q", {}, MakeTensor(Format::kCsr, DType::kF32, DType::kI64, 4, 7, 0.5, rng)});
  v.push_back({"t-04",
               "Q.values",
               {},
               MakeTensor(Format::kDense, DType::kF16, DType::kI32, 2, 2, 1.0, rng)});
  v.push_back({"t-05",
               "Q.row_ptr",
               {},
               MakeTensor(Format::kBsr, DType::kF32, DType::kI32, 8, 8, 0.5, rng)});
  v.push_back({"l-06/weight",
               "layer/l-07/weight",
               {},
               MakeTensor(Format::kCoo, DType::kF32, DType::kI32, 4, 4, 0.5, rng)});
  v.push_back({"l-07/weight",
               "l-06/weight",
               {},
               MakeTensor(Format::kNm, DType::kF32, DType::kI32, 4, 8, 0.5, rng)});
  ASSERT_TRUE(Save(dir / "names.safetensors", Refs(v)).ok());
  auto back = Load(dir / "names.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
}

TEST(Checkpoint, OverwriteGivesTheNewContent) {
  TempDir dir;
  std::mt19937_64 rng(11);
  const std::string path = dir / "c.safetensors";
  std::vector<Owned> a, b;
  a.push_back({"a", "", {}, MakeTensor(Format::kCoo, DType::kF32, DType::kI64, 4, 8, 0.5, rng)});
  b.push_back({"b",
               "B",
               {{"x", "y"}},
               MakeTensor(Format::kBsr, DType::kBF16, DType::kI32, 9, 8, 0.4, rng)});
  ASSERT_TRUE(Save(path, Refs(a)).ok());
  ASSERT_TRUE(Save(path, Refs(b)).ok());
  auto back = Load(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, b);
  EXPECT_EQ(dir.Files(), std::vector<std::string>{"c.safetensors"});
}

TEST(Checkpoint, FailedSaveKeepsTheOldFileAndLeavesNoTemp) {
  TempDir dir;
  std::mt19937_64 rng(13);
  const std::string path = dir / "c.safetensors";
  std::vector<Owned> old_v, big;
  old_v.push_back(
      {"old", "", {}, MakeTensor(Format::kCsr, DType::kF32, DType::kI32, 4, 8, 0.5, rng)});
  big.push_back(
      {"big", "", {}, MakeTensor(Format::kDense, DType::kF32, DType::kI32, 256, 256, 1.0, rng)});
  ASSERT_TRUE(Save(path, Refs(old_v)).ok());
  const std::string old_bytes = ReadFile(path);

  // A write that fails midway: the file size limit is hit inside the data.
  {
    struct rlimit saved;
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = saved;
    lim.rlim_cur = 64 * 1024;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
    const absl::Status s = Save(path, Refs(big));
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, old_handler);
    EXPECT_FALSE(s.ok());
    EXPECT_TRUE(absl::StrContains(s.message(), ".tmp.")) << s;  // names the file
  }
  EXPECT_EQ(ReadFile(path), old_bytes);
  EXPECT_EQ(dir.Files(), std::vector<std::string>{"c.safetensors"});

  // The parent "directory" is a regular file.
  const absl::Status s = Save(dir / "c.safetensors/x.safetensors", Refs(big));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ReadFile(path), old_bytes);

  // An unwritable directory (meaningless for root, who may write anyway).
  if (::geteuid() != 0) {
    fs::permissions(dir.path(), fs::perms::owner_read | fs::perms::owner_exec);
    const absl::Status d = Save(path, Refs(big));
    fs::permissions(dir.path(), fs::perms::owner_all);
    EXPECT_EQ(d.code(), absl::StatusCode::kPermissionDenied) << d;
    EXPECT_TRUE(absl::StrContains(d.message(), dir.path())) << d;
    EXPECT_EQ(ReadFile(path), old_bytes);
  }
  EXPECT_EQ(dir.Files(), std::vector<std::string>{"c.safetensors"});
  auto back = Load(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, old_v);
}

// Tensors whose components exceed the 16 MiB staging chunk.
std::vector<Owned> LargeTensors() {
  std::mt19937_64 rng(23);
  std::vector<Owned> v;
  v.push_back(
      {"big", "", {}, MakeTensor(Format::kDense, DType::kF32, DType::kI32, 2100, 2100, 1.0, rng)});
  v.push_back(
      {"csr", "", {}, MakeTensor(Format::kCsr, DType::kBF16, DType::kI64, 3000, 3000, 0.3, rng)});
  return v;
}

TEST(Checkpoint, LargeComponentsFromHost) {
  TempDir dir;
  const std::vector<Owned> v = LargeTensors();
  ASSERT_TRUE(Save(dir / "host.safetensors", Refs(v)).ok());
  auto back = Load(dir / "host.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
}

// Saved from a CUDA device (through the staging buffer): the same file as
// from the host, loaded on the host. Skipped without a GPU.
TEST(Checkpoint, LargeComponentsFromDevice) {
  TempDir dir;
  const std::vector<Owned> v = LargeTensors();
  std::vector<Tensor> on_device;
  for (const Owned& o : v) {
    absl::StatusOr<Tensor> d = o.tensor.CopyTo(Device::Cuda(0));
    if (!d.ok()) GTEST_SKIP() << "no CUDA device: " << d.status();
    on_device.push_back(std::move(*d));
  }
  std::vector<EntryRef> refs;
  for (size_t i = 0; i < v.size(); ++i) refs.push_back({v[i].id, "", {}, &on_device[i]});
  ASSERT_TRUE(Save(dir / "device.safetensors", refs).ok());
  ASSERT_TRUE(Save(dir / "host.safetensors", Refs(v)).ok());
  EXPECT_EQ(ReadFile(dir / "device.safetensors"), ReadFile(dir / "host.safetensors"));
  auto back = Load(dir / "device.safetensors");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
}

// Issue 17: a symbolic link in the checkpoints folder leaked the first bytes
// of its target through the "header length" error. Links are refused (Load)
// and not listed (List), and the target's bytes appear nowhere.
TEST(Checkpoint, SymbolicLinksAreNeitherReadNorListed) {
  TempDir dir;
  const std::string secret = dir / "secret.txt";
  WriteFile(secret, "root:$6$very-secret-hash");
  fs::create_symlink(secret, dir / "evil.safetensors");
  const absl::Status s = Load(dir / "evil.safetensors").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "symbolic link")) << s;
  uint64_t n = 0;  // the first 8 bytes as the header length they would be read as
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>("root:$6$"[i]);
  EXPECT_FALSE(absl::StrContains(s.message(), std::to_string(n))) << s;
  EXPECT_FALSE(absl::StrContains(s.message(), "root")) << s;
  auto listed = List(dir.path());
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->empty());
}

TEST(Checkpoint, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_EQ(Load(dir / "nope.safetensors").status().code(), absl::StatusCode::kNotFound);
}

TEST(Checkpoint, EveryTruncationIsRefused) {
  TempDir dir;
  const std::string bytes = SmallCheckpoint(dir);
  ASSERT_TRUE(Parse(bytes, "small").ok());
  for (size_t len = 0; len < bytes.size(); ++len) {
    const auto r = Parse(std::string(bytes.substr(0, len)), "cut");
    ASSERT_FALSE(r.ok()) << "accepted a truncation at " << len;
    EXPECT_TRUE(absl::StrContains(r.status().message(), "cut")) << r.status();
  }
  WriteFile(dir / "t.safetensors", bytes.substr(0, bytes.size() / 2));
  EXPECT_EQ(Load(dir / "t.safetensors").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Checkpoint, EveryByteFlipIsRefusedOrHarmlessPadding) {
  TempDir dir;
  const std::string bytes = SmallCheckpoint(dir);
  auto good = Parse(bytes, "small");
  ASSERT_TRUE(good.ok());
  // Independently of the reader: header length, then JSON up to the last '}',
  // then padding spaces.
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<uint8_t>(bytes[i]);
  ASSERT_EQ(n % 8, 0u);
  const size_t json_end = bytes.rfind('}', 8 + n - 1) + 1;
  int accepted = 0;
  // 0x2A turns a padding space into a newline: still JSON whitespace.
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {0xFF, 0x01, 0x20, 0x80, 0x2A}) {
      std::string b = bytes;
      b[i] = static_cast<char>(b[i] ^ mask);
      const auto r = Parse(b, "flip");
      if (!r.ok()) continue;
      ++accepted;
      ASSERT_TRUE(i >= json_end && i < 8 + n) << "accepted a flip at " << i << " mask " << +mask;
      ASSERT_EQ(r->size(), good->size());
      for (size_t k = 0; k < r->size(); ++k) {
        EXPECT_EQ((*r)[k].id, (*good)[k].id);
        EXPECT_EQ((*r)[k].name, (*good)[k].name);
        EXPECT_EQ((*r)[k].labels, (*good)[k].labels);
        ExpectSameTensor((*r)[k].tensor, (*good)[k].tensor);
      }
    }
  }
  // A flipped data byte is a checksum failure.
  std::string b = bytes;
  b.back() = static_cast<char>(b.back() ^ 1);
  const absl::Status s = Parse(b, "flip").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "expected")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "actual")) << s;
  // Only padding flips pass (a space made a newline, or NUL where the JSON
  // reader stops), and each gives back the same entries (checked above).
  EXPECT_GE(accepted, static_cast<int>(8 + n - json_end));
  EXPECT_LE(accepted, 2 * static_cast<int>(8 + n - json_end));
}

// A file from a raw header (padded) and data.
std::string RawFile(std::string header, const std::string& data, int64_t forced_len = -1) {
  while (header.size() % 8) header.push_back(' ');
  const uint64_t n = forced_len >= 0 ? static_cast<uint64_t>(forced_len) : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

void ExpectRefused(const std::string& bytes, const std::string& needle) {
  const absl::Status s = Parse(bytes, "crafted").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "crafted")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), needle)) << "want '" << needle << "' in " << s;
}

TEST(Checkpoint, AbsurdHeaderValuesAreRefused) {
  const std::string data(16, '\0');
  ExpectRefused(RawFile("{}", ""), "__metadata__");
  ExpectRefused(std::string("\0\0\0\0\0\0\0\x80{}      ", 16), "header length 9223372036854775808");
  ExpectRefused(RawFile("{}", "", 0), "header length 0");
  ExpectRefused(RawFile("{}", "", 1), "header length 1");
  ExpectRefused(RawFile("{}", "", 4096), "header length 4096");
  ExpectRefused(RawFile("{}", "", (int64_t{100} << 20) + 1), "exceeds");
  ExpectRefused(std::string("\x02\0\0\0", 4), "shorter");
  ExpectRefused(RawFile("[1,2]", ""), "object");
  ExpectRefused(RawFile("{\"a\":", ""), "JSON");
  auto arr = [](const std::string& dtype, const std::string& shape, const std::string& off) {
    return "\"" + dtype + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape +
           ",\"data_offsets\":" + off + "}";
  };
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[0,18446744073709551615]") + "}", data),
                "too large");
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[0,9223372036854775807]") + "}", data),
                "beyond the data region");
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[-4,0]") + "}", data), ">= 0");
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[8,4]") + "}", data), "begin offset 8");
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[0.5,4]") + "}", data), "integer");
  ExpectRefused(RawFile("{" + arr("F32", "[4294967296,4294967296]", "[0,16]") + "}", data),
                "too large");
  ExpectRefused(RawFile("{" + arr("F32", "[3037000500,3037000500]", "[0,16]") + "}", data),
                "too large");
  ExpectRefused(RawFile("{" + arr("I64", "[2305843009213693952]", "[0,16]") + "}", data),
                "too large");
  ExpectRefused(RawFile("{" + arr("F32", "[-1]", "[0,0]") + "}", data), ">= 0");
  ExpectRefused(RawFile("{" + arr("F64", "[2]", "[0,16]") + "}", data), "F64");
  ExpectRefused(RawFile("{" + arr("F32", "[2]", "[0,16]") + "}", data), "needs 8");
  ExpectRefused(RawFile("{" + arr("F32", "[2]", "[0,8]") + "," + arr("I32", "[2]", "[4,12]") + "}",
                        std::string(12, '\0')),
                "overlap");
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[0,4]") + "," + arr("I32", "[1]", "[8,12]") + "}",
                        std::string(12, '\0')),
                "hole");
  ExpectRefused(RawFile("{" + arr("F32", "[1]", "[0,4]") + "}", std::string(8, '\0')),
                "cover 4 bytes");
  ExpectRefused(
      RawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0],\"x\":1}}", ""),
      "unknown field");
  ExpectRefused(RawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":[0]}}", ""), "data_offsets");
  // Nesting a million levels deep must not exhaust the stack.
  const int depth = 1000000;
  ExpectRefused(RawFile("{\"a\":{\"dtype\":\"F32\",\"shape\":" + std::string(depth, '[') +
                            std::string(depth, ']') + ",\"data_offsets\":[0,0]}}",
                        ""),
                "shape extent");
  ExpectRefused(RawFile(std::string(depth, '[') + std::string(depth, ']'), ""), "object");
}

// Rewrites the first occurrence of `from` in the header with `to` (same length).
std::string Patched(std::string bytes, const std::string& from, const std::string& to) {
  EXPECT_EQ(from.size(), to.size());
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) bytes.replace(at, from.size(), to);
  return bytes;
}

// Version 1 keyed tensors by name (or id without one): such files still load,
// and their keys are checked by version 1's rule.
TEST(Checkpoint, Version1FilesStillLoad) {
  TempDir dir;
  std::mt19937_64 rng(29);
  std::vector<Owned> v;
  v.push_back({"w", "", {}, MakeTensor(Format::kCsr, DType::kF32, DType::kI32, 3, 4, 0.5, rng)});
  ASSERT_TRUE(Save(dir / "w.safetensors", Refs(v)).ok());
  const std::string v1 =
      Patched(ReadFile(dir / "w.safetensors"), "\"version\":\"2\"", "\"version\":\"1\"");
  auto back = Parse(v1, "v1");
  ASSERT_TRUE(back.ok()) << back.status();
  ExpectSameEntries(*back, v);
  // A named tensor keyed by its id is version 2's rule, not version 1's.
  v[0].name = "W";
  ASSERT_TRUE(Save(dir / "n.safetensors", Refs(v)).ok());
  const absl::Status s =
      Parse(Patched(ReadFile(dir / "n.safetensors"), "\"version\":\"2\"", "\"version\":\"1\""),
            "v1")
          .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "key must be its name")) << s;
}

TEST(Checkpoint, ArraysMustMatchTheMetadata) {
  TempDir dir;
  std::mt19937_64 rng(17);
  std::vector<Owned> v;
  v.push_back({"w", "", {}, MakeTensor(Format::kCsr, DType::kF32, DType::kI32, 3, 4, 0.5, rng)});
  ASSERT_TRUE(Save(dir / "w.safetensors", Refs(v)).ok());
  const std::string bytes = ReadFile(dir / "w.safetensors");
  // F32 values relabelled as I32 (same size) no longer match the metadata.
  ExpectRefused(Patched(bytes, "\"dtype\":\"F32\"", "\"dtype\":\"I32\""), "dtype I32");
  // Another format or version.
  ExpectRefused(Patched(bytes, "sparsed-checkpoint", "sparsed-checkpoinx"), "format");
  ExpectRefused(Patched(bytes, "\"version\":\"2\"", "\"version\":\"3\""), "version");
  // Damaged metadata that is still valid JSON fails its own checksum.
  const std::string bad_meta = Patched(bytes, "\\\"csr\\\"", "\\\"coo\\\"");
  EXPECT_EQ(Parse(bad_meta, "m").status().code(), absl::StatusCode::kDataLoss);
}

TEST(Checkpoint, InvalidContentIsRefusedAfterChecksums) {
  TempDir dir;
  // Save does not re-validate content; Load does.
  Tensor bad = test::MakeCsr(2, 3, {0, 1, 2}, {0, 7}, {1.0f, 2.0f}, DType::kI32);
  std::vector<EntryRef> refs = {EntryRef{"bad", "", {}, &bad}};
  ASSERT_TRUE(Save(dir / "b.safetensors", refs).ok());
  const absl::Status s = Load(dir / "b.safetensors").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "bad")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "7")) << s;
}

TEST(Checkpoint, ListReadsHeadersAndFlagsCorruptFiles) {
  TempDir dir;
  std::mt19937_64 rng(19);
  std::vector<Owned> v;
  v.push_back({"a", "", {}, MakeTensor(Format::kCoo, DType::kF32, DType::kI32, 3, 4, 0.5, rng)});
  v.push_back({"b", "", {}, MakeTensor(Format::kDense, DType::kF32, DType::kI32, 3, 4, 1.0, rng)});
  ASSERT_TRUE(Save(dir / "good.safetensors", Refs(v)).ok());
  const std::string bytes = ReadFile(dir / "good.safetensors");
  WriteFile(dir / "cut.safetensors", bytes.substr(0, bytes.size() - 3));
  WriteFile(dir / "empty.safetensors", "");
  WriteFile(dir / "good.safetensors.tmp.12.0", bytes);
  WriteFile(dir / "notes.txt", "x");
  auto list = List(dir.path());
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "cut");
  EXPECT_EQ((*list)[0].tensors, -1);
  EXPECT_EQ((*list)[1].name, "empty");
  EXPECT_EQ((*list)[1].tensors, -1);
  EXPECT_EQ((*list)[2].name, "good");
  EXPECT_EQ((*list)[2].tensors, 2);
  EXPECT_EQ((*list)[2].bytes, static_cast<int64_t>(bytes.size()));
  const auto mtime = fs::last_write_time(dir / "good.safetensors");
  const int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                         .count();
  EXPECT_EQ((*list)[2].modified_unix_ms, ms);
  auto missing = List(dir / "nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->empty());
}

// The pid of a process that has exited and been reaped.
pid_t DeadPid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  return child;
}

TEST(RemoveStaleTemporaries, RemovesOnlyFilesOfWritersThatAreGone) {
  TempDir dir;
  const std::string dead = StrCat("a.safetensors.tmp.", DeadPid(), ".0");
  const std::string own = StrCat("a.safetensors.tmp.", ::getpid(), ".1");
  // A live process that is not us: our parent.
  const std::string live = StrCat("b.safetensors.tmp.", ::getppid(), ".2");
  const std::vector<std::string> unrelated = {"a.safetensors", "notes.txt",
                                              "c.safetensors.tmp.12x.3", "d.safetensors.tmp.7"};
  for (const std::string& f : unrelated) std::ofstream(dir / f) << "x";
  for (const std::string& f : {dead, own, live}) std::ofstream(dir / f) << "partial";

  absl::StatusOr<int64_t> removed = RemoveStaleTemporaries(dir.path(), false);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1);
  std::vector<std::string> want = unrelated;
  want.push_back(own);
  want.push_back(live);
  std::sort(want.begin(), want.end());
  EXPECT_EQ(dir.Files(), want);

  // At start-up this process's pid marks a previous run (pid 1 in containers).
  removed = RemoveStaleTemporaries(dir.path(), true);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 1);
  want.erase(std::find(want.begin(), want.end(), own));
  EXPECT_EQ(dir.Files(), want);

  // Saved checkpoints are untouched and a missing directory is no error.
  EXPECT_TRUE(fs::exists(dir / "a.safetensors"));
  removed = RemoveStaleTemporaries(dir / "missing", true);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 0);
}

}  // namespace
}  // namespace sparsed::checkpoint
