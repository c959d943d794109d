// Lifetimes of stored tensors: sessions on an explicit clock, what a call's
// metadata resolves to, and the store releasing what outlived its lifetime.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

#include "server/lifetime.h"
#include "server/sessions.h"
#include "server/tensor_store.h"
#include "sparsed/tensor.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;
using Clock = SessionTable::Clock;

Tensor SmallDense() {
  TensorDesc d;
  d.format = Format::kDense;
  d.shape = {2, 2};
  d.dtype = DType::kF32;
  absl::StatusOr<Tensor> t = Tensor::Allocate(d);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

TEST(SessionTableTest, OpenTouchLapseAndClose) {
  SessionTable table(std::chrono::milliseconds(1000));
  const Clock::time_point t0{};
  int ended_streams = 0;
  absl::StatusOr<std::string> a = table.Open(
      "alice", [&] { ++ended_streams; }, t0);
  absl::StatusOr<std::string> b = table.Open(
      "bob", [&] { ++ended_streams; }, t0);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->starts_with("s-"));
  EXPECT_EQ(a->size(), 18u);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(table.Check("alice", *a).ok());
  // Another tenant's session reads exactly like an unknown one.
  const absl::Status other = table.Check("bob", *a);
  const absl::Status unknown = table.Check("bob", "s-0000000000000000");
  EXPECT_EQ(other.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      std::string(other.message()),
      std::string(unknown.message()).replace(unknown.message().find("s-0000000000000000"), 18, *a));
  // alice pings at 0.9 s; at 1.5 s bob's lease (1 s) has lapsed, alice's not.
  EXPECT_TRUE(table.Touch(*a, t0 + std::chrono::milliseconds(900)));
  EXPECT_EQ(table.LapseIdle(t0 + std::chrono::milliseconds(1500)), 1);
  EXPECT_EQ(ended_streams, 1);
  EXPECT_TRUE(table.IsOpen(*a));
  EXPECT_FALSE(table.IsOpen(*b));
  EXPECT_FALSE(table.Touch(*b, t0 + std::chrono::milliseconds(1500)));
  EXPECT_EQ(table.lapsed_total(), 1);
  // Closing ends it without calling end_stream (the stream is already over).
  table.Close(*a);
  table.Close(*a);
  EXPECT_FALSE(table.IsOpen(*a));
  EXPECT_EQ(ended_streams, 1);
  EXPECT_EQ(table.open(), 0);
}

TEST(SessionTableTest, EndAllCallsEveryEndStream) {
  SessionTable table(std::chrono::milliseconds(1000));
  int ended = 0;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(table.Open("t", [&] { ++ended; }).ok());
  table.EndAll();
  EXPECT_EQ(ended, 3);
  EXPECT_EQ(table.open(), 0);
}

TEST(SessionTableTest, ATenantMayHoldABoundedNumber) {
  SessionTable table(std::chrono::milliseconds(1000));
  for (int i = 0; i < SessionTable::kMaxPerTenant; ++i) ASSERT_TRUE(table.Open("t", {}).ok());
  absl::StatusOr<std::string> more = table.Open("t", {});
  EXPECT_EQ(more.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(more.status().message(), HasSubstr("1024"));
  EXPECT_TRUE(table.Open("other", {}).ok());
}

TEST(LifetimeTest, ResolvedFromTheCallAndTheName) {
  CallLifetime none;
  EXPECT_EQ(ResolveLifetime(none, "", 1000).session_id, "");
  EXPECT_EQ(ResolveLifetime(none, "", 1000).expires_unix_ms, 0);
  CallLifetime in_session{.session_id = "s-1"};
  // Unnamed results belong to the session by default, named ones do not.
  EXPECT_EQ(ResolveLifetime(in_session, "", 1000).session_id, "s-1");
  EXPECT_EQ(ResolveLifetime(in_session, "kept", 1000).session_id, "");
  in_session.mode = CallLifetime::Mode::kSession;
  EXPECT_EQ(ResolveLifetime(in_session, "kept", 1000).session_id, "s-1");
  in_session.mode = CallLifetime::Mode::kPersistent;
  EXPECT_EQ(ResolveLifetime(in_session, "", 1000).session_id, "");
  CallLifetime ttl{.ttl_ms = 5000};
  EXPECT_EQ(ResolveLifetime(ttl, "x", 1000).expires_unix_ms, 6000);
}

TEST(TensorStoreLifetimeTest, ReleasesExpiredAndEndedSessionsOnly) {
  TensorStore store;
  auto keep = store.Insert("", SmallDense(), "keep", {});
  auto expiring = store.Insert("", SmallDense(), "", {}, Lifetime{.expires_unix_ms = 5000});
  auto later = store.Insert("", SmallDense(), "", {}, Lifetime{.expires_unix_ms = 9000});
  auto of_open = store.Insert("", SmallDense(), "", {}, Lifetime{.session_id = "s-open"});
  auto of_ended = store.Insert("t", SmallDense(), "n", {}, Lifetime{.session_id = "s-gone"});
  ASSERT_TRUE(keep.ok() && expiring.ok() && later.ok() && of_open.ok() && of_ended.ok());
  EXPECT_EQ(store.mortal(), 4);
  auto open = [](const std::string& id) { return id == "s-open"; };
  std::vector<TensorStore::Released> gone = store.ReleaseEnded(5000, open);
  std::set<std::string> ids;
  for (const auto& r : gone) {
    ids.insert(r.tensor->id);
    EXPECT_STREQ(r.reason, r.tensor->id == (*expiring)->id ? "ttl" : "session");
  }
  EXPECT_EQ(ids, (std::set<std::string>{(*expiring)->id, (*of_ended)->id}));
  EXPECT_EQ(store.size(), 3);
  EXPECT_EQ(store.mortal(), 2);
  EXPECT_FALSE(store.FindById("t", (*of_ended)->id).ok());
  // The name of a released tensor is free again.
  EXPECT_TRUE(store.CheckNameFree("t", "n").ok());
  EXPECT_TRUE(store.ReleaseEnded(5000, open).empty());
  EXPECT_EQ(store.ReleaseEnded(9000, open).size(), 1u);
  EXPECT_EQ(store.ReleaseEnded(9000, [](const std::string&) { return false; }).size(), 1u);
  EXPECT_EQ(store.mortal(), 0);
  EXPECT_TRUE(store.FindByName("", "keep").ok());
  // InsertAll keeps each tensor's lifetime too (graph outputs).
  std::vector<TensorStore::NewTensor> batch;
  batch.push_back({SmallDense(), "a", {}, "", Lifetime{.session_id = "s-x"}});
  batch.push_back({SmallDense(), "b", {}, "", Lifetime{.expires_unix_ms = 7}});
  auto both = store.InsertAll(std::move(batch));
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ((*both)[0]->lifetime.session_id, "s-x");
  EXPECT_EQ((*both)[1]->lifetime.expires_unix_ms, 7);
  EXPECT_EQ(store.mortal(), 2);
  EXPECT_EQ(store.ReleaseEnded(8, [](const std::string&) { return false; }).size(), 2u);
}

}  // namespace
}  // namespace sparsed::server
