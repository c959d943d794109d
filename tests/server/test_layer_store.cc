#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server/layer_store.h"
#include "sparsed/backend.h"
#include "sparsed/training.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

train::SparseLinear MakeLayer(Backend& backend, int64_t in, int64_t out) {
  train::LayerConfig c;
  c.in_features = in;
  c.out_features = out;
  c.sparsity = 0.5;
  auto l = train::SparseLinear::Create(backend, c);
  EXPECT_TRUE(l.ok()) << l.status();
  return std::move(l).value();
}

class LayerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = MakeCpuBackend(1); }
  std::unique_ptr<Backend> backend_;
  LayerStore store_;
};

TEST_F(LayerStoreTest, InsertFindListErase) {
  auto a = store_.Insert("", MakeLayer(*backend_, 4, 3), "a");
  ASSERT_TRUE(a.ok()) << a.status();
  auto unnamed = store_.Insert("", MakeLayer(*backend_, 2, 2), "");
  ASSERT_TRUE(unnamed.ok()) << unnamed.status();
  auto b = store_.Insert("", MakeLayer(*backend_, 5, 1), "b");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_THAT((*a)->id, ::testing::MatchesRegex("l-[0-9a-f]{16}"));
  EXPECT_EQ(store_.size(), 3);

  EXPECT_EQ(store_.FindByName("", "a").value()->id, (*a)->id);
  EXPECT_EQ(store_.FindById("", (*b)->id).value()->name, "b");
  EXPECT_EQ(store_.FindById("", (*b)->id).value()->layer.config().in_features, 5);
  EXPECT_EQ(store_.FindByName("", "zz").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store_.FindByName("", "zz").status().message(), HasSubstr("zz"));

  auto clash = store_.Insert("", MakeLayer(*backend_, 1, 1), "a");
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(clash.status().message(), HasSubstr((*a)->id));
  EXPECT_EQ(store_.CheckNameFree("", "a").code(), absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(store_.CheckNameFree("", "").ok());

  std::vector<std::string> order;
  for (const LayerPtr& l : store_.List("")) order.push_back(l->id);
  EXPECT_EQ(order, (std::vector<std::string>{(*a)->id, (*unnamed)->id, (*b)->id}));

  // An erased layer stays alive for holders; its name is free again.
  LayerPtr held = *a;
  ASSERT_TRUE(store_.EraseById("", held->id).ok());
  EXPECT_EQ(store_.FindById("", held->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.EraseById("", held->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_.CheckNameFree("", "a").ok());
  EXPECT_EQ(held->layer.config().out_features, 3);
  EXPECT_EQ(store_.size(), 2);
}

TEST_F(LayerStoreTest, ConcurrentInsertsGetDistinctIdsAndUniqueNames) {
  constexpr int kThreads = 4, kEach = 8;
  std::vector<train::SparseLinear> layers;
  for (int i = 0; i < kThreads * kEach * 2; ++i) layers.push_back(MakeLayer(*backend_, 2, 2));
  std::atomic<int> next{0}, name_wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(store_.Insert("", std::move(layers[next++]), "").ok());
        // Every thread races for the same names: one wins each.
        if (store_.Insert("", std::move(layers[next++]), "n" + std::to_string(i)).ok()) ++name_wins;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(name_wins.load(), kEach);
  std::set<std::string> ids;
  for (const LayerPtr& l : store_.List("")) ids.insert(l->id);
  EXPECT_EQ(static_cast<int>(ids.size()), kThreads * kEach + kEach);
}

TEST_F(LayerStoreTest, TenantsAreIsolated) {
  auto a = store_.Insert("alice", MakeLayer(*backend_, 4, 3), "enc");
  auto b = store_.Insert("bob", MakeLayer(*backend_, 2, 2), "enc");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(store_.FindByName("alice", "enc").value()->id, (*a)->id);
  EXPECT_EQ(store_.FindByName("bob", "enc").value()->id, (*b)->id);
  auto cross = store_.FindById("bob", (*a)->id);
  EXPECT_EQ(cross.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(cross.status().message(), "no layer with id '" + (*a)->id + "'");
  EXPECT_EQ(store_.EraseById("bob", (*a)->id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.List("alice").size(), 1u);
  EXPECT_EQ(store_.List("").size(), 0u);
  EXPECT_EQ(store_.ListAll().size(), 2u);
  EXPECT_EQ((*a)->tenant, "alice");
}

}  // namespace
}  // namespace sparsed::server
