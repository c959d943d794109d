// Admin.ListKernels / ClearKernels / WarmKernels and the kernel cache
// metrics through the real daemon on the CPU backend (which compiles nothing
// at run time).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include "daemon_process.h"
#include "sparsed/client/client.h"

namespace sparsed {
namespace {

using client::Client;
using testing::DaemonProcess;
using ::testing::HasSubstr;

class KernelAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::TestDevice() != "cpu") GTEST_SKIP() << "these expectations are the CPU backend's";
    auto d = DaemonProcess::Start();
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::make_unique<DaemonProcess>(std::move(*d));
    auto c = Client::Connect(daemon_->grpc_address(), {.connect_timeout_seconds = 10});
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }
  void TearDown() override {
    client_.reset();
    if (daemon_ && daemon_->pid() > 0) {
      auto status = daemon_->Stop(SIGTERM);
      ASSERT_TRUE(status.ok()) << status.status();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    }
  }
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
};

TEST_F(KernelAdminTest, ListIsEmptyAndClearRemovesNothing) {
  absl::StatusOr<v1::ListKernelsResponse> list = client_->ListKernels();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->entries_size(), 0);
  EXPECT_EQ(list->cache_dir(), "");
  EXPECT_EQ(list->stats().hits(), 0);
  EXPECT_EQ(list->stats().misses(), 0);
  EXPECT_EQ(list->stats().compiles(), 0);
  EXPECT_EQ(list->stats().entries(), 0);
  EXPECT_EQ(list->stats().bytes_on_disk(), 0);
  absl::StatusOr<int64_t> removed = client_->ClearKernels();
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 0);
}

TEST_F(KernelAdminTest, WarmOnTheCpuBackendIsAFailedPrecondition) {
  const std::string specs =
      R"({"kernels": [{"kernel": "bsr_spmm_tc", "params": {"block": 16, "dtype": "f16"}}]})";
  absl::StatusOr<v1::WarmKernelsResponse> r = client_->WarmKernels(specs);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cpu backend"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("compiles no kernels at run time"));
}

TEST_F(KernelAdminTest, MalformedSpecsAreInvalidNamingTheField) {
  struct Case {
    std::string json, field;
  };
  const std::vector<Case> cases = {
      {R"({"kernels": [{"kernel": ""}]})", "kernels[0].kernel"},
      {R"({"kernels": [{"kernel": "k"}, {"kernel": "k", "params": {"tile": [1]}}]})",
       "kernels[1].params.tile"},
      {R"({"kernels": [{"kernel": "k", "colour": 1}]})", "kernels[0].colour"},
      {R"({"kernel": []})", "kernels"},
      {R"({"kernels": [)", "not valid JSON"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<v1::WarmKernelsResponse> r = client_->WarmKernels(c.json);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.json << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.field)) << c.json;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("nothing compiled")) << c.json;
  }
  EXPECT_TRUE(client_->ListKernels().ok());  // still serving
}

TEST_F(KernelAdminTest, KernelCacheMetricsAreExposed) {
  const std::string& addr = daemon_->metrics_address();
  httplib::Client http(addr.substr(0, addr.rfind(':')),
                       std::stoi(addr.substr(addr.rfind(':') + 1)));
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res) << "GET /metrics failed";
  ASSERT_EQ(res->status, 200);
  for (const char* series :
       {"sparsed_kernel_cache_hits_total 0\n", "sparsed_kernel_cache_misses_total 0\n",
        "sparsed_kernel_compiles_total 0\n", "sparsed_kernel_compile_errors_total 0\n",
        "sparsed_kernel_cache_bytes 0\n", "sparsed_kernel_cache_entries 0\n",
        "# TYPE sparsed_kernel_compile_seconds histogram\n",
        "sparsed_kernel_compile_seconds_bucket{le=\"0.05\"} 0\n",
        "sparsed_kernel_compile_seconds_bucket{le=\"60\"} 0\n",
        "sparsed_kernel_compile_seconds_count 0\n"}) {
    EXPECT_THAT(res->body, HasSubstr(series));
  }
}

}  // namespace
}  // namespace sparsed
