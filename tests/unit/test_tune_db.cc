// The tune database: persistence, atomic saves, import validation, counters.
// Expected contents are the entries each test builds itself; files on disk are
// read back with nlohmann::json independently of the code under test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sparsed/tune_db.h"

namespace sparsed {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sparsed_tune_XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  fs::path path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

TuneEntry Entry(std::string key, std::string variant, std::map<std::string, double> timings,
                int64_t created = 1700000000000) {
  return TuneEntry{.key = std::move(key),
                   .variant = std::move(variant),
                   .timings_ms = std::move(timings),
                   .created_unix_ms = created};
}

std::unique_ptr<TuneDb> MustOpen(const fs::path& p) {
  auto db = TuneDb::Open(p.string());
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

// The entries of a tune file as plain JSON, checked against the schema.
json FileEntries(const fs::path& p) {
  json doc = json::parse(ReadAll(p));  // throws (fails the test) on a partial file
  EXPECT_EQ(doc.at("version"), 1);
  return doc.at("entries");
}

TEST(TuneDbTest, MissingFileIsEmptyAndNotCreatedUntilAChange) {
  TempDir dir;
  const fs::path p = dir.path() / "sub" / "dir" / "tune.json";
  auto db = MustOpen(p);
  EXPECT_EQ(db->size(), 0);
  EXPECT_EQ(db->warning(), "");
  EXPECT_EQ(db->path(), p.string());
  EXPECT_FALSE(fs::exists(p));
  ASSERT_TRUE(db->Record(Entry("k", "v", {{"v", 1}})).ok());
  EXPECT_TRUE(fs::exists(p));  // parent directories created
}

TEST(TuneDbTest, RoundTripThroughFileAndFreshOpen) {
  TempDir dir;
  const fs::path p = dir.path() / "tune.json";
  const std::vector<TuneEntry> want = {
      Entry("spmm/csr/f32/m=1000,n=64,nnz=5000/cuda:0", "row_split_v4",
            {{"row_split_v4", 0.125}, {"merge_path", 0.2}, {"cusparse", 0.15}}, 1700000000001),
      Entry("spmm/csr/f16/m=10,n=8,nnz=20/cuda:0", "cusparse", {{"cusparse", 1e-3}}, 42),
  };
  {
    auto db = MustOpen(p);
    for (const TuneEntry& e : want) ASSERT_TRUE(db->Record(e).ok());
    EXPECT_EQ(db->size(), 2);
  }
  auto db = MustOpen(p);
  EXPECT_EQ(db->warning(), "");
  // List is ordered by key: the f16 key sorts first.
  EXPECT_EQ(db->List(), (std::vector<TuneEntry>{want[1], want[0]}));
  ASSERT_TRUE(db->Lookup(want[0].key).has_value());
  EXPECT_EQ(*db->Lookup(want[0].key), want[0]);
}

TEST(TuneDbTest, RecordFillsCreationTimeAndReplacesSameKey) {
  auto db = MustOpen("");  // in memory only
  const int64_t before = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  ASSERT_TRUE(db->Record(Entry("k", "a", {{"a", 2}}, 0)).ok());
  EXPECT_GE(db->List().at(0).created_unix_ms, before);
  ASSERT_TRUE(db->Record(Entry("k", "b", {{"a", 2}, {"b", 1}}, 5)).ok());
  EXPECT_EQ(db->List(), std::vector<TuneEntry>{Entry("k", "b", {{"a", 2}, {"b", 1}}, 5)});
}

TEST(TuneDbTest, RecordRejectsInvalidEntries) {
  auto db = MustOpen("");
  struct Case {
    TuneEntry entry;
    std::string field;
  } cases[] = {
      {Entry("", "v", {}), "key"},
      {Entry("k", "", {}), "variant"},
      {Entry("k", "v", {{"v", -1}}), "timings_ms.v"},
      {Entry("k", "v", {{"v", NAN}}), "timings_ms.v"},
      {Entry("k", "v", {{"v", INFINITY}}), "timings_ms.v"},
  };
  for (const Case& c : cases) {
    absl::Status s = db->Record(c.entry);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.field));
  }
  EXPECT_EQ(db->size(), 0);
}

TEST(TuneDbTest, FileOnDiskIsAlwaysCompleteJson) {
  TempDir dir;
  const fs::path p = dir.path() / "tune.json";
  auto db = MustOpen(p);
  for (int i = 0; i < 20; ++i) {
    const std::string key = "key-" + std::to_string(100 + i);
    const double ms = 0.5 + i / 8.0;
    ASSERT_TRUE(db->Record(Entry(key, "var" + std::to_string(i), {{"x", ms}}, i + 1)).ok());
    json entries = FileEntries(p);
    ASSERT_EQ(entries.size(), static_cast<size_t>(i + 1));
    const json& last = entries.back();  // ordered by key, and keys grow
    EXPECT_EQ(last.at("key"), key);
    EXPECT_EQ(last.at("variant"), "var" + std::to_string(i));
    EXPECT_EQ(last.at("timings_ms").at("x").get<double>(), ms);
    EXPECT_EQ(last.at("created_unix_ms"), i + 1);
  }
  ASSERT_TRUE(db->Clear().ok());
  EXPECT_EQ(FileEntries(p).size(), 0u);
  // No temporary files are left next to it.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"tune.json"});
}

TEST(TuneDbTest, ExportImportIntoAnotherDbEquals) {
  auto a = MustOpen("");
  ASSERT_TRUE(a->Record(Entry("k1", "v1", {{"v1", 0.1}, {"v2", 0.30000000000000004}}, 7)).ok());
  ASSERT_TRUE(a->Record(Entry("k2", "w", {{"w", 123456.789}}, 8)).ok());
  ASSERT_TRUE(a->Record(Entry("k3 \"quoted\" \\ ü", "z", {}, 9)).ok());
  const std::string text = a->ExportJson();

  // The export is the documented schema.
  json doc = json::parse(text);
  EXPECT_EQ(doc.at("version"), 1);
  ASSERT_EQ(doc.at("entries").size(), 3u);
  EXPECT_EQ(doc.at("entries")[0].at("key"), "k1");
  EXPECT_EQ(doc.at("entries")[0].at("timings_ms").at("v2").get<double>(), 0.30000000000000004);

  TempDir dir;
  auto b = MustOpen(dir.path() / "b.json");
  ASSERT_TRUE(b->Record(Entry("k2", "old", {{"old", 9}}, 1)).ok());  // replaced by the import
  ASSERT_TRUE(b->Record(Entry("k0", "keep", {}, 2)).ok());           // untouched
  absl::StatusOr<int> n = b->ImportJson(text);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 3);
  std::vector<TuneEntry> want = a->List();
  want.insert(want.begin(), Entry("k0", "keep", {}, 2));
  EXPECT_EQ(b->List(), want);
  // And it was persisted.
  EXPECT_EQ(MustOpen(dir.path() / "b.json")->List(), want);
}

TEST(TuneDbTest, ImportAcceptsHandWrittenJsonWithoutCreationTime) {
  auto db = MustOpen("");
  absl::StatusOr<int> n = db->ImportJson(R"({"version": 1, "entries": [
      {"key": "a", "variant": "x", "timings_ms": {"x": 1, "y": 2.5}}]})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(db->List(), std::vector<TuneEntry>{Entry("a", "x", {{"x", 1}, {"y", 2.5}}, 0)});
}

TEST(TuneDbTest, ImportRejectsBadEntriesAtomically) {
  TempDir dir;
  const fs::path p = dir.path() / "tune.json";
  auto db = MustOpen(p);
  ASSERT_TRUE(db->Record(Entry("existing", "v", {{"v", 1}})).ok());
  const std::string file_before = ReadAll(p);
  const std::string good = R"({"key": "new", "variant": "x", "timings_ms": {"x": 1}})";
  struct Case {
    std::string text;
    std::string message;
  } cases[] = {
      {"{\"version\": 1, \"entries\": [" + good + R"(, {"key": "", "variant": "x",
        "timings_ms": {}}]})",
       "entry 1: key must be a non-empty string"},
      {"{\"version\": 1, \"entries\": [" + good + R"(, {"key": "k", "timings_ms": {}}]})",
       "entry 1: variant must be a non-empty string"},
      {"{\"version\": 1, \"entries\": [" + good + "," + good + R"(, {"key": "k", "variant": "x",
        "timings_ms": {"x": -0.5}}]})",
       "entry 2: timings_ms.x must be a finite non-negative number"},
      // nlohmann refuses to parse a number that overflows a double.
      {R"({"version": 1, "entries": [{"key": "k", "variant": "x", "timings_ms": {"x": 1e999}}]})",
       "not valid JSON: number overflow parsing '1e999'"},
      {R"({"version": 1, "entries": [{"key": "k", "variant": "x", "timings_ms": {"x": "1"}}]})",
       "entry 0: timings_ms.x must be a finite"},
      {R"({"version": 1, "entries": [{"key": "k", "variant": "x"}]})", "entry 0: timings_ms"},
      {R"({"version": 1, "entries": [{"key": 5, "variant": "x", "timings_ms": {}}]})",
       "entry 0: key must be a non-empty string"},
      {R"({"version": 1, "entries": [{"key": "k", "variant": "x", "timings_ms": {},
        "created_unix_ms": -3}]})",
       "entry 0: created_unix_ms"},
      {R"({"version": 1, "entries": [7]})", "entry 0: must be an object"},
      {R"({"version": 2, "entries": []})", "version must be 1, got 2"},
      {R"({"entries": []})", "version must be 1"},
      {R"({"version": 1, "entries": {}})", "entries must be an array"},
      {R"([1, 2])", "top level must be an object"},
      {R"({"version": 1, "entries": [)", "not valid JSON: parse error at line 1, column 28"},
      {"", "not valid JSON"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<int> n = db->ImportJson(c.text);
    ASSERT_FALSE(n.ok()) << c.text;
    EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(n.status().message()), HasSubstr(c.message)) << c.text;
  }
  EXPECT_EQ(db->size(), 1);
  EXPECT_FALSE(db->Lookup("new").has_value());
  EXPECT_EQ(ReadAll(p), file_before);
}

TEST(TuneDbTest, CorruptFileIsMovedAsideWithWarning) {
  struct Case {
    std::string content;
    std::string reason;
  } cases[] = {
      {"{\"version\": 1, \"entries\": [", "not valid JSON"},
      {"{\"version\": 99, \"entries\": []}", "version must be 1"},
      {R"({"version": 1, "entries": [{"key": "k", "variant": ""}]})", "entry 0: variant"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const fs::path p = dir.path() / "tune.json";
    WriteAll(p, c.content);
    auto db = MustOpen(p);
    EXPECT_EQ(db->size(), 0);
    EXPECT_THAT(db->warning(), HasSubstr(c.reason));
    EXPECT_THAT(db->warning(), HasSubstr(p.string() + ".corrupt"));
    EXPECT_FALSE(fs::exists(p));
    EXPECT_EQ(ReadAll(p.string() + ".corrupt"), c.content);
    // The database is usable and saves a fresh file.
    ASSERT_TRUE(db->Record(Entry("k", "v", {{"v", 1}})).ok());
    EXPECT_EQ(FileEntries(p).size(), 1u);
    EXPECT_EQ(MustOpen(p)->warning(), "");
  }
}

TEST(TuneDbTest, UnreadablePathIsMovedAside) {
  TempDir dir;
  const fs::path p = dir.path() / "tune.json";
  fs::create_directory(p);  // a directory where the file should be: read fails
  auto db = MustOpen(p);
  EXPECT_EQ(db->size(), 0);
  EXPECT_THAT(db->warning(), HasSubstr(".corrupt"));
  EXPECT_TRUE(fs::is_directory(p.string() + ".corrupt"));
}

TEST(TuneDbTest, FailedSaveReturnsErrorAndKeepsMemoryState) {
  TempDir dir;
  WriteAll(dir.path() / "file", "x");
  // The parent "directory" is a regular file: saving must fail, even as root.
  const fs::path p = dir.path() / "file" / "tune.json";
  auto db = MustOpen(p);
  absl::Status s = db->Record(Entry("k", "v", {{"v", 1}}));
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr((dir.path() / "file").string()));
  EXPECT_THAT(std::string(s.message()), HasSubstr("Not a directory"));
  EXPECT_EQ(db->size(), 1);
  EXPECT_TRUE(db->Lookup("k").has_value());
  EXPECT_FALSE(db->ImportJson(R"({"version": 1, "entries": []})").ok());
  absl::StatusOr<int> cleared = db->Clear();
  EXPECT_FALSE(cleared.ok());
  EXPECT_EQ(db->size(), 0);
}

TEST(TuneDbTest, ConcurrentRecordsLoseNothing) {
  TempDir dir;
  const fs::path p = dir.path() / "tune.json";
  auto db = MustOpen(p);
  constexpr int kThreads = 4, kPerThread = 25;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&db, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(db->Record(Entry(key, "v", {{"v", t + i / 100.0}})).ok());
        db->Lookup(key);
        db->AddTrials(2);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(db->size(), kThreads * kPerThread);
  EXPECT_EQ(db->hits(), kThreads * kPerThread);
  EXPECT_EQ(db->trials(), 2 * kThreads * kPerThread);
  EXPECT_EQ(FileEntries(p).size(), static_cast<size_t>(kThreads * kPerThread));
  auto reopened = MustOpen(p);
  ASSERT_EQ(reopened->size(), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      auto e = reopened->Lookup("t" + std::to_string(t) + "-" + std::to_string(i));
      ASSERT_TRUE(e.has_value());
      EXPECT_EQ(e->timings_ms.at("v"), t + i / 100.0);
    }
  }
}

TEST(TuneDbTest, HitAndMissCounters) {
  auto db = MustOpen("");
  EXPECT_EQ(db->hits(), 0);
  EXPECT_EQ(db->misses(), 0);
  EXPECT_FALSE(db->Lookup("a").has_value());
  EXPECT_FALSE(db->Lookup("b").has_value());
  ASSERT_TRUE(db->Record(Entry("a", "v", {})).ok());
  EXPECT_TRUE(db->Lookup("a").has_value());
  EXPECT_EQ(db->hits(), 1);
  EXPECT_EQ(db->misses(), 2);
  db->AddTrials(5);
  EXPECT_EQ(db->trials(), 5);
  // Listing and exporting do not count as lookups.
  db->List();
  db->ExportJson();
  EXPECT_EQ(db->hits(), 1);
  EXPECT_EQ(db->misses(), 2);
}

TEST(TuneDbTest, ClearReturnsCountAndPersists) {
  TempDir dir;
  const fs::path p = dir.path() / "tune.json";
  auto db = MustOpen(p);
  ASSERT_TRUE(db->Record(Entry("a", "v", {})).ok());
  ASSERT_TRUE(db->Record(Entry("b", "v", {})).ok());
  absl::StatusOr<int> n = db->Clear();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2);
  EXPECT_EQ(MustOpen(p)->size(), 0);
  EXPECT_EQ(*db->Clear(), 0);
}

// Issue 17: imports were unbounded (past 75 MB the database could no longer
// be exported or listed). Entries and the database are bounded now.
TEST(TuneDbTest, ImportsAndEntriesAreBounded) {
  auto db = MustOpen("");
  ASSERT_TRUE(db->Record(Entry("held", "a", {{"a", 1}})).ok());
  // One entry too many: refused whole.
  json doc = {{"version", 1}, {"entries", json::array()}};
  for (int64_t i = 0; i < TuneDb::kMaxEntries; ++i) {
    doc["entries"].push_back(
        {{"key", "k" + std::to_string(i)}, {"variant", "v"}, {"timings_ms", {{"v", 1.0}}}});
  }
  absl::StatusOr<int> r = db->ImportJson(doc.dump());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_EQ(db->size(), 1);
  // Exactly the cap fits (the held key counted once when re-imported).
  doc["entries"].back()["key"] = "held";
  r = db->ImportJson(doc.dump());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(db->size(), TuneDb::kMaxEntries);
  // Recording past the cap evicts the oldest entry.
  ASSERT_TRUE(db->Record(Entry("newest", "a", {{"a", 1}}, 1)).ok());
  EXPECT_EQ(db->size(), TuneDb::kMaxEntries);
  // Oversized fields are INVALID_ARGUMENT naming the entry and field.
  json big = {
      {"version", 1},
      {"entries",
       {{{"key", std::string(5000, 'k')}, {"variant", "v"}, {"timings_ms", {{"v", 1.0}}}}}}};
  r = db->ImportJson(big.dump());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("entry 0: key has 5000 bytes"),
            std::string::npos)
      << r.status();
  json many = {{"version", 1},
               {"entries", {{{"key", "x"}, {"variant", "v"}, {"timings_ms", json::object()}}}}};
  for (int i = 0; i < 65; ++i) many["entries"][0]["timings_ms"]["c" + std::to_string(i)] = 1.0;
  r = db->ImportJson(many.dump());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_FALSE(db->Record(Entry(std::string(2000, 'k'), "v", {{"v", 1}})).ok());
}

}  // namespace
}  // namespace sparsed
