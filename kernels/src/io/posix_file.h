// POSIX file helpers shared by the checkpoint and tune-database writers (internal).
#pragma once

#include <unistd.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace sparsed::io::posix {

// Status with the code mapped from errno, naming what failed and the path.
absl::Status ErrnoError(int err, std::string_view what, const std::string& path);

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now, returning what close() returns.
  int Close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Writes all of `bytes` at the current position (retrying short writes).
absl::Status WriteAll(int fd, std::string_view bytes, const std::string& path);
// Writes all of `bytes` at `offset`.
absl::Status PWriteAll(int fd, std::string_view bytes, off_t offset, const std::string& path);
// Reads exactly bytes.size() bytes at `offset`; a short file is INVALID_ARGUMENT.
absl::Status PReadAll(int fd, char* dst, size_t size, off_t offset, const std::string& path);
absl::Status SyncDirectory(const std::string& dir);

}  // namespace sparsed::io::posix
