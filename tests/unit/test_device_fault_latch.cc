// Device faults (kernels/cuda/cuda_check.h, device_fault_latch.h): which CUDA
// errors mark the device as failed, the status they become, and the latch
// that makes every later op fail at once naming the device and the first
// fault. Host only: no CUDA call but cudaGetErrorName/String.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "cuda_check.h"
#include "device_fault_latch.h"

namespace sparsed::cuda {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(CudaStatusTest, FaultsBecomeUnavailableAndOthersKeepTheirCodes) {
  for (cudaError_t e : {cudaErrorIllegalAddress, cudaErrorLaunchFailure, cudaErrorECCUncorrectable,
                        cudaErrorMisalignedAddress}) {
    const absl::Status s = CudaStatus(e, "spmm launch");
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << cudaGetErrorName(e);
    EXPECT_TRUE(IsDeviceFaultStatus(s));
    EXPECT_THAT(std::string(s.message()), HasSubstr("spmm launch failed"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(cudaGetErrorName(e)));
    EXPECT_THAT(std::string(s.message()), HasSubstr("restart the daemon"));
  }
  const absl::Status invalid = CudaStatus(cudaErrorInvalidValue, "copy");
  EXPECT_EQ(invalid.code(), absl::StatusCode::kInternal);
  EXPECT_FALSE(IsDeviceFaultStatus(invalid));
  const absl::Status oom = CudaStatus(cudaErrorMemoryAllocation, "alloc");
  EXPECT_EQ(oom.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsDeviceFaultStatus(oom));
  EXPECT_TRUE(CudaStatus(cudaSuccess, "x").ok());
  // A status made elsewhere with the same code is not a device fault.
  EXPECT_FALSE(IsDeviceFaultStatus(absl::UnavailableError("busy")));
}

TEST(DeviceFaultLatchTest, KeepsTheFirstFaultAndIgnoresOtherErrors) {
  DeviceFaultLatch latch("cuda:3");
  EXPECT_TRUE(latch.Check().ok());
  latch.Note(absl::OkStatus());
  latch.Note(absl::InvalidArgumentError("b.shape[0] = 7"));
  latch.Note(CudaStatus(cudaErrorMemoryAllocation, "alloc"));
  EXPECT_TRUE(latch.Check().ok());

  latch.Note(CudaStatus(cudaErrorIllegalAddress, "spmm launch"));
  latch.Note(CudaStatus(cudaErrorECCUncorrectable, "later op"));
  const absl::Status s = latch.Check();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsDeviceFaultStatus(s));
  const std::string msg(s.message());
  EXPECT_THAT(msg, HasSubstr("device cuda:3 has failed"));
  EXPECT_THAT(msg, HasSubstr("cudaErrorIllegalAddress"));
  EXPECT_THAT(msg, HasSubstr("spmm launch"));
  EXPECT_THAT(msg, Not(HasSubstr("cudaErrorECCUncorrectable")));
  EXPECT_THAT(msg, HasSubstr("unavailable until the daemon restarts"));
}

TEST(DeviceFaultLatchTest, OneFaultWinsAmongThreads) {
  DeviceFaultLatch latch("cuda:0");
  std::vector<std::thread> threads;
  const cudaError_t faults[] = {cudaErrorIllegalAddress, cudaErrorLaunchFailure,
                                cudaErrorECCUncorrectable, cudaErrorMisalignedAddress};
  for (cudaError_t e : faults) {
    threads.emplace_back([&latch, e] {
      for (int i = 0; i < 1000; ++i) latch.Note(CudaStatus(e, "op"));
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string first(latch.Check().message());
  int named = 0;
  for (cudaError_t e : faults) named += first.find(cudaGetErrorName(e)) != std::string::npos;
  EXPECT_EQ(named, 1) << first;
  EXPECT_EQ(std::string(latch.Check().message()), first);  // stays the same
}

}  // namespace
}  // namespace sparsed::cuda
