#include "server/shm_regions.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

absl::Status CheckChars(std::string_view value, size_t max, std::string_view field) {
  if (value.empty() || value.size() > max) {
    return absl::InvalidArgumentError(
        StrCat(field, " is ", value.size(), " characters long (1 to ", max, ")"));
  }
  for (char c : value) {
    if (!IsNameChar(c)) {
      return absl::InvalidArgumentError(StrCat(field, " = '", value.substr(0, 64),
                                               "' may hold only letters, digits, '.', '_', '-'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

SharedRegion::SharedRegion(std::string tenant, std::string session_id, std::string name,
                           std::string key, int fd, bool writable, int64_t offset,
                           int64_t byte_size)
    : tenant_(std::move(tenant)),
      session_id_(std::move(session_id)),
      name_(std::move(name)),
      key_(std::move(key)),
      fd_(fd),
      writable_(writable),
      offset_(offset),
      byte_size_(byte_size) {}

SharedRegion::~SharedRegion() { ::close(fd_); }

absl::Status SharedRegion::CheckSlice(int64_t offset, int64_t bytes, std::string_view field) const {
  if (offset < 0 || bytes < 0 || offset > byte_size_ || bytes > byte_size_ - offset) {
    return absl::InvalidArgumentError(StrCat(field, ": bytes [", offset, ", ", offset, " + ", bytes,
                                             ") are not inside region '", name_, "' of ",
                                             byte_size_, " bytes"));
  }
  return absl::OkStatus();
}

absl::Status SharedRegion::CheckObjectStillHolds(int64_t offset, int64_t bytes) const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    return absl::InternalError(
        StrCat("fstat of shared-memory object '", key_, "': ", std::strerror(errno)));
  }
  if (offset_ + offset + bytes > st.st_size) {
    return absl::FailedPreconditionError(
        StrCat("shared-memory object '", key_, "' is now ", st.st_size, " bytes; region '", name_,
               "' needs ", offset_ + offset + bytes, " (was it truncated? register it again)"));
  }
  return absl::OkStatus();
}

absl::Status SharedRegion::Read(int64_t offset, int64_t bytes, void* dst) const {
  RETURN_IF_ERROR(CheckSlice(offset, bytes, "read"));
  RETURN_IF_ERROR(CheckObjectStillHolds(offset, bytes));
  char* out = static_cast<char*>(dst);
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pread(fd_, out + done, static_cast<size_t>(bytes - done),
                              static_cast<off_t>(offset_ + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::InternalError(
          StrCat("reading shared-memory object '", key_, "': ", std::strerror(errno)));
    }
    if (n == 0) return CheckObjectStillHolds(offset, bytes);  // shrunk meanwhile
    done += n;
  }
  return absl::OkStatus();
}

absl::Status SharedRegion::Write(int64_t offset, int64_t bytes, const void* src) const {
  RETURN_IF_ERROR(CheckSlice(offset, bytes, "write"));
  if (!writable_) {
    return absl::PermissionDeniedError(StrCat("shared-memory object '", key_,
                                              "' could be opened only for reading; region '", name_,
                                              "' cannot receive a download"));
  }
  RETURN_IF_ERROR(CheckObjectStillHolds(offset, bytes));
  const char* in = static_cast<const char*>(src);
  int64_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pwrite(fd_, in + done, static_cast<size_t>(bytes - done),
                               static_cast<off_t>(offset_ + offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InternalError(StrCat("writing shared-memory object '", key_,
                                        "': ", n < 0 ? std::strerror(errno) : "no progress"));
    }
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<RegionPtr> SharedRegions::Register(const std::string& tenant,
                                                  const std::string& session_id,
                                                  const std::string& name, const std::string& key,
                                                  int64_t offset, int64_t byte_size) {
  RETURN_IF_ERROR(CheckChars(name, 64, "name"));
  if (key.empty() || key[0] != '/') {
    return absl::InvalidArgumentError(
        StrCat("key = '", key.substr(0, 64), "' must be a shm_open name: '/' then a name"));
  }
  RETURN_IF_ERROR(CheckChars(std::string_view(key).substr(1), 200, "key"));
  if (key == "/." || key == "/..") {
    return absl::InvalidArgumentError(StrCat("key = '", key, "' is not an object name"));
  }
  if (offset < 0) return absl::InvalidArgumentError(StrCat("offset = ", offset, " is negative"));
  if (byte_size <= 0) {
    return absl::InvalidArgumentError(StrCat("byte_size = ", byte_size, " must be positive"));
  }
  bool writable = true;
  int fd = ::shm_open(key.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0 && errno == EACCES) {
    writable = false;
    fd = ::shm_open(key.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::NotFoundError(StrCat("no shared-memory object '", key,
                                        "' on the daemon's host (create it with shm_open first; "
                                        "the client must run on the same host)"));
    }
    if (err == EACCES) {
      return absl::PermissionDeniedError(
          StrCat("the daemon may not open shared-memory object '", key, "'"));
    }
    return absl::InvalidArgumentError(
        StrCat("cannot open shared-memory object '", key, "': ", std::strerror(err)));
  }
  auto region = std::make_shared<SharedRegion>(tenant, session_id, name, key, fd, writable, offset,
                                               byte_size);  // owns fd from here
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(StrCat("key = '", key, "' is not a shared-memory object"));
  }
  if (offset > st.st_size || byte_size > st.st_size - offset) {
    return absl::InvalidArgumentError(StrCat("offset + byte_size = ", offset, " + ", byte_size,
                                             " runs past the end of '", key, "' (", st.st_size,
                                             " bytes)"));
  }
  std::lock_guard lock(mu_);
  const Key k{tenant, session_id, name};
  if (regions_.contains(k)) {
    return absl::AlreadyExistsError(
        StrCat("a region named '", name, "' is registered already; unregister it first"));
  }
  int& held = per_tenant_[tenant];
  if (held >= kMaxPerTenant) {
    return absl::ResourceExhaustedError(StrCat("tenant '", tenant, "' holds ", held,
                                               " shared-memory regions, the most allowed (",
                                               kMaxPerTenant, ")"));
  }
  ++held;
  regions_[k] = region;
  return RegionPtr(region);
}

absl::StatusOr<RegionPtr> SharedRegions::Find(const std::string& tenant,
                                              const std::string& session_id,
                                              const std::string& name) const {
  std::lock_guard lock(mu_);
  if (auto it = regions_.find({tenant, session_id, name}); it != regions_.end()) return it->second;
  if (auto it = regions_.find({tenant, "", name}); it != regions_.end()) return it->second;
  return absl::NotFoundError(StrCat("no shared-memory region named '", name, "'"));
}

absl::StatusOr<RegionPtr> SharedRegions::Unregister(const std::string& tenant,
                                                    const std::string& session_id,
                                                    const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = regions_.find({tenant, session_id, name});
  if (it == regions_.end()) it = regions_.find({tenant, "", name});
  if (it == regions_.end()) {
    return absl::NotFoundError(StrCat("no shared-memory region named '", name, "'"));
  }
  RegionPtr r = std::move(it->second);
  regions_.erase(it);
  if (--per_tenant_[tenant] == 0) per_tenant_.erase(tenant);
  return r;
}

std::vector<RegionPtr> SharedRegions::List(const std::string& tenant,
                                           const std::string& session_id) const {
  std::lock_guard lock(mu_);
  std::vector<RegionPtr> out;
  for (const auto& [k, r] : regions_) {
    const auto& [t, s, n] = k;
    if (t == tenant && (s.empty() || s == session_id)) out.push_back(r);
  }
  return out;
}

int SharedRegions::ReleaseEnded(const std::function<bool(const std::string&)>& session_open) {
  std::lock_guard lock(mu_);
  int n = 0;
  for (auto it = regions_.begin(); it != regions_.end();) {
    const std::string& session = std::get<1>(it->first);
    if (session.empty() || session_open(session)) {
      ++it;
      continue;
    }
    if (--per_tenant_[std::get<0>(it->first)] == 0) per_tenant_.erase(std::get<0>(it->first));
    it = regions_.erase(it);
    ++n;
  }
  return n;
}

int64_t SharedRegions::size() const {
  std::lock_guard lock(mu_);
  return static_cast<int64_t>(regions_.size());
}

}  // namespace sparsed::server
