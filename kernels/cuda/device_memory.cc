// Device memory from one cudaMallocAsync pool per device, allocated and freed
// on a dedicated stream per device.
#include "sparsed/device_memory.h"

#include <cuda_runtime.h>

#include <cstring>
#include <mutex>
#include <vector>

#include "cuda_check.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

struct DevicePool {
  cudaStream_t stream = nullptr;  // allocation/free stream
  cudaMemPool_t pool = nullptr;
};

// Per-device pool state, created on first use and kept for the process.
absl::StatusOr<DevicePool*> PoolFor(int device) {
  static std::mutex mu;
  static std::vector<DevicePool*> pools;  // leaked on purpose: used during static destruction
  std::lock_guard<std::mutex> lock(mu);
  int count = 0;
  CUDA_RETURN_IF_ERROR(cudaGetDeviceCount(&count), "cudaGetDeviceCount");
  if (device < 0 || device >= count) {
    return absl::InvalidArgumentError(
        StrCat("device cuda:", device, " does not exist (", count, " visible)"));
  }
  if (pools.size() < static_cast<size_t>(count)) pools.resize(count, nullptr);
  if (pools[device] == nullptr) {
    auto p = std::make_unique<DevicePool>();
    CUDA_RETURN_IF_ERROR(cudaSetDevice(device), "cudaSetDevice");
    CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking),
                         "cudaStreamCreate");
    CUDA_RETURN_IF_ERROR(cudaDeviceGetDefaultMemPool(&p->pool, device),
                         "cudaDeviceGetDefaultMemPool");
    // Keep freed memory in the pool instead of returning it at every sync.
    uint64_t threshold = UINT64_MAX;
    CUDA_RETURN_IF_ERROR(
        cudaMemPoolSetAttribute(p->pool, cudaMemPoolAttrReleaseThreshold, &threshold),
        "cudaMemPoolSetAttribute");
    pools[device] = p.release();
  }
  return pools[device];
}

// This thread's StreamOrderScope: the device it is for (-1: none) and its stream.
struct StreamOrder {
  int device = -1;
  cudaStream_t stream = nullptr;
};
thread_local StreamOrder tls_order;

// The stream this thread orders `device`'s memory work on, and whether it
// is a scope's (no host synchronisation needed for allocation and free).
cudaStream_t OrderStream(int device, const DevicePool& p, bool* scoped) {
  *scoped = tls_order.device == device;
  return *scoped ? tls_order.stream : p.stream;
}

}  // namespace

StreamOrderScope::StreamOrderScope(int device, void* stream)
    : prev_device_(tls_order.device), prev_stream_(tls_order.stream) {
  tls_order = {device, static_cast<cudaStream_t>(stream)};
}
StreamOrderScope::~StreamOrderScope() {
  tls_order = {prev_device_, static_cast<cudaStream_t>(prev_stream_)};
}

absl::StatusOr<void*> DeviceAllocate(int device, int64_t bytes) {
  ASSIGN_OR_RETURN(DevicePool * p, PoolFor(device));
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device), "cudaSetDevice");
  void* ptr = nullptr;
  bool scoped = false;
  const cudaStream_t stream = OrderStream(device, *p, &scoped);
  cudaError_t err = cudaMallocAsync(&ptr, static_cast<size_t>(bytes), stream);
  // Outside a scope the memory must be usable on any stream at once.
  if (err == cudaSuccess && !scoped) err = cudaStreamSynchronize(stream);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky; clear it
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return absl::ResourceExhaustedError(StrCat("cuda:", device, " is out of memory allocating ",
                                               bytes, " bytes (", free_b, " of ", total_b,
                                               " bytes free outside sparsed's pool)"));
  }
  CUDA_RETURN_IF_ERROR(err, "cudaMallocAsync");
  return ptr;
}

void DeviceFree(int device, void* ptr) {
  absl::StatusOr<DevicePool*> p = PoolFor(device);
  if (!p.ok() || ptr == nullptr) return;
  cudaSetDevice(device);
  bool scoped = false;
  cudaFreeAsync(ptr, OrderStream(device, **p, &scoped));
}

absl::Status CopyBytes(void* dst, const Device& dst_device, const void* src,
                       const Device& src_device, int64_t bytes) {
  if (bytes == 0) return absl::OkStatus();
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, static_cast<size_t>(bytes));
    return absl::OkStatus();
  }
  const int device = dst_device.is_cpu() ? src_device.index : dst_device.index;
  ASSIGN_OR_RETURN(DevicePool * p, PoolFor(device));
  CUDA_RETURN_IF_ERROR(cudaSetDevice(device), "cudaSetDevice");
  // On the pool's stream, then synchronised: a plain cudaMemcpy from pageable
  // host memory may return before its DMA has landed, and the backends'
  // non-blocking streams do not wait for the legacy stream, so a kernel could
  // read the destination early (seen on an H100). cudaMemcpyDefault infers
  // the direction from the pointers (unified addressing).
  bool scoped = false;
  const cudaStream_t stream = OrderStream(device, *p, &scoped);
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), cudaMemcpyDefault, stream),
      "cudaMemcpyAsync");
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream), "cudaStreamSynchronize(copy)");
  return absl::OkStatus();
}

DevicePoolStats GetDevicePoolStats(int device) {
  DevicePoolStats s;
  absl::StatusOr<DevicePool*> p = PoolFor(device);
  if (!p.ok()) return s;
  uint64_t v = 0;
  if (cudaMemPoolGetAttribute((*p)->pool, cudaMemPoolAttrReservedMemCurrent, &v) == cudaSuccess) {
    s.reserved_bytes = static_cast<int64_t>(v);
  }
  if (cudaMemPoolGetAttribute((*p)->pool, cudaMemPoolAttrUsedMemCurrent, &v) == cudaSuccess) {
    s.used_bytes = static_cast<int64_t>(v);
  }
  return s;
}

}  // namespace sparsed
