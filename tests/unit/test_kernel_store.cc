// The JIT cache's pure C++ parts, no GPU: SHA-256 against FIPS 180-4's
// examples, key framing, kernel spec JSON, and the on-disk cubin store
// (checksums, truncation, LRU cap, index rebuild). Files on disk are damaged
// and inspected with std::filesystem, independently of the code under test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../../kernels/src/jit/jit_key.h"
#include "../../kernels/src/jit/kernel_store.h"
#include "../../kernels/src/jit/sha256.h"
#include "sparsed/kernel_cache.h"

namespace sparsed::jit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sparsed_jit_XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// ---------------------------------------------------------------- SHA-256

TEST(Sha256Test, FipsExamples) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256Test, MillionAInUnevenPieces) {
  Sha256 h;
  const std::string a(1000000, 'a');
  size_t at = 0;
  for (size_t piece = 1; at < a.size(); piece = piece * 3 % 1000 + 1) {
    const size_t n = std::min(piece, a.size() - at);
    h.Update(std::string_view(a).substr(at, n));
    at += n;
  }
  EXPECT_EQ(ToHex(h.Final()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, PaddingBoundaries) {
  // 55, 56 and 64 bytes put the length in the same block, the next one, and after a full block.
  for (size_t n : {55, 56, 63, 64, 65, 119, 120}) {
    const std::string msg(n, 'x');
    Sha256 whole;
    whole.Update(msg);
    Sha256 bytewise;
    for (char c : msg) bytewise.Update(std::string_view(&c, 1));
    EXPECT_EQ(ToHex(whole.Final()), ToHex(bytewise.Final())) << n;
  }
}

// ---------------------------------------------------------------- keys

JitKeyParts Parts() {
  return {.source = "extern \"C\" __global__ void k() {}",
          .options = {"-std=c++17", "--gpu-architecture=sm_90"},
          .arch = "sm_90",
          .nvrtc_version = "13.0",
          .driver_version = 13000};
}

TEST(JitKeyTest, HexAndStable) {
  const std::string key = JitKey(Parts());
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(key.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(JitKey(Parts()), key);
}

TEST(JitKeyTest, EveryPartCountsAndFramingIsUnambiguous) {
  const std::string base = JitKey(Parts());
  auto changed = [](auto edit) {
    JitKeyParts p = Parts();
    edit(p);
    return JitKey(p);
  };
  EXPECT_NE(changed([](JitKeyParts& p) { p.source += " "; }), base);
  EXPECT_NE(changed([](JitKeyParts& p) { p.options.push_back("-G"); }), base);
  EXPECT_NE(changed([](JitKeyParts& p) { p.arch = "sm_100"; }), base);
  EXPECT_NE(changed([](JitKeyParts& p) { p.nvrtc_version = "13.1"; }), base);
  EXPECT_NE(changed([](JitKeyParts& p) { p.driver_version = 0; }), base);
  // Same concatenated bytes, different parts.
  EXPECT_NE(changed([](JitKeyParts& p) { p.options = {"ab"}; }), changed([](JitKeyParts& p) {
              p.options = {"a", "b"};
            }));
  EXPECT_NE(changed([](JitKeyParts& p) {
              p.options = {"a", ""};
            }),
            changed([](JitKeyParts& p) {
              p.options = {"", "a"};
            }));
  EXPECT_NE(changed([](JitKeyParts& p) {
              p.source = "xy";
              p.options = {};
            }),
            changed([](JitKeyParts& p) {
              p.source = "x";
              p.options = {"y"};
            }));
}

// ---------------------------------------------------------------- specs

TEST(KernelSpecTest, ToStringSortsKeys) {
  KernelSpec s{.kernel = "bsr_spmm_tc", .params = {{"dtype", "f16"}, {"block_rows", "16"}}};
  EXPECT_EQ(s.ToString(), "bsr_spmm_tc(block_rows=16,dtype=f16)");
  EXPECT_EQ(KernelSpec{.kernel = "k"}.ToString(), "k()");
}

TEST(KernelSpecTest, ParsesStringsAndNumbers) {
  auto specs = ParseKernelSpecs(R"({"kernels": [
      {"kernel": "bsr_spmm_tc", "params": {"block_rows": 16, "dtype": "f16", "alpha": 0.5}},
      {"kernel": "plain"}]})");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].kernel, "bsr_spmm_tc");
  EXPECT_EQ((*specs)[0].params, (std::map<std::string, std::string>{
                                    {"alpha", "0.5"}, {"block_rows", "16"}, {"dtype", "f16"}}));
  EXPECT_EQ((*specs)[1], (KernelSpec{.kernel = "plain"}));
}

TEST(KernelSpecTest, JsonRoundTrip) {
  std::vector<KernelSpec> specs = {{.kernel = "a", .params = {{"x", "1"}, {"y", "f32"}}},
                                   {.kernel = "b", .params = {}},
                                   {.kernel = "c", .params = {{"odd", "p=q,(r)"}}}};
  auto back = ParseKernelSpecs(KernelSpecsToJson(specs));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, specs);
  // Independently: the document has the documented shape.
  auto doc = nlohmann::json::parse(KernelSpecsToJson(specs));
  EXPECT_EQ(doc["kernels"][0]["params"]["x"], "1");
  EXPECT_EQ(doc["kernels"][1]["kernel"], "b");
}

TEST(KernelSpecTest, ErrorsNameEntryAndField) {
  auto error = [](const std::string& json) {
    absl::StatusOr<std::vector<KernelSpec>> r = ParseKernelSpecs(json);
    EXPECT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << json;
    return std::string(r.status().message());
  };
  EXPECT_THAT(error(R"({"kernels": [{"kernel": "a"}, {"kernel": "b"},
                       {"kernel": "c", "params": {"block_rows": true}}]})"),
              HasSubstr("kernels[2].params.block_rows must be a string or number"));
  EXPECT_THAT(error(R"({"kernels": [{"kernel": "a", "params": {"m": [1]}}]})"),
              HasSubstr("kernels[0].params.m must be a string or number"));
  EXPECT_THAT(error(R"({"kernels": [{"params": {}}]})"),
              HasSubstr("kernels[0].kernel must be a non-empty string"));
  EXPECT_THAT(error(R"({"kernels": [{"kernel": ""}]})"),
              HasSubstr("kernels[0].kernel must be a non-empty string"));
  EXPECT_THAT(error(R"({"kernels": [{"kernel": 3}]})"), HasSubstr("kernels[0].kernel"));
  EXPECT_THAT(error(R"({"kernels": [{"kernel": "a", "params": [1]}]})"),
              HasSubstr("kernels[0].params must be an object"));
  EXPECT_THAT(error(R"({"kernels": [{"kernel": "a", "param": {}}]})"),
              HasSubstr("kernels[0].param is not a known field"));
  EXPECT_THAT(error(R"({"kernels": [{"kernel": "a"}, 7]})"),
              HasSubstr("kernels[1] must be an object"));
  EXPECT_THAT(error(R"({"kernels": {}})"), HasSubstr("kernels must be an array"));
  EXPECT_THAT(error(R"([])"), HasSubstr("top level must be an object"));
  EXPECT_THAT(error(R"({"kernels": [)"), HasSubstr("not valid JSON"));
}

// ---------------------------------------------------------------- store

CubinMeta Meta(const std::string& name) {
  return {.key = Sha256Hex(name), .spec = name + "()", .arch = "sm_90"};
}

fs::path FileOf(const TempDir& dir, const std::string& name) {
  return fs::path(dir.path()) / (Sha256Hex(name) + ".cubin");
}

std::unique_ptr<KernelStore> MustOpen(const std::string& dir, int64_t max_bytes = 0) {
  absl::StatusOr<std::unique_ptr<KernelStore>> s = KernelStore::Open(dir, max_bytes);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

TEST(KernelStoreTest, PutGetRoundTrip) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  const std::string cubin(
      "\x7f"
      "ELF\0\1binary\0bytes",
      17);
  ASSERT_TRUE(store->Put(Meta("a"), cubin).ok());
  absl::StatusOr<std::string> got = store->Get(Meta("a").key);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, cubin);
  EXPECT_TRUE(fs::exists(FileOf(dir, "a")));
  EXPECT_EQ(store->entries(), 1);
  EXPECT_EQ(store->bytes(), static_cast<int64_t>(fs::file_size(FileOf(dir, "a"))));
  EXPECT_EQ(store->Get(Meta("b").key).status().code(), absl::StatusCode::kNotFound);
  std::vector<KernelCacheEntry> list = store->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].key, Meta("a").key);
  EXPECT_EQ(list[0].spec, "a()");
  EXPECT_EQ(list[0].arch, "sm_90");
  EXPECT_GT(list[0].last_used_unix_ms, 0);
}

TEST(KernelStoreTest, RejectsKeysThatAreNotHex) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  EXPECT_EQ(store->Put({.key = "../evil", .spec = "x", .arch = "sm_90"}, "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(KernelStoreTest, PersistsAcrossReopen) {
  TempDir dir;
  int64_t last_used = 0;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store->Put(Meta("a"), "cubin-a").ok());
    ASSERT_TRUE(store->Put(Meta("b"), "cubin-b").ok());
    store->Touch(Meta("a").key);  // saved by the destructor
    last_used = store->List()[0].last_used_unix_ms;
  }
  // The index is real JSON with both entries.
  auto index = nlohmann::json::parse(ReadAll(fs::path(dir.path()) / "index.json"));
  EXPECT_EQ(index["entries"].size(), 2u);
  auto store = MustOpen(dir.path());
  EXPECT_EQ(store->entries(), 2);
  EXPECT_EQ(*store->Get(Meta("a").key), "cubin-a");
  EXPECT_EQ(*store->Get(Meta("b").key), "cubin-b");
  auto reopened = MustOpen(dir.path());
  std::vector<KernelCacheEntry> list = reopened->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].key, Meta("b").key);  // last got
  EXPECT_GT(list[1].last_used_unix_ms, last_used - 1);
}

TEST(KernelStoreTest, CorruptByteIsDiscardedAsMiss) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->Put(Meta("a"), std::string(1000, 'c')).ok());
  std::string bytes = ReadAll(FileOf(dir, "a"));
  bytes[bytes.size() - 10] ^= 0x01;
  WriteAll(FileOf(dir, "a"), bytes);
  absl::StatusOr<std::string> got = store->Get(Meta("a").key);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(got.status().message(), HasSubstr("checksum"));
  EXPECT_FALSE(fs::exists(FileOf(dir, "a")));
  EXPECT_EQ(store->entries(), 0);
  EXPECT_EQ(store->bytes(), 0);
  EXPECT_EQ(store->discarded(), 1);
  // And it stays gone after a reopen.
  store.reset();
  EXPECT_EQ(MustOpen(dir.path())->entries(), 0);
}

TEST(KernelStoreTest, CorruptHeaderIsDiscarded) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->Put(Meta("a"), "cubin").ok());
  for (size_t at : {0u, 9u, 13u, 17u}) {  // magic, checksum, meta length, cubin length
    ASSERT_TRUE(store->Put(Meta("a"), "cubin").ok());
    std::string bytes = ReadAll(FileOf(dir, "a"));
    bytes[at] ^= 0x40;
    WriteAll(FileOf(dir, "a"), bytes);
    EXPECT_EQ(store->Get(Meta("a").key).status().code(), absl::StatusCode::kNotFound) << at;
    EXPECT_FALSE(fs::exists(FileOf(dir, "a"))) << at;
  }
}

TEST(KernelStoreTest, TruncatedFileIsDiscarded) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->Put(Meta("a"), std::string(1000, 'c')).ok());
  ASSERT_TRUE(store->Put(Meta("b"), std::string(1000, 'c')).ok());
  fs::resize_file(FileOf(dir, "a"), fs::file_size(FileOf(dir, "a")) - 1);
  fs::resize_file(FileOf(dir, "b"), 10);  // not even a header
  for (const char* name : {"a", "b"}) {
    absl::StatusOr<std::string> got = store->Get(Meta(name).key);
    EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << name;
    EXPECT_THAT(got.status().message(), HasSubstr("discarded damaged")) << name;
    EXPECT_FALSE(fs::exists(FileOf(dir, name))) << name;
  }
  EXPECT_EQ(store->entries(), 0);
}

TEST(KernelStoreTest, FileOfAnotherKeyIsDiscarded) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->Put(Meta("a"), "cubin-a").ok());
  ASSERT_TRUE(store->Put(Meta("b"), "cubin-b").ok());
  fs::copy_file(FileOf(dir, "a"), FileOf(dir, "b"), fs::copy_options::overwrite_existing);
  EXPECT_EQ(store->Get(Meta("b").key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->Get(Meta("a").key), "cubin-a");
}

TEST(KernelStoreTest, EvictsLeastRecentlyUsedNotCreated) {
  TempDir dir;
  const std::string cubin(1000, 'c');
  // Room for two entries (each a little over 1000 bytes with its header), not three.
  auto store = MustOpen(dir.path(), 2500);
  ASSERT_TRUE(store->Put(Meta("a"), cubin).ok());
  ASSERT_TRUE(store->Put(Meta("b"), cubin).ok());
  ASSERT_TRUE(store->Get(Meta("a").key).ok());  // a: created first, used last
  ASSERT_TRUE(store->Put(Meta("c"), cubin).ok());
  EXPECT_TRUE(store->Get(Meta("a").key).ok());
  EXPECT_EQ(store->Get(Meta("b").key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(FileOf(dir, "b")));
  EXPECT_TRUE(store->Get(Meta("c").key).ok());
  EXPECT_EQ(store->entries(), 2);
  EXPECT_LE(store->bytes(), 2500);

  // Touch (a kernel served from memory) counts as a use too.
  store->Touch(Meta("a").key);
  ASSERT_TRUE(store->Put(Meta("d"), cubin).ok());
  EXPECT_TRUE(fs::exists(FileOf(dir, "a")));
  EXPECT_FALSE(fs::exists(FileOf(dir, "c")));
}

TEST(KernelStoreTest, LastUsesOrderEvictionAfterReopen) {
  TempDir dir;
  const std::string cubin(1000, 'c');
  {
    auto store = MustOpen(dir.path(), 2500);
    ASSERT_TRUE(store->Put(Meta("a"), cubin).ok());
    ASSERT_TRUE(store->Put(Meta("b"), cubin).ok());
    ASSERT_TRUE(store->Get(Meta("a").key).ok());
  }
  auto store = MustOpen(dir.path(), 2500);
  ASSERT_TRUE(store->Put(Meta("c"), cubin).ok());
  EXPECT_TRUE(fs::exists(FileOf(dir, "a")));
  EXPECT_FALSE(fs::exists(FileOf(dir, "b")));
}

TEST(KernelStoreTest, LowerCapAtOpenEvicts) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    for (const char* n : {"a", "b", "c"})
      ASSERT_TRUE(store->Put(Meta(n), std::string(1000, 'c')).ok());
  }
  auto store = MustOpen(dir.path(), 1500);
  EXPECT_EQ(store->entries(), 1);
  EXPECT_TRUE(fs::exists(FileOf(dir, "c")));
}

TEST(KernelStoreTest, OneEntryOverTheCapIsKept) {
  TempDir dir;
  auto store = MustOpen(dir.path(), 100);
  ASSERT_TRUE(store->Put(Meta("a"), std::string(1000, 'c')).ok());
  EXPECT_TRUE(store->Get(Meta("a").key).ok());
  ASSERT_TRUE(store->Put(Meta("b"), std::string(1000, 'c')).ok());
  EXPECT_FALSE(fs::exists(FileOf(dir, "a")));
  EXPECT_TRUE(store->Get(Meta("b").key).ok());
}

TEST(KernelStoreTest, ReplacingAnEntryKeepsTheByteCount) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  ASSERT_TRUE(store->Put(Meta("a"), std::string(1000, 'c')).ok());
  ASSERT_TRUE(store->Put(Meta("a"), std::string(10, 'c')).ok());
  EXPECT_EQ(store->entries(), 1);
  EXPECT_EQ(store->bytes(), static_cast<int64_t>(fs::file_size(FileOf(dir, "a"))));
}

TEST(KernelStoreTest, Clear) {
  TempDir dir;
  auto store = MustOpen(dir.path());
  for (const char* n : {"a", "b", "c"}) ASSERT_TRUE(store->Put(Meta(n), "cubin").ok());
  absl::StatusOr<int> n = store->Clear();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3);
  EXPECT_EQ(store->entries(), 0);
  EXPECT_EQ(store->bytes(), 0);
  EXPECT_TRUE(store->List().empty());
  for (const char* name : {"a", "b", "c"}) EXPECT_FALSE(fs::exists(FileOf(dir, name)));
  store.reset();
  EXPECT_EQ(MustOpen(dir.path())->entries(), 0);
  EXPECT_EQ(*MustOpen(dir.path())->Clear(), 0);
}

TEST(KernelStoreTest, IndexDropsEntriesWhoseFileIsGone) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store->Put(Meta("a"), "cubin-a").ok());
    ASSERT_TRUE(store->Put(Meta("b"), "cubin-b").ok());
  }
  fs::remove(FileOf(dir, "a"));
  auto store = MustOpen(dir.path());
  EXPECT_EQ(store->entries(), 1);
  ASSERT_EQ(store->List().size(), 1u);
  EXPECT_EQ(store->List()[0].key, Meta("b").key);
  // The rebuilt index is on disk already.
  auto index = nlohmann::json::parse(ReadAll(fs::path(dir.path()) / "index.json"));
  ASSERT_EQ(index["entries"].size(), 1u);
  EXPECT_EQ(index["entries"][0]["key"], Meta("b").key);

  // Deleted while open: a miss, and the entry goes.
  fs::remove(FileOf(dir, "b"));
  EXPECT_EQ(store->Get(Meta("b").key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->entries(), 0);
}

TEST(KernelStoreTest, LostOrDamagedIndexIsRebuiltFromFiles) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store->Put(Meta("a"), "cubin-a").ok());
    ASSERT_TRUE(store->Put(Meta("b"), "cubin-b").ok());
  }
  const fs::path index = fs::path(dir.path()) / "index.json";
  for (const std::string damage : {"", "{not json", R"({"version": 1, "entries": [{}]})"}) {
    if (damage.empty()) {
      fs::remove(index);
    } else {
      WriteAll(index, damage);
    }
    auto store = MustOpen(dir.path());
    EXPECT_EQ(store->entries(), 2) << damage;
    std::vector<KernelCacheEntry> list = store->List();
    ASSERT_EQ(list.size(), 2u);
    for (const KernelCacheEntry& e : list) {
      EXPECT_TRUE(e.spec == "a()" || e.spec == "b()") << e.spec;
      EXPECT_EQ(e.arch, "sm_90");
    }
    EXPECT_EQ(*store->Get(Meta("a").key), "cubin-a");
  }
}

TEST(KernelStoreTest, UnindexedDamagedFilesAndDeadTemporariesAreRemovedAtOpen) {
  TempDir dir;
  {
    auto store = MustOpen(dir.path());
    ASSERT_TRUE(store->Put(Meta("a"), "cubin-a").ok());
  }
  WriteAll(FileOf(dir, "junk"), "not a cubin at all, but long enough for a header");
  // A temporary of a writer that is gone: the pid of a child that has exited.
  const pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  const fs::path stale = fs::path(dir.path()) / ("x.cubin.tmp." + std::to_string(child));
  const fs::path live = fs::path(dir.path()) / ("y.cubin.tmp." + std::to_string(getpid()));
  WriteAll(stale, "partial");
  WriteAll(live, "partial");
  const fs::path other = fs::path(dir.path()) / "README";
  WriteAll(other, "someone's notes");

  auto store = MustOpen(dir.path());
  EXPECT_EQ(store->entries(), 1);
  EXPECT_EQ(store->discarded(), 1);
  EXPECT_FALSE(fs::exists(FileOf(dir, "junk")));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));  // could be a write in progress
  EXPECT_TRUE(fs::exists(other));
}

TEST(KernelStoreTest, OpenErrorsNameTheDirectory) {
  TempDir dir;
  const fs::path file = fs::path(dir.path()) / "plain_file";
  WriteAll(file, "x");
  absl::StatusOr<std::unique_ptr<KernelStore>> s = KernelStore::Open(file.string(), 0);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(file.string()));
}

TEST(KernelStoreTest, MemoryOnly) {
  auto store = MustOpen("", 2500);
  const std::string cubin(1000, 'c');
  ASSERT_TRUE(store->Put(Meta("a"), cubin).ok());
  ASSERT_TRUE(store->Put(Meta("b"), cubin).ok());
  ASSERT_TRUE(store->Get(Meta("a").key).ok());
  ASSERT_TRUE(store->Put(Meta("c"), cubin).ok());
  EXPECT_EQ(store->entries(), 2);
  EXPECT_EQ(*store->Get(Meta("a").key), cubin);
  EXPECT_EQ(store->Get(Meta("b").key).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*store->Clear(), 2);
  EXPECT_EQ(store->Get(Meta("a").key).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace sparsed::jit
