// Parse and Load: the whole file is verified before any tensor is returned.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "safetensors_layout.h"
#include "sparsed/checkpoint.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"
#include "src/io/posix_file.h"

namespace sparsed::checkpoint {

absl::StatusOr<std::vector<Entry>> Parse(std::string_view bytes, std::string_view source) {
  ASSIGN_OR_RETURN(const uint64_t n, internal::ParseHeaderLength(bytes, bytes.size(), source));
  const std::string_view data = bytes.substr(8 + n);
  ASSIGN_OR_RETURN(const internal::Header h,
                   internal::ParseHeader(bytes.substr(8, n), data.size(), source));
  for (const auto& [key, a] : h.arrays) {
    const uint32_t expected = h.checksums.at(key);
    const uint32_t actual = Crc32c(data.substr(a.begin, a.end - a.begin));
    if (actual != expected) {
      return absl::DataLossError(StrCat(source, ": checksum mismatch for array '", key,
                                        "': expected ", internal::CrcHex(expected), ", actual ",
                                        internal::CrcHex(actual)));
    }
  }
  std::vector<Entry> out;
  out.reserve(h.tensors.size());
  for (const internal::TensorInfo& info : h.tensors) {
    // Every component size was matched to an array inside `bytes`, so this
    // allocation is bounded by the input size.
    ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(info.desc));
    for (size_t i = 0; i < info.specs.size(); ++i) {
      const internal::ArrayInfo& a = h.arrays.at(info.array_keys[i]);
      Buffer* b = t.component(info.specs[i].name);
      if (a.end > a.begin) std::memcpy(b->data(), data.data() + a.begin, a.end - a.begin);
    }
    RETURN_IF_ERROR(ValidateTensor(t, {}, StrCat(source, ": tensor '", info.key, "'")));
    out.push_back(Entry{info.id, info.name, info.labels, std::move(t)});
  }
  return out;
}

absl::StatusOr<std::vector<Entry>> Load(const std::string& path) {
  // O_NOFOLLOW: a symbolic link planted in the checkpoints folder must not
  // make us read (and quote in errors) some other file (issue 17).
  io::posix::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0 && errno == ELOOP) {
    return absl::InvalidArgumentError(
        StrCat(path, ": is a symbolic link; checkpoints are read only from regular files"));
  }
  if (fd.get() < 0) return io::posix::ErrnoError(errno, "open checkpoint", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return io::posix::ErrnoError(errno, "stat", path);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(StrCat(path, ": not a regular file"));
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) return Parse(std::string_view(), path);
  // Mapped rather than read: a checkpoint may be GBs and each tensor gets its
  // own copy anyway. Checkpoints are replaced by rename, never truncated in
  // place, so the mapping stays valid while we read it.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (p == MAP_FAILED) return io::posix::ErrnoError(errno, "map", path);
  absl::StatusOr<std::vector<Entry>> out =
      Parse(std::string_view(static_cast<const char*>(p), size), path);
  ::munmap(p, size);
  return out;
}

}  // namespace sparsed::checkpoint
