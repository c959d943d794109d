#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/tensor_store.h"
#include "sparsed/buffer.h"
#include "sparsed/str_cat.h"
#include "sparsed/tensor.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

// A dense f32 vector of n elements (4n bytes).
Tensor Dense(int64_t n) {
  auto t = Tensor::Allocate(TensorDesc{Format::kDense, DType::kF32, DType::kI32, {n}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

TensorPtr MustInsert(TensorStore& store, int64_t n, const std::string& name = "",
                     std::map<std::string, std::string> labels = {}) {
  auto p = store.Insert("", Dense(n), name, std::move(labels));
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : nullptr;
}

std::vector<std::string> Names(const std::vector<TensorPtr>& list) {
  std::vector<std::string> out;
  for (const TensorPtr& t : list) out.push_back(t->name);
  return out;
}

int64_t CpuInUse() { return MemoryAccount::For(Device::Cpu()).in_use(); }

TEST(TensorStoreTest, InsertKeepsWhatItWasGiven) {
  TensorStore store;
  const auto before = std::chrono::system_clock::now();
  TensorPtr t = MustInsert(store, 8, "weights", {{"model", "m1"}, {"layer", "3"}});
  const auto after = std::chrono::system_clock::now();
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->name, "weights");
  EXPECT_EQ(t->labels, (std::map<std::string, std::string>{{"model", "m1"}, {"layer", "3"}}));
  EXPECT_EQ(t->tensor.desc().shape, std::vector<int64_t>{8});
  EXPECT_EQ(t->tensor.bytes(), 32);
  auto ms = [](auto tp) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  };
  EXPECT_GE(t->created_unix_ms, ms(before));
  EXPECT_LE(t->created_unix_ms, ms(after));
  EXPECT_EQ(store.size(), 1);

  auto by_id = store.FindById("", t->id);
  ASSERT_TRUE(by_id.ok()) << by_id.status();
  EXPECT_EQ(by_id->get(), t.get());
  auto by_name = store.FindByName("", "weights");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->get(), t.get());
}

TEST(TensorStoreTest, IdsHaveTheDocumentedFormAndAreUnique) {
  TensorStore store;
  const std::regex form("^t-[0-9a-f]{16}$");
  std::set<std::string> ids;
  constexpr int kCount = 10000;
  for (int i = 0; i < kCount; ++i) {
    TensorPtr t = MustInsert(store, 1);
    ASSERT_NE(t, nullptr);
    ASSERT_TRUE(std::regex_match(t->id, form)) << t->id;
    ASSERT_TRUE(ids.insert(t->id).second) << "id reused: " << t->id;
  }
  EXPECT_EQ(store.size(), kCount);
  EXPECT_EQ(store.List("", "").size(), static_cast<size_t>(kCount));
}

TEST(TensorStoreTest, NamesAreUnique) {
  TensorStore store;
  TensorPtr first = MustInsert(store, 4, "emb");
  ASSERT_NE(first, nullptr);

  auto again = store.Insert("", Dense(4), "emb", {});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("'emb'"));
  EXPECT_THAT(std::string(again.status().message()), HasSubstr(first->id));

  absl::Status free = store.CheckNameFree("", "emb");
  EXPECT_EQ(free.code(), absl::StatusCode::kAlreadyExists) << free;
  EXPECT_THAT(std::string(free.message()), HasSubstr(first->id));
  EXPECT_TRUE(store.CheckNameFree("", "other").ok());
  EXPECT_TRUE(store.CheckNameFree("", "").ok());

  // The refused insert left nothing behind; unnamed tensors never clash.
  EXPECT_EQ(store.size(), 1);
  ASSERT_NE(MustInsert(store, 4), nullptr);
  ASSERT_NE(MustInsert(store, 4), nullptr);
  EXPECT_EQ(store.size(), 3);
}

TEST(TensorStoreTest, NotFoundNamesWhatWasAskedFor) {
  TensorStore store;
  MustInsert(store, 1, "present");
  auto by_id = store.FindById("", "t-00000000deadbeef");
  EXPECT_EQ(by_id.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(by_id.status().message()), HasSubstr("t-00000000deadbeef"));

  auto by_name = store.FindByName("", "absent");
  EXPECT_EQ(by_name.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(by_name.status().message()), HasSubstr("absent"));

  auto erase = store.EraseById("", "t-0123456789abcdef");
  EXPECT_EQ(erase.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(erase.status().message()), HasSubstr("t-0123456789abcdef"));
  EXPECT_EQ(store.size(), 1);
}

TEST(TensorStoreTest, EraseFreesTheName) {
  TensorStore store;
  TensorPtr old = MustInsert(store, 2, "x");
  ASSERT_NE(old, nullptr);
  const std::string old_id = old->id;

  auto erased = store.EraseById("", old_id);
  ASSERT_TRUE(erased.ok()) << erased.status();
  EXPECT_EQ((*erased)->id, old_id);
  EXPECT_EQ(store.size(), 0);
  EXPECT_EQ(store.FindById("", old_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.FindByName("", "x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store.CheckNameFree("", "x").ok());
  EXPECT_EQ(store.EraseById("", old_id).status().code(), absl::StatusCode::kNotFound);

  TensorPtr reused = MustInsert(store, 3, "x");
  ASSERT_NE(reused, nullptr);
  EXPECT_NE(reused->id, old_id);
  auto found = store.FindByName("", "x");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ((*found)->id, reused->id);
  EXPECT_EQ((*found)->tensor.desc().shape, std::vector<int64_t>{3});
}

TEST(TensorStoreTest, ReaderKeepsErasedTensorAliveUntilItLetsGo) {
  TensorStore store;
  const int64_t base = CpuInUse();
  std::string id;
  {
    auto inserted = store.Insert("", Dense(1024), "big", {});
    ASSERT_TRUE(inserted.ok());
    id = (*inserted)->id;
  }
  EXPECT_EQ(CpuInUse(), base + 4096);

  TensorPtr reader = *store.FindById("", id);
  ASSERT_TRUE(store.EraseById("", id).ok());  // the returned reference is dropped at once
  EXPECT_EQ(store.size(), 0);
  // Still readable and still accounted.
  EXPECT_EQ(CpuInUse(), base + 4096);
  EXPECT_EQ(reader->name, "big");
  EXPECT_EQ(reader->tensor.data<float>("values").size(), 1024u);

  TensorPtr second = reader;
  reader.reset();
  EXPECT_EQ(CpuInUse(), base + 4096);  // one reference left
  second.reset();
  EXPECT_EQ(CpuInUse(), base);
}

TEST(TensorStoreTest, DestroyingTheStoreReleasesMemory) {
  const int64_t base = CpuInUse();
  {
    TensorStore store;
    for (int i = 0; i < 10; ++i) MustInsert(store, 100);
    EXPECT_EQ(CpuInUse(), base + 10 * 400);
  }
  EXPECT_EQ(CpuInUse(), base);
}

TEST(TensorStoreTest, ListIsInCreationOrderAndFiltersByPrefix) {
  TensorStore store;
  // Names deliberately not in sorted order, ids are random.
  for (const char* name : {"b1", "a1", "", "b2", "ab", "c"}) MustInsert(store, 1, name);
  EXPECT_EQ(Names(store.List("", "")), (std::vector<std::string>{"b1", "a1", "", "b2", "ab", "c"}));
  EXPECT_EQ(Names(store.List("", "b")), (std::vector<std::string>{"b1", "b2"}));
  EXPECT_EQ(Names(store.List("", "a")), (std::vector<std::string>{"a1", "ab"}));
  EXPECT_EQ(Names(store.List("", "ab")), (std::vector<std::string>{"ab"}));
  EXPECT_EQ(Names(store.List("", "b1x")), std::vector<std::string>{});
  EXPECT_EQ(Names(store.List("", "z")), std::vector<std::string>{});

  // Erasing keeps the others in order; a re-inserted name goes last.
  ASSERT_TRUE(store.EraseById("", (*store.FindByName("", "a1"))->id).ok());
  MustInsert(store, 1, "a1");
  EXPECT_EQ(Names(store.List("", "")), (std::vector<std::string>{"b1", "", "b2", "ab", "c", "a1"}));
}

TEST(TensorStoreTest, UsageSumsPerDevice) {
  TensorStore store;
  EXPECT_TRUE(store.Usage().empty());

  MustInsert(store, 10);  // 40 bytes
  MustInsert(store, 20);  // 80 bytes
  // CSR 4x5 with 3 entries, i32 indices: row_ptr 5*4 + col_idx 3*4 + values 3*4.
  auto csr = Tensor::Allocate(TensorDesc{Format::kCsr, DType::kF32, DType::kI32, {4, 5}, 3});
  ASSERT_TRUE(csr.ok()) << csr.status();
  ASSERT_TRUE(store.Insert("", std::move(csr).value(), "sparse", {}).ok());

  std::vector<HeldUsage> usage = store.Usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].device, "cpu");
  EXPECT_EQ(usage[0].tensors, 3);
  EXPECT_EQ(usage[0].bytes, 40 + 80 + 44);

  ASSERT_TRUE(store.EraseById("", (*store.FindByName("", "sparse"))->id).ok());
  usage = store.Usage();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].tensors, 2);
  EXPECT_EQ(usage[0].bytes, 120);
}

TEST(TensorStoreTest, InsertAllAddsEveryTensorOrNone) {
  TensorStore store;
  MustInsert(store, 1, "taken");
  auto batch = [](std::vector<std::string> names) {
    std::vector<TensorStore::NewTensor> out;
    int64_t n = 2;
    for (std::string& name : names) out.push_back({Dense(n++), std::move(name), {{"k", "v"}}});
    return out;
  };
  // A taken name late in the batch: nothing of the batch is added.
  absl::StatusOr<std::vector<TensorPtr>> r = store.InsertAll(batch({"a", "", "b", "taken"}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("'taken'"));
  EXPECT_EQ(store.size(), 1);
  EXPECT_EQ(store.FindByName("", "a").status().code(), absl::StatusCode::kNotFound);
  // A name given twice within the batch: the same.
  r = store.InsertAll(batch({"c", "d", "c"}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("'c'"));
  EXPECT_EQ(store.size(), 1);
  // A good batch: all added, in order, with their names, labels and sizes.
  r = store.InsertAll(batch({"a", "", "b"}));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ(store.size(), 4);
  for (size_t i = 0; i < 3; ++i) {
    absl::StatusOr<TensorPtr> found = store.FindById("", (*r)[i]->id);
    ASSERT_TRUE(found.ok());
    EXPECT_EQ(found->get(), (*r)[i].get());
    EXPECT_EQ((*r)[i]->tensor.desc().shape[0], static_cast<int64_t>(2 + i));
    EXPECT_EQ((*r)[i]->labels.at("k"), "v");
  }
  EXPECT_EQ((*store.FindByName("", "b"))->id, (*r)[2]->id);
  std::vector<TensorPtr> listed = store.List("", "");
  ASSERT_EQ(listed.size(), 4u);
  EXPECT_EQ(listed[1]->id, (*r)[0]->id);
  EXPECT_EQ(listed[3]->id, (*r)[2]->id);
}

TEST(TensorStoreTest, ConcurrentInsertEraseFind) {
  TensorStore store;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::atomic<int> shared_wins{0};
  std::atomic<int> wrong_lookups{0};
  std::vector<std::vector<std::string>> kept_ids(kThreads);

  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&, w] {
      std::vector<std::string> mine;
      for (int i = 0; i < kPerThread; ++i) {
        const std::string name = "w" + std::to_string(w) + "-" + std::to_string(i);
        auto t = store.Insert("", Dense(1), name, {});
        if (!t.ok()) {
          wrong_lookups++;
          continue;
        }
        mine.push_back((*t)->id);
        // Look at another worker's tensors; when found they must be intact.
        const std::string other =
            "w" + std::to_string((w + 1) % kThreads) + "-" + std::to_string(i);
        if (auto o = store.FindByName("", other); o.ok() && (*o)->name != other) wrong_lookups++;
        if (auto o = store.FindById("", mine.back()); !o.ok() || (*o)->name != name)
          wrong_lookups++;
        // Erase every other own tensor, by id.
        if (i % 2 == 1) {
          auto e = store.EraseById("", mine.back());
          if (!e.ok() || (*e)->name != name) wrong_lookups++;
          mine.pop_back();
        }
        if (i % 100 == 0) store.List("", "w");
        // All workers race for one name: exactly one Insert may win.
        if (i == kPerThread / 2 && store.Insert("", Dense(1), "shared", {}).ok()) shared_wins++;
      }
      kept_ids[w] = std::move(mine);
    });
  }
  for (std::thread& t : threads) t.join();

  EXPECT_EQ(wrong_lookups.load(), 0);
  EXPECT_EQ(shared_wins.load(), 1);
  std::set<std::string> expected;
  for (const auto& ids : kept_ids) {
    EXPECT_EQ(ids.size(), static_cast<size_t>(kPerThread / 2));
    expected.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(expected.size(), static_cast<size_t>(kThreads * kPerThread / 2));
  EXPECT_EQ(store.size(), kThreads * kPerThread / 2 + 1);

  std::set<std::string> listed;
  for (const TensorPtr& t : store.List("", "w")) {
    EXPECT_TRUE(listed.insert(t->id).second) << "listed twice: " << t->id;
    auto by_name = store.FindByName("", t->name);
    ASSERT_TRUE(by_name.ok()) << t->name;
    EXPECT_EQ((*by_name)->id, t->id);
  }
  EXPECT_EQ(listed, expected);
  // Every kept name is even-numbered; every odd one was erased.
  for (int w = 0; w < kThreads; ++w) {
    EXPECT_TRUE(store.FindByName("", "w" + std::to_string(w) + "-0").ok());
    EXPECT_FALSE(store.FindByName("", "w" + std::to_string(w) + "-1").ok());
    EXPECT_TRUE(store.FindByName("", "w" + std::to_string(w) + "-998").ok());
    EXPECT_FALSE(store.FindByName("", "w" + std::to_string(w) + "-999").ok());
  }
  // Per-thread creation order survives in List.
  std::map<int, int> last_index;
  for (const TensorPtr& t : store.List("", "w")) {
    const int w = t->name[1] - '0';
    const int i = std::stoi(t->name.substr(3));
    if (last_index.contains(w)) {
      EXPECT_LT(last_index[w], i) << t->name;
    }
    last_index[w] = i;
  }
}

// Names are per tenant; ids, names, lists, erasure and usage never cross
// tenants, and another tenant's tensor looks exactly like a missing one.
TEST(TensorStoreTest, TenantsAreIsolated) {
  TensorStore store;
  auto a = store.Insert("alice", Dense(4), "w", {});
  auto b = store.Insert("bob", Dense(8), "w", {});  // the same name in another tenant
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*store.FindByName("alice", "w"))->id, (*a)->id);
  EXPECT_EQ((*store.FindByName("bob", "w"))->id, (*b)->id);
  EXPECT_EQ(store.FindByName("", "w").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.CheckNameFree("alice", "w").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(store.CheckNameFree("carol", "w").ok());

  auto cross = store.FindById("bob", (*a)->id);
  auto missing = store.FindById("bob", "t-00000000deadbeef");
  EXPECT_EQ(cross.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cross.status().message(), StrCat("no tensor with id '", (*a)->id, "'"));
  EXPECT_EQ(missing.status().message(), "no tensor with id 't-00000000deadbeef'");
  EXPECT_EQ(store.EraseById("bob", (*a)->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store.FindById("alice", (*a)->id).ok());  // still there

  EXPECT_EQ(store.List("alice", "").size(), 1u);
  EXPECT_EQ(store.List("bob", "w").size(), 1u);
  EXPECT_EQ(store.List("", "").size(), 0u);
  EXPECT_EQ(store.ListAll().size(), 2u);
  ASSERT_EQ(store.Usage("alice").size(), 1u);
  EXPECT_EQ(store.Usage("alice")[0].bytes, (*a)->tensor.bytes());
  EXPECT_EQ(store.Usage()[0].bytes, (*a)->tensor.bytes() + (*b)->tensor.bytes());

  ASSERT_TRUE(store.EraseById("alice", (*a)->id).ok());
  EXPECT_TRUE(store.FindByName("bob", "w").ok());
  EXPECT_TRUE(store.CheckNameFree("alice", "w").ok());

  // A batch may give one name to two tensors of different tenants, not of one.
  std::vector<TensorStore::NewTensor> batch;
  batch.push_back({Dense(1), "x", {}, "alice"});
  batch.push_back({Dense(1), "x", {}, "bob2"});
  EXPECT_TRUE(store.InsertAll(std::move(batch)).ok());
  std::vector<TensorStore::NewTensor> clash;
  clash.push_back({Dense(1), "y", {}, "carol"});
  clash.push_back({Dense(1), "y", {}, "carol"});
  EXPECT_EQ(store.InsertAll(std::move(clash)).status().code(), absl::StatusCode::kAlreadyExists);
}

}  // namespace
}  // namespace sparsed::server
