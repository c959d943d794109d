// Owned, byte-accounted memory on one device.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "sparsed/device.h"

namespace sparsed {

// Memory this process may use in bytes: physical memory, or the memory
// limit of its control group (a container's `memory.max`) when lower; 0 when
// the system says neither.
int64_t HostMemoryBytes();
// The memory limit of the control group a process is in, read from its
// /proc/<pid>/cgroup text and the cgroup mount: v2 (`0::/path` ->
// <root>/<path>/memory.max) or v1 (`N:memory:/path` ->
// <root>/memory/<path>/memory.limit_in_bytes), falling back to the mount's
// top-level file (inside a container the group is often mounted as the root).
// 0 when there is no limit ("max", or v1's near-2^63 "unlimited") or no file.
int64_t CgroupMemoryLimitBytes(const std::string& proc_cgroup_text, const std::string& root);

// Bytes held per device, with an optional limit. Allocation beyond the limit
// fails with RESOURCE_EXHAUSTED instead of taking the process down.
class MemoryAccount {
 public:
  // The account of a device (one per device, process-wide).
  static MemoryAccount& For(const Device& device);

  int64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  // 0 means unlimited.
  int64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  void set_limit(int64_t bytes) { limit_.store(bytes, std::memory_order_relaxed); }

  // Reserves `bytes` or fails with RESOURCE_EXHAUSTED naming the sizes.
  absl::Status Reserve(int64_t bytes);
  void Release(int64_t bytes);

 private:
  std::atomic<int64_t> in_use_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> limit_{0};
};

// Bytes of working memory a request holds outside any Buffer (host vectors of
// a conversion, a layer's initialisation), charged to a device's account for
// as long as the reservation lives, so memory_limit_bytes bounds them too.
class ScratchReservation {
 public:
  ScratchReservation() = default;
  // RESOURCE_EXHAUSTED naming `what` and the sizes when the account's limit
  // would be exceeded.
  static absl::StatusOr<ScratchReservation> Take(int64_t bytes, const Device& device,
                                                 std::string_view what);
  ScratchReservation(ScratchReservation&& o) noexcept
      : bytes_(std::exchange(o.bytes_, 0)), device_(o.device_) {}
  ScratchReservation& operator=(ScratchReservation&& o) noexcept {
    std::swap(bytes_, o.bytes_);
    std::swap(device_, o.device_);
    return *this;
  }
  ~ScratchReservation() {
    if (bytes_ > 0) MemoryAccount::For(device_).Release(bytes_);
  }

 private:
  int64_t bytes_ = 0;
  Device device_ = Device::Cpu();
};

namespace detail {
// Frees host memory and returns its bytes to the device's MemoryAccount.
struct BufferRelease {
  int64_t bytes = 0;
  Device device;
  void operator()(void* p) const;
};
}  // namespace detail

// A contiguous allocation of `size()` bytes (64-byte aligned on the host).
// Move-only; memory is returned and un-accounted on destruction. Contents of a
// fresh buffer are uninitialised.
class Buffer {
 public:
  Buffer() = default;
  static absl::StatusOr<Buffer> Allocate(int64_t bytes, Device device = Device::Cpu());

  Buffer(Buffer&& o) noexcept
      : ptr_(std::move(o.ptr_)),
        size_(std::exchange(o.size_, 0)),
        device_(o.device_),
        id_(std::exchange(o.id_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    ptr_ = std::move(o.ptr_);
    size_ = std::exchange(o.size_, 0);
    device_ = o.device_;
    id_ = std::exchange(o.id_, 0);
    return *this;
  }

  void* data() { return ptr_.get(); }
  const void* data() const { return ptr_.get(); }
  int64_t size() const { return size_; }
  const Device& device() const { return device_; }
  // Names this allocation for the process's lifetime (never reused, unlike
  // an address; 0 for an empty buffer). Caches of what is derived from a
  // buffer's contents key on it (the CUDA backend's row statistics), which
  // is sound because index components are never rewritten once a tensor is
  // built: every op writes its results into fresh buffers.
  uint64_t id() const { return id_; }

  template <class T>
  T* as() {
    return static_cast<T*>(data());
  }
  template <class T>
  const T* as() const {
    return static_cast<const T*>(data());
  }

 private:
  std::unique_ptr<void, detail::BufferRelease> ptr_;
  int64_t size_ = 0;
  Device device_;
  uint64_t id_ = 0;
};

}  // namespace sparsed
