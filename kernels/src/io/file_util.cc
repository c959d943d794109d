#include "file_util.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "sparsed/str_cat.h"

namespace sparsed::io::internal {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

absl::Status ErrnoError(int err, std::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      StrCat("cannot ", what, " '", path, "': ", std::strerror(err)));
}

}  // namespace

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) return ErrnoError(errno, "open", path);
  std::string bytes;
  char chunk[1 << 16];
  while (true) {
    const size_t n = std::fread(chunk, 1, sizeof(chunk), f.get());
    bytes.append(chunk, n);
    if (n < sizeof(chunk)) break;
  }
  // EISDIR and friends surface here rather than at fopen.
  if (std::ferror(f.get())) return ErrnoError(errno != 0 ? errno : EIO, "read", path);
  return bytes;
}

absl::Status WriteFileBytes(const std::string& path, std::string_view bytes) {
  FilePtr f(std::fopen(path.c_str(), "wb"));
  if (!f) return ErrnoError(errno, "open for writing", path);
  if (std::fwrite(bytes.data(), 1, bytes.size(), f.get()) != bytes.size()) {
    return ErrnoError(errno != 0 ? errno : EIO, "write", path);
  }
  if (std::fclose(f.release()) != 0) return ErrnoError(errno, "close", path);
  return absl::OkStatus();
}

}  // namespace sparsed::io::internal
