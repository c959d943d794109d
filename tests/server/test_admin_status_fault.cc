// Admin.GetStatus with a backend whose device has faulted (Backend::Health
// not OK): the active device carries the fault, the others do not, and a
// healthy backend reports none. The backend is the CPU backend behind a
// wrapper that answers Health() as the test sets it (a real GPU fault cannot
// be provoked on demand).
#include <gmock/gmock.h>
#include <grpcpp/server_context.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "server/admin_service.h"
#include "sparsed/backend.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

// Everything from `inner`, but Health() from `health`.
class HealthOverride final : public Backend {
 public:
  HealthOverride(std::unique_ptr<Backend> inner, const absl::Status* health)
      : inner_(std::move(inner)), health_(health) {}
  std::string_view name() const override { return inner_->name(); }
  absl::Status Health() const override { return *health_; }
  Device device() const override { return inner_->device(); }
  absl::StatusOr<Tensor> Spmm(const SpmmArgs& a) override { return inner_->Spmm(a); }
  absl::StatusOr<Tensor> Convert(const Tensor& t, Format to, const ConvertOptions& o) override {
    return inner_->Convert(t, to, o);
  }
  absl::StatusOr<Tensor> Transpose(const Tensor& t) override { return inner_->Transpose(t); }
  absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& o) override {
    return inner_->Prune(t, o);
  }
  absl::StatusOr<Tensor> Sddmm(const SddmmArgs& a) override { return inner_->Sddmm(a); }
  absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& a) override {
    return inner_->DenseMatmul(a);
  }
  absl::Status OptimizerUpdate(const OptimizerUpdateArgs& a) override {
    return inner_->OptimizerUpdate(a);
  }
  absl::StatusOr<TopKResult> TopK(const Tensor& s, int64_t k, TopKOrder o) override {
    return inner_->TopK(s, k, o);
  }
  absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y) override {
    return inner_->Axpby(a, x, b, y);
  }
  absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y) override {
    return inner_->ReluBackward(dy, y);
  }
  absl::StatusOr<Tensor> ColumnSums(const Tensor& x) override { return inner_->ColumnSums(x); }
  absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin) override {
    return inner_->GrowthScores(tile, pattern, row_begin);
  }
  absl::StatusOr<Tensor> GatherOrZero(const Tensor& src,
                                      const std::vector<int64_t>& index) override {
    return inner_->GatherOrZero(src, index);
  }

 private:
  std::unique_ptr<Backend> inner_;
  const absl::Status* health_;
};

TEST(AdminStatusFaultTest, TheActiveDeviceCarriesTheBackendsFault) {
  absl::Status health = absl::OkStatus();
  ServiceContext ctx;
  ctx.backend = std::make_unique<HealthOverride>(MakeCpuBackend(1), &health);
  AdminService admin(ctx);

  auto status_now = [&] {
    grpc::ServerContext call;
    v1::StatusRequest request;
    v1::StatusResponse response;
    const grpc::Status s = admin.GetStatus(&call, &request, &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response;
  };

  v1::StatusResponse healthy = status_now();
  ASSERT_GT(healthy.devices_size(), 0);
  for (const v1::DeviceInfo& d : healthy.devices()) EXPECT_EQ(d.fault(), "") << d.name();

  health = absl::UnavailableError(
      "device cpu has failed and computes nothing more (spmm launch failed: "
      "cudaErrorIllegalAddress)");
  v1::StatusResponse failed = status_now();
  int with_fault = 0;
  for (const v1::DeviceInfo& d : failed.devices()) {
    if (d.active()) {
      EXPECT_THAT(d.fault(), HasSubstr("cudaErrorIllegalAddress")) << d.name();
      EXPECT_THAT(d.fault(), HasSubstr("has failed")) << d.name();
    } else {
      EXPECT_EQ(d.fault(), "") << d.name();
    }
    with_fault += !d.fault().empty();
  }
  EXPECT_EQ(with_fault, 1);
}

}  // namespace
}  // namespace sparsed::server
