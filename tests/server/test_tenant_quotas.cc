// Per-tenant quotas: the request-rate bucket on an explicit clock, compute
// concurrency slots, and the tensor/byte quotas of the store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "server/tenant_quotas.h"
#include "server/tensor_store.h"
#include "sparsed/tensor.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;
using Clock = TenantQuotas::Clock;

TEST(TenantQuotasTest, RequestRateIsABucketPerTenant) {
  TenantQuotas q(TenantLimits{.max_requests_per_second = 4});
  const Clock::time_point t0{};
  // A burst of one second's worth, then refusals until time refills it.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.AdmitRequest("alice", t0).ok()) << i;
  const absl::Status refused = q.AdmitRequest("alice", t0);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.message(), HasSubstr("tenant 'alice'"));
  EXPECT_THAT(refused.message(), HasSubstr("tenant_max_requests_per_second = 4"));
  // Other tenants and tenant "" are not affected.
  EXPECT_TRUE(q.AdmitRequest("bob", t0).ok());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(q.AdmitRequest("", t0).ok());
  // 250 ms later one more call fits, not two.
  const Clock::time_point t1 = t0 + std::chrono::milliseconds(250);
  EXPECT_TRUE(q.AdmitRequest("alice", t1).ok());
  EXPECT_FALSE(q.AdmitRequest("alice", t1).ok());
  // After a long pause the bucket holds at most one second's worth.
  const Clock::time_point t2 = t1 + std::chrono::seconds(60);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.AdmitRequest("alice", t2).ok()) << i;
  EXPECT_FALSE(q.AdmitRequest("alice", t2).ok());
  EXPECT_EQ((q.Refusals().at({"alice", "tenant_max_requests_per_second"})), 3);
}

TEST(TenantQuotasTest, UnlimitedByDefault) {
  TenantQuotas q;
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(q.AdmitRequest("alice", Clock::time_point{}).ok());
  std::vector<TenantQuotas::Slot> tickets(100);
  for (auto& t : tickets) ASSERT_TRUE(q.AdmitCompute("alice", &t).ok());
  EXPECT_TRUE(q.Refusals().empty());
}

TEST(TenantQuotasTest, SlotsBoundConcurrencyAndAreReturned) {
  TenantQuotas q(TenantLimits{.max_concurrent_compute = 2});
  TenantQuotas::Slot a, b, c;
  EXPECT_TRUE(q.AdmitCompute("alice", &a).ok());
  EXPECT_TRUE(q.AdmitCompute("alice", &b).ok());
  const absl::Status third = q.AdmitCompute("alice", &c);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.message(), HasSubstr("tenant_max_concurrent_compute = 2"));
  EXPECT_TRUE(q.AdmitCompute("bob", &c).ok());  // another tenant
  {
    TenantQuotas::Slot moved = std::move(a);  // still one slot
    TenantQuotas::Slot d;
    EXPECT_FALSE(q.AdmitCompute("alice", &d).ok());
  }  // `moved` returns its slot
  TenantQuotas::Slot e;
  EXPECT_TRUE(q.AdmitCompute("alice", &e).ok());
  EXPECT_EQ((q.Refusals().at({"alice", "tenant_max_concurrent_compute"})), 2);
}

TEST(TenantQuotasTest, ConcurrentCallsAreBoundedApartFromCompute) {
  TenantQuotas q(TenantLimits{.max_concurrent_compute = 1, .max_concurrent_calls = 2});
  TenantQuotas::Slot call1, call2, call3, compute;
  EXPECT_TRUE(q.AdmitCall("alice", &call1).ok());
  EXPECT_TRUE(q.AdmitCall("alice", &call2).ok());
  const absl::Status third = q.AdmitCall("alice", &call3);
  EXPECT_THAT(third.message(), HasSubstr("tenant_max_concurrent_calls = 2"));
  EXPECT_TRUE(q.AdmitCompute("alice", &compute).ok());  // a separate count
  EXPECT_TRUE(q.AdmitCall("bob", &call3).ok());
  call1 = TenantQuotas::Slot();  // returns alice's slot
  TenantQuotas::Slot again;
  EXPECT_TRUE(q.AdmitCall("alice", &again).ok());
}

Tensor Dense(int64_t n) {
  auto t = Tensor::Allocate(TensorDesc{Format::kDense, DType::kF32, DType::kI32, {n}, 0});
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

TEST(TenantQuotasTest, StoreRefusesTensorsAndBytesPastTheQuota) {
  TenantQuotas refusals;
  TensorStore store;
  store.SetTenantLimits(/*max_tensors=*/3, /*max_bytes=*/4 * 100, &refusals);
  // 100 floats = 400 bytes: the byte quota.
  ASSERT_TRUE(store.Insert("alice", Dense(60), "", {}).ok());
  const auto too_big = store.Insert("alice", Dense(41), "", {});
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_big.status().message(), HasSubstr("tenant_max_bytes = 400"));
  EXPECT_THAT(too_big.status().message(), HasSubstr("it holds 240 bytes"));
  EXPECT_EQ(store.CheckRoom("alice", 164).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(store.CheckRoom("alice", 160).ok());
  ASSERT_TRUE(store.Insert("alice", Dense(40), "", {}).ok());  // exactly 400
  // The tensor quota.
  ASSERT_TRUE(store.Insert("bob", Dense(1), "", {}).ok());
  ASSERT_TRUE(store.Insert("bob", Dense(1), "", {}).ok());
  auto third = store.Insert("bob", Dense(1), "x", {});
  ASSERT_TRUE(third.ok());
  const auto fourth = store.Insert("bob", Dense(1), "", {});
  EXPECT_THAT(fourth.status().message(), HasSubstr("tenant_max_tensors = 3"));
  // Deleting gives the room back; tenant "" has no quota.
  ASSERT_TRUE(store.EraseById("bob", (*third)->id).ok());
  EXPECT_TRUE(store.Insert("bob", Dense(1), "", {}).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store.Insert("", Dense(1000), "", {}).ok());
  // A batch is checked whole.
  std::vector<TensorStore::NewTensor> batch;
  batch.push_back({Dense(1), "", {}, "carol"});
  batch.push_back({Dense(1), "", {}, "carol"});
  batch.push_back({Dense(1), "", {}, "carol"});
  batch.push_back({Dense(1), "", {}, "carol"});
  EXPECT_EQ(store.InsertAll(std::move(batch)).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(store.List("carol", "").empty());
  const auto usage = store.TenantUsage();
  EXPECT_EQ(usage.at("alice"), (std::pair<int64_t, int64_t>{2, 400}));
  EXPECT_EQ(usage.at("bob").first, 3);
  EXPECT_FALSE(usage.contains(""));
  EXPECT_EQ((refusals.Refusals().at({"alice", "tenant_max_bytes"})), 2);
  EXPECT_EQ((refusals.Refusals().at({"bob", "tenant_max_tensors"})), 1);
}

}  // namespace
}  // namespace sparsed::server
