// Removal of the temporary files that saves interrupted by a crash leave.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "sparsed/checkpoint.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::checkpoint {
namespace {

// The writer's pid from "NAME.safetensors.tmp.PID.COUNTER", or -1.
long WriterPid(const std::string& file) {
  constexpr std::string_view kMarker = ".safetensors.tmp.";
  const size_t at = file.find(kMarker);
  if (at == std::string::npos || at == 0) return -1;
  const char* digits = file.c_str() + at + kMarker.size();
  char* end = nullptr;
  errno = 0;
  const long pid = std::strtol(digits, &end, 10);
  if (end == digits || *end != '.' || errno != 0 || pid <= 0) return -1;
  for (const char* c = end + 1; *c != '\0'; ++c) {
    if (*c < '0' || *c > '9') return -1;
  }
  return end[1] == '\0' ? -1 : pid;
}

}  // namespace

absl::StatusOr<int64_t> RemoveStaleTemporaries(const std::string& dir, bool own_pid_is_stale) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return 0;
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        StrCat("cannot list '", dir, "': ", ec.message()));
  }
  int64_t removed = 0;
  const long self = static_cast<long>(::getpid());
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string file = it->path().filename().string();
    const long pid = WriterPid(file);
    if (pid < 0) continue;
    // A live writer (another process, or this one mid-save) keeps its file.
    // A container's daemon is always pid 1, so at start-up our own pid marks
    // the files of the previous, crashed run.
    const bool writer_alive = pid == self
                                  ? !own_pid_is_stale
                                  : (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
    if (writer_alive) continue;
    std::error_code rm;
    if (std::filesystem::remove(it->path(), rm)) ++removed;
    if (rm && rm != std::errc::no_such_file_or_directory) {
      return absl::Status(absl::ErrnoToStatusCode(rm.value()),
                          StrCat("cannot remove '", it->path().string(), "': ", rm.message()));
    }
  }
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        StrCat("cannot list '", dir, "': ", ec.message()));
  }
  return removed;
}

}  // namespace sparsed::checkpoint
