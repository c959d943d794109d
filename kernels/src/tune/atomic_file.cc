#include "atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "sparsed/str_cat.h"
#include "src/io/posix_file.h"

namespace sparsed::tune::internal {
namespace {

using io::posix::ErrnoError;
using io::posix::Fd;
using io::posix::SyncDirectory;
using io::posix::WriteAll;

absl::Status WriteAndSync(const std::string& tmp, std::string_view bytes) {
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoError(errno, "create", tmp);
  absl::Status s = WriteAll(fd.get(), bytes, tmp);
  if (!s.ok()) return s;
  if (::fsync(fd.get()) != 0) return ErrnoError(errno, "fsync", tmp);
  if (fd.Close() != 0) return ErrnoError(errno, "close", tmp);
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path, std::string_view bytes) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        StrCat("cannot create directory '", parent.string(), "': ", ec.message()));
  }
  const std::string tmp = StrCat(path, ".tmp.", ::getpid());
  absl::Status s = WriteAndSync(tmp, bytes);
  if (s.ok() && std::rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoError(errno, StrCat("rename '", tmp, "' to"), path);
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());  // best effort; the old file is untouched
    return s;
  }
  return SyncDirectory(parent.string());
}

}  // namespace sparsed::tune::internal
