#include "kernel_store.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "kernel_index.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "src/io/file_util.h"
#include "src/tune/atomic_file.h"

namespace sparsed::jit {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kCubinSuffix = ".cubin";
constexpr std::string_view kIndexName = "index.json";

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Keys become file names: only lower-case hex (what JitKey makes) is accepted.
bool IsKey(std::string_view s) {
  return !s.empty() && s.size() <= 128 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

// The writer's pid from "NAME.tmp.PID" (WriteFileAtomically's temporaries), or -1.
long TemporaryWriterPid(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at == 0) return -1;
  const char* digits = name.c_str() + at + 5;
  char* end = nullptr;
  errno = 0;
  const long pid = std::strtol(digits, &end, 10);
  if (end == digits || *end != '\0' || errno != 0 || pid <= 0) return -1;
  return pid;
}

bool ProcessGone(long pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

absl::Status FsError(const std::error_code& ec, std::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(ec.value()),
                      StrCat("cannot ", what, " JIT cache directory '", path, "': ", ec.message()));
}

// Removes `path`; a file that is already gone is fine.
void RemoveFile(const std::string& path) { ::unlink(path.c_str()); }

struct FoundFile {
  int64_t bytes = 0;
  int64_t mtime_unix_ms = 0;
};

}  // namespace

KernelStore::KernelStore(Passkey, std::string dir, int64_t max_bytes)
    : dir_(std::move(dir)), max_bytes_(max_bytes) {}

KernelStore::~KernelStore() {
  std::lock_guard<std::mutex> lock(mu_);
  if (index_dirty_) SaveIndexLocked().IgnoreError();  // best effort: only last uses are lost
}

absl::StatusOr<std::unique_ptr<KernelStore>> KernelStore::Open(std::string dir, int64_t max_bytes) {
  auto store = std::make_unique<KernelStore>(Passkey{}, std::move(dir), max_bytes);
  RETURN_IF_ERROR(store->Load());
  return store;
}

std::string KernelStore::PathOf(const std::string& key) const {
  return StrCat(dir_, "/", key, kCubinSuffix);
}

int64_t KernelStore::NextStamp() {
  // Strictly increasing, so that uses within one millisecond still order.
  last_stamp_ = std::max(NowUnixMs(), last_stamp_ + 1);
  return last_stamp_;
}

absl::Status KernelStore::Load() {
  if (dir_.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return FsError(ec, "create", dir_);
  if (!fs::is_directory(dir_, ec)) {
    return absl::FailedPreconditionError(
        StrCat("JIT cache directory '", dir_, "' is not a directory"));
  }

  // What is really there.
  std::map<std::string, FoundFile> files;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string path = it->path().string();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (const long pid = TemporaryWriterPid(name); pid > 0) {
      if (ProcessGone(pid)) RemoveFile(path);  // a crashed write
      continue;
    }
    if (!name.ends_with(kCubinSuffix)) continue;
    const std::string key = name.substr(0, name.size() - kCubinSuffix.size());
    if (!IsKey(key)) continue;
    files[key] = {static_cast<int64_t>(st.st_size),
                  int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1000000};
  }
  if (ec) return FsError(ec, "list", dir_);

  // What the index says; a missing or damaged index is rebuilt from the files.
  bool changed = false;
  absl::StatusOr<std::string> text = io::internal::ReadFileBytes(StrCat(dir_, "/", kIndexName));
  absl::StatusOr<std::vector<KernelCacheEntry>> indexed =
      text.ok() ? ParseKernelIndex(*text) : text.status();
  if (!indexed.ok()) {
    changed = !absl::IsNotFound(indexed.status()) || !files.empty();
    indexed = std::vector<KernelCacheEntry>();
  }
  for (KernelCacheEntry& e : *indexed) {
    auto f = files.find(e.key);
    if (!IsKey(e.key) || f == files.end() || entries_.contains(e.key)) {
      changed = true;  // its file is gone: drop the entry
      continue;
    }
    if (e.bytes != f->second.bytes) changed = true;
    e.bytes = f->second.bytes;
    entries_[e.key] = std::move(e);
  }
  for (const auto& [key, found] : files) {
    if (entries_.contains(key)) continue;
    changed = true;
    // Not indexed (a crash between the two writes, or a lost index): adopt it if it is whole.
    const std::string path = PathOf(key);
    absl::StatusOr<std::string> bytes = io::internal::ReadFileBytes(path);
    absl::StatusOr<DecodedCubin> cubin =
        bytes.ok() ? DecodeCubinFile(*bytes) : absl::StatusOr<DecodedCubin>(bytes.status());
    if (!cubin.ok() || cubin->meta.key != key) {
      RemoveFile(path);
      ++discarded_;
      continue;
    }
    entries_[key] = {.key = key,
                     .spec = cubin->meta.spec,
                     .arch = cubin->meta.arch,
                     .bytes = found.bytes,
                     .last_used_unix_ms = found.mtime_unix_ms};
  }
  for (const auto& [key, e] : entries_) {
    bytes_ += e.bytes;
    last_stamp_ = std::max(last_stamp_, e.last_used_unix_ms);
  }
  const int64_t before = static_cast<int64_t>(entries_.size());
  EvictLocked("");  // the cap may have been lowered since
  if (changed || static_cast<int64_t>(entries_.size()) != before) {
    absl::Status s = SaveIndexLocked();
    if (!s.ok())
      return absl::Status(s.code(), StrCat("JIT cache directory '", dir_, "': ", s.message()));
  }
  return absl::OkStatus();
}

absl::Status KernelStore::SaveIndexLocked() {
  if (dir_.empty()) return absl::OkStatus();
  std::vector<KernelCacheEntry> list;
  list.reserve(entries_.size());
  for (const auto& [key, e] : entries_) list.push_back(e);
  RETURN_IF_ERROR(
      tune::internal::WriteFileAtomically(StrCat(dir_, "/", kIndexName), KernelIndexToJson(list)));
  index_dirty_ = false;
  return absl::OkStatus();
}

void KernelStore::DropLocked(const std::string& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  bytes_ -= it->second.bytes;
  entries_.erase(it);
  in_memory_.erase(key);
  index_dirty_ = true;
}

void KernelStore::EvictLocked(const std::string& keep) {
  if (max_bytes_ <= 0) return;
  while (bytes_ > max_bytes_) {
    const KernelCacheEntry* lru = nullptr;
    for (const auto& [key, e] : entries_) {
      if (key != keep && (lru == nullptr || e.last_used_unix_ms < lru->last_used_unix_ms)) {
        lru = &e;
      }
    }
    if (lru == nullptr) return;  // only `keep` is left, alone over the cap
    const std::string key = lru->key;
    if (!dir_.empty()) RemoveFile(PathOf(key));
    DropLocked(key);
  }
}

absl::StatusOr<std::string> KernelStore::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return absl::NotFoundError(StrCat("no cubin stored for ", key));
  if (dir_.empty()) {
    it->second.last_used_unix_ms = NextStamp();
    return in_memory_.at(key);
  }
  const std::string path = PathOf(key);
  absl::StatusOr<std::string> bytes = io::internal::ReadFileBytes(path);
  if (!bytes.ok() && !absl::IsNotFound(bytes.status())) return bytes.status();
  absl::StatusOr<DecodedCubin> cubin =
      bytes.ok() ? DecodeCubinFile(*bytes) : absl::StatusOr<DecodedCubin>(bytes.status());
  if (cubin.ok() && cubin->meta.key != key) {
    cubin = absl::DataLossError(StrCat("it holds the cubin of ", cubin->meta.key));
  }
  if (!cubin.ok()) {
    const bool gone = absl::IsNotFound(cubin.status());
    if (!gone) {
      RemoveFile(path);
      ++discarded_;
    }
    DropLocked(key);
    SaveIndexLocked().IgnoreError();  // retried with the next write
    return absl::NotFoundError(StrCat(gone ? "missing" : "discarded damaged", " cubin '", path,
                                      "': ", cubin.status().message()));
  }
  it->second.last_used_unix_ms = NextStamp();
  index_dirty_ = true;
  SaveIndexLocked().IgnoreError();  // retried with the next write
  return std::move(cubin->cubin);
}

absl::Status KernelStore::Put(const CubinMeta& meta, std::string_view cubin) {
  if (!IsKey(meta.key)) {
    return absl::InvalidArgumentError(
        StrCat("JIT cache key '", meta.key, "' is not lower-case hex"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  int64_t bytes = static_cast<int64_t>(cubin.size());
  if (dir_.empty()) {
    in_memory_[meta.key] = std::string(cubin);
  } else {
    const std::string file = EncodeCubinFile(meta, cubin);
    RETURN_IF_ERROR(tune::internal::WriteFileAtomically(PathOf(meta.key), file));
    bytes = static_cast<int64_t>(file.size());
  }
  if (auto old = entries_.find(meta.key); old != entries_.end()) bytes_ -= old->second.bytes;
  entries_[meta.key] = {.key = meta.key,
                        .spec = meta.spec,
                        .arch = meta.arch,
                        .bytes = bytes,
                        .last_used_unix_ms = NextStamp()};
  bytes_ += bytes;
  EvictLocked(meta.key);
  return SaveIndexLocked();
}

void KernelStore::Touch(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  it->second.last_used_unix_ms = NextStamp();
  index_dirty_ = true;
}

std::vector<KernelCacheEntry> KernelStore::List() const {
  std::vector<KernelCacheEntry> list;
  {
    std::lock_guard<std::mutex> lock(mu_);
    list.reserve(entries_.size());
    for (const auto& [key, e] : entries_) list.push_back(e);
  }
  std::sort(list.begin(), list.end(), [](const KernelCacheEntry& a, const KernelCacheEntry& b) {
    return a.last_used_unix_ms > b.last_used_unix_ms;
  });
  return list;
}

absl::StatusOr<int> KernelStore::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  const int n = static_cast<int>(entries_.size());
  absl::Status first_error;
  if (!dir_.empty()) {
    for (const auto& [key, e] : entries_) {
      const std::string path = PathOf(key);
      if (::unlink(path.c_str()) != 0 && errno != ENOENT && first_error.ok()) {
        const int err = errno;
        first_error = absl::Status(absl::ErrnoToStatusCode(err),
                                   StrCat("cannot remove '", path, "': ", std::strerror(err)));
      }
    }
  }
  entries_.clear();
  in_memory_.clear();
  bytes_ = 0;
  index_dirty_ = true;
  RETURN_IF_ERROR(first_error);
  RETURN_IF_ERROR(SaveIndexLocked());
  return n;
}

int64_t KernelStore::entries() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(entries_.size());
}

int64_t KernelStore::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

int64_t KernelStore::discarded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return discarded_;
}

}  // namespace sparsed::jit
