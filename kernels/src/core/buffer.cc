#include "sparsed/buffer.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "sparsed/device_memory.h"
#include "sparsed/str_cat.h"

namespace sparsed {

MemoryAccount& MemoryAccount::For(const Device& device) {
  // One account for the host and one per CUDA ordinal; trivially destructible,
  // so buffers freed during static destruction still find theirs.
  constexpr int kMaxCuda = 64;
  static MemoryAccount accounts[1 + kMaxCuda];
  if (device.is_cpu()) return accounts[0];
  return accounts[1 + (device.index % kMaxCuda)];
}

absl::Status MemoryAccount::Reserve(int64_t bytes) {
  int64_t cur = in_use_.load(std::memory_order_relaxed);
  while (true) {
    const int64_t lim = limit();
    if (lim > 0 && cur + bytes > lim) {
      return absl::ResourceExhaustedError(StrCat("cannot allocate ", bytes, " bytes: ", cur,
                                                 " of the ", lim, "-byte memory limit are in use"));
    }
    if (in_use_.compare_exchange_weak(cur, cur + bytes, std::memory_order_relaxed)) break;
  }
  int64_t peak = peak_.load(std::memory_order_relaxed);
  while (cur + bytes > peak &&
         !peak_.compare_exchange_weak(peak, cur + bytes, std::memory_order_relaxed)) {
  }
  return absl::OkStatus();
}

absl::StatusOr<ScratchReservation> ScratchReservation::Take(int64_t bytes, const Device& device,
                                                            std::string_view what) {
  ScratchReservation r;
  if (bytes <= 0) return r;
  if (absl::Status s = MemoryAccount::For(device).Reserve(bytes); !s.ok()) {
    return absl::Status(s.code(), StrCat(what, ": ", s.message()));
  }
  r.bytes_ = bytes;
  r.device_ = device;
  return r;
}

void MemoryAccount::Release(int64_t bytes) { in_use_.fetch_sub(bytes, std::memory_order_relaxed); }

void detail::BufferRelease::operator()(void* p) const {
  if (device.is_cpu()) {
    std::free(p);
  } else {
    DeviceFree(device.index, p);
  }
  MemoryAccount::For(device).Release(bytes);
}

absl::StatusOr<Buffer> Buffer::Allocate(int64_t bytes, Device device) {
  if (bytes < 0) return absl::InvalidArgumentError(StrCat("negative buffer size ", bytes));
  Buffer buf;
  buf.device_ = device;
  if (bytes == 0) return buf;
  static std::atomic<uint64_t> next_id{1};
  buf.id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  MemoryAccount& account = MemoryAccount::For(device);
  if (absl::Status s = account.Reserve(bytes); !s.ok()) return s;
  if (!device.is_cpu()) {
    absl::StatusOr<void*> p = DeviceAllocate(device.index, bytes);
    if (!p.ok()) {
      account.Release(bytes);
      return p.status();
    }
    buf.ptr_ =
        std::unique_ptr<void, detail::BufferRelease>(*p, detail::BufferRelease{bytes, device});
    buf.size_ = bytes;
    return buf;
  }
  constexpr int64_t kAlign = 64;
  const int64_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, static_cast<size_t>(rounded));
  if (p == nullptr) {
    account.Release(bytes);
    return absl::ResourceExhaustedError(StrCat("out of host memory allocating ", bytes, " bytes"));
  }
  buf.ptr_ = std::unique_ptr<void, detail::BufferRelease>(p, detail::BufferRelease{bytes, device});
  buf.size_ = bytes;
  return buf;
}

}  // namespace sparsed
