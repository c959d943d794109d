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

#include "../unit/forwarding_backend.h"
#include "server/admin_service.h"
#include "sparsed/backend.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;

// The CPU backend, but Health() from `health`.
class HealthOverride final : public test::ForwardingBackend {
 public:
  explicit HealthOverride(const absl::Status* health) : health_(health) {}
  absl::Status Health() const override { return *health_; }

 private:
  const absl::Status* health_;
};

TEST(AdminStatusFaultTest, TheActiveDeviceCarriesTheBackendsFault) {
  absl::Status health = absl::OkStatus();
  ServiceContext ctx;
  ctx.backend = std::make_unique<HealthOverride>(&health);
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
