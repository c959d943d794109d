// Registered ranges of POSIX shared-memory objects (SharedMemory service,
// proto/sparsed/v1/shared_memory.proto). The daemon opens each object when it
// is registered and keeps its own descriptor; every transfer goes through
// pread/pwrite on that descriptor, never through a mapping, so a client that
// unlinks, shrinks or exits cannot make the daemon touch freed memory (a
// shrunk object is FAILED_PRECONDITION at the next transfer, not SIGBUS).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"

namespace sparsed::server {

class SharedRegion {
 public:
  SharedRegion(std::string tenant, std::string session_id, std::string name, std::string key,
               int fd, bool writable, int64_t offset, int64_t byte_size);
  ~SharedRegion();  // closes the descriptor
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;

  const std::string& tenant() const { return tenant_; }
  const std::string& session_id() const { return session_id_; }
  const std::string& name() const { return name_; }
  const std::string& key() const { return key_; }
  int64_t offset() const { return offset_; }
  int64_t byte_size() const { return byte_size_; }

  // INVALID_ARGUMENT naming `field` unless [offset, offset + bytes) lies in
  // the region.
  absl::Status CheckSlice(int64_t offset, int64_t bytes, std::string_view field) const;
  // Copies `bytes` from the region's `offset` to host memory `dst` (or from
  // `src` to it). FAILED_PRECONDITION when the object is now too small;
  // PERMISSION_DENIED writing an object the daemon could open read-only.
  absl::Status Read(int64_t offset, int64_t bytes, void* dst) const;
  absl::Status Write(int64_t offset, int64_t bytes, const void* src) const;

 private:
  absl::Status CheckObjectStillHolds(int64_t offset, int64_t bytes) const;
  const std::string tenant_, session_id_, name_, key_;
  const int fd_;
  const bool writable_;
  const int64_t offset_, byte_size_;
};

using RegionPtr = std::shared_ptr<const SharedRegion>;

class SharedRegions {
 public:
  // Regions one tenant may hold at once (each holds a descriptor).
  static constexpr int kMaxPerTenant = 256;

  // Opens `key` and registers [offset, offset + byte_size) of it as `name` of
  // (tenant, session_id). INVALID_ARGUMENT for a malformed name, key or
  // range (naming the field and value); NOT_FOUND for no such object;
  // PERMISSION_DENIED when the daemon may not open it; ALREADY_EXISTS for a
  // name the owner uses; RESOURCE_EXHAUSTED past kMaxPerTenant.
  absl::StatusOr<RegionPtr> Register(const std::string& tenant, const std::string& session_id,
                                     const std::string& name, const std::string& key,
                                     int64_t offset, int64_t byte_size);
  // The caller's region `name`: one registered in its session first, then
  // one registered outside any session. NOT_FOUND otherwise (another
  // tenant's or another session's region reads exactly like an unknown one).
  absl::StatusOr<RegionPtr> Find(const std::string& tenant, const std::string& session_id,
                                 const std::string& name) const;
  // Removes it (a transfer in flight keeps its descriptor until it ends).
  absl::StatusOr<RegionPtr> Unregister(const std::string& tenant, const std::string& session_id,
                                       const std::string& name);
  // The regions a caller sees, by name.
  std::vector<RegionPtr> List(const std::string& tenant, const std::string& session_id) const;
  // Removes the regions of sessions for which `session_open` is false.
  int ReleaseEnded(const std::function<bool(const std::string&)>& session_open);
  int64_t size() const;

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // tenant, session, name
  mutable std::mutex mu_;
  std::map<Key, RegionPtr> regions_;       // guarded by mu_
  std::map<std::string, int> per_tenant_;  // guarded by mu_
};

}  // namespace sparsed::server
