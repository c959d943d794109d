// List: one Summary per NAME.safetensors, from its header alone.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "safetensors_layout.h"
#include "sparsed/checkpoint.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "src/io/posix_file.h"

namespace sparsed::checkpoint {
namespace {

constexpr std::string_view kSuffix = ".safetensors";

// Number of tensors per the header, or an error for a damaged header.
absl::StatusOr<int64_t> CountTensors(int fd, uint64_t size, const std::string& path) {
  char prefix[8] = {};
  if (size >= 8) RETURN_IF_ERROR(io::posix::PReadAll(fd, prefix, 8, 0, path));
  ASSIGN_OR_RETURN(const uint64_t n,
                   internal::ParseHeaderLength(std::string_view(prefix, 8), size, path));
  std::string header(n, '\0');
  RETURN_IF_ERROR(io::posix::PReadAll(fd, header.data(), n, 8, path));
  ASSIGN_OR_RETURN(const internal::Header h, internal::ParseHeader(header, size - 8 - n, path));
  return static_cast<int64_t>(h.tensors.size());
}

}  // namespace

absl::StatusOr<std::vector<Summary>> List(const std::string& dir) {
  std::vector<Summary> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec == std::errc::no_such_file_or_directory) return out;
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        StrCat("cannot list '", dir, "': ", ec.message()));
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    const std::string file = it->path().filename().string();
    if (file.size() <= kSuffix.size() || !file.ends_with(kSuffix)) continue;
    const std::string name = file.substr(0, file.size() - kSuffix.size());
    if (!CheckName(name).ok()) continue;  // not a checkpoint this library writes
    const std::string path = it->path().string();
    io::posix::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0) {
      if (errno == ENOENT) continue;  // removed while listing
      if (errno == ELOOP) continue;   // a symbolic link: not a checkpoint we wrote
      return io::posix::ErrnoError(errno, "open", path);
    }
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return io::posix::ErrnoError(errno, "stat", path);
    if (!S_ISREG(st.st_mode)) continue;
    Summary s;
    s.name = name;
    s.bytes = st.st_size;
    s.modified_unix_ms =
        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    absl::StatusOr<int64_t> count = CountTensors(fd.get(), static_cast<uint64_t>(st.st_size), path);
    s.tensors = count.ok() ? *count : -1;
    out.push_back(std::move(s));
  }
  if (ec) {
    return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                        StrCat("cannot list '", dir, "': ", ec.message()));
  }
  std::sort(out.begin(), out.end(),
            [](const Summary& a, const Summary& b) { return a.name < b.name; });
  return out;
}

}  // namespace sparsed::checkpoint
