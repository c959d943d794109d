// The JIT kernel cache of one device: kernel specs are turned into CUDA
// source by a generator, compiled with NVRTC to a cubin for the device's
// exact architecture, kept on disk (<dir>/<key>.cubin, key = hex hash of
// source, options, arch, NVRTC version and driver version), and loaded with
// the driver API (cuModuleLoadData). A restarted daemon finds its cubins on
// disk and compiles nothing it compiled before.
//
// Contract:
// - Entries on disk are checksummed; a corrupt or truncated one is discarded
//   and recompiled, never loaded. Writes are atomic (temporary, fsync,
//   rename, fsync of the directory).
// - Thread-safe. Concurrent Get calls for the same spec compile it once; the
//   others wait for that compilation.
// - The cubins on disk are capped at max_bytes (0: no cap): least recently
//   used entries are evicted (the index of last uses is kept on disk too).
// - A compile error is INTERNAL naming the spec and carrying NVRTC's log.
// - Compilation needs no GPU (NVRTC only); loading does.
// - The driver version is part of the key (0 where there is no driver), so
//   cubins compiled on a host without a driver (a container build step) match
//   only there, unless that step sets `driver_version` to the target host's
//   cuDriverGetVersion. That number is the CUDA version the driver supports
//   (e.g. 13000), so a driver update within one CUDA version keeps the cache.
// - With dir "" the cubins are kept in memory under the same cap (Stats'
//   bytes_on_disk then counts those).
// - One cache per directory at a time.
#pragma once

#include <cuda.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/kernel_cache.h"

namespace sparsed::cuda {

// What a generator makes of a spec.
struct KernelSource {
  std::string name;                  // for errors and logs, e.g. "bsr_spmm_tc"
  std::string source;                // self-contained CUDA C++ (no #include)
  std::string entry;                 // the extern "C" __global__ function to load
  std::vector<std::string> options;  // NVRTC options besides the architecture
};
using KernelGenerator = std::function<absl::StatusOr<KernelSource>(const KernelSpec&)>;

struct JitCacheOptions {
  std::string dir;  // "" : memory only, nothing persisted
  int64_t max_bytes = int64_t{1} << 30;
  int device = 0;             // CUDA ordinal whose context modules load into
  std::string arch;           // "sm_90"; "" : read off `device`
  KernelGenerator generator;  // spec -> source; INVALID_ARGUMENT for unknown specs
  std::function<void(double seconds)> on_compile;  // after each successful compile
  int driver_version = -1;  // for the key; -1: this host's (0 without a driver)
};

// A loaded kernel. Valid as long as the cache that returned it.
class JitKernel {
 public:
  // `ctx`: the context its module was loaded into (made current around each
  // launch where another is); nullptr: launch in the current one.
  JitKernel(CUfunction fn, std::string spec, CUcontext ctx = nullptr)
      : fn_(fn), spec_(std::move(spec)), ctx_(ctx) {}
  // Queues the kernel (cuLaunchKernel); `args` as cuLaunchKernel takes them.
  // Raises the dynamic shared-memory limit first where smem_bytes > 48 KiB.
  // Thread-safe.
  absl::Status Launch(dim3 grid, dim3 block, unsigned smem_bytes, cudaStream_t stream,
                      void** args) const;
  const std::string& spec() const { return spec_; }

 private:
  CUfunction fn_;
  std::string spec_;
  CUcontext ctx_;
  // Only ever raised, under a lock; read without one (jit_kernel.cc).
  mutable std::atomic<unsigned> smem_limit_set_{48 * 1024};
};

class JitCache {
 public:
  // Opens (creates) `options.dir`, reads its index and drops entries whose
  // files are missing. Errors name the directory.
  static absl::StatusOr<std::unique_ptr<JitCache>> Open(JitCacheOptions options);
  ~JitCache();
  JitCache(const JitCache&) = delete;
  JitCache& operator=(const JitCache&) = delete;

  // The loaded kernel for `spec`: from memory, else disk, else compiled now.
  absl::StatusOr<const JitKernel*> Get(const KernelSpec& spec);
  // Compiles (or finds on disk) without loading: works without a GPU.
  // Returns true when it compiled.
  absl::StatusOr<bool> Compile(const KernelSpec& spec);

  std::vector<KernelCacheEntry> List() const;
  // Removes every entry from disk and forgets compiled cubins; kernels
  // already loaded stay loaded. Returns how many entries were removed.
  absl::StatusOr<int> Clear();
  KernelCacheStats Stats() const;

 private:
  struct Impl;
  struct Passkey {};

 public:
  JitCache(Passkey, std::unique_ptr<Impl> impl);  // use Open

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sparsed::cuda
