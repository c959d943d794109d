// The JIT cache's store of compiled cubins (internal to the kernels library;
// no CUDA, so it is tested without a GPU).
//
// On disk (dir non-empty): <dir>/<key>.cubin per entry (format in
// cubin_file.h) and <dir>/index.json (kernel_index.h), both written
// atomically. With dir "" the cubins are kept in memory under the same rules.
//
// Contract:
// - Get returns a cubin only after its checks pass; a corrupt or truncated
//   file is deleted, its entry dropped, and the call is a miss.
// - An entry's bytes are its file's size (the cubin plus a header of about
//   a hundred bytes; in memory, the cubin's). Their sum is capped at
//   max_bytes (0: no cap): after each Put the least recently used entries
//   (by last Get, Touch or Put) are evicted, never the one just put.
// - Last uses survive a reopen: the index is written on every Put, eviction,
//   discard, Clear and Get, and by the destructor when only Touch changed it.
// - Thread-safe. One store per directory at a time (a second one on the same
//   directory sees the same files but keeps its own index in memory).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "cubin_file.h"
#include "sparsed/kernel_cache.h"

namespace sparsed::jit {

class KernelStore {
  struct Passkey {};

 public:
  // Opens (creates) `dir`, reads its index, drops entries whose file is
  // missing, adopts cubin files the index lacks (from their meta; last use =
  // file time), deletes files that cannot be read as cubins and temporaries
  // left by writers that no longer run. Errors name the directory. A damaged
  // index is not an error: it is rebuilt from the files.
  static absl::StatusOr<std::unique_ptr<KernelStore>> Open(std::string dir, int64_t max_bytes);
  KernelStore(Passkey, std::string dir, int64_t max_bytes);  // use Open
  ~KernelStore();
  KernelStore(const KernelStore&) = delete;
  KernelStore& operator=(const KernelStore&) = delete;

  // The cubin stored for `key`; NOT_FOUND when there is none or it was
  // discarded as damaged (the message says which). Records the use.
  absl::StatusOr<std::string> Get(const std::string& key);
  // Stores (replaces) the cubin of meta.key, then evicts to the cap.
  absl::Status Put(const CubinMeta& meta, std::string_view cubin);
  // Records a use of `key` (a kernel served from memory) if it is stored.
  void Touch(const std::string& key);
  // Most recently used first.
  std::vector<KernelCacheEntry> List() const;
  // Removes every entry; returns how many there were.
  absl::StatusOr<int> Clear();

  int64_t entries() const;
  int64_t bytes() const;
  int64_t max_bytes() const { return max_bytes_; }
  // Entries deleted as damaged since Open (at Open included).
  int64_t discarded() const;
  const std::string& dir() const { return dir_; }

 private:
  absl::Status Load();
  std::string PathOf(const std::string& key) const;
  int64_t NextStamp();
  // The helpers below expect mu_ held.
  absl::Status SaveIndexLocked();
  void DropLocked(const std::string& key);
  void EvictLocked(const std::string& keep);

  const std::string dir_;
  const int64_t max_bytes_;
  mutable std::mutex mu_;
  std::map<std::string, KernelCacheEntry> entries_;
  std::map<std::string, std::string> in_memory_;  // dir_ == "" only: key -> cubin
  int64_t bytes_ = 0;
  int64_t discarded_ = 0;
  int64_t last_stamp_ = 0;
  bool index_dirty_ = false;
};

}  // namespace sparsed::jit
