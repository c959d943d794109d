// JitCache: generator -> key -> (memory | store | NVRTC) -> loaded module.
#include "jit/jit_cache.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <utility>

#include "cu_module.h"
#include "driver_api.h"
#include "nvrtc_compile.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "src/jit/jit_key.h"
#include "src/jit/kernel_store.h"

namespace sparsed::cuda {
namespace {

// A spec as a map key: (kernel, params), not its text, so that parameter
// values containing ',' or '=' can never make two specs collide.
using SpecId = std::pair<std::string, std::map<std::string, std::string>>;

SpecId IdOf(const KernelSpec& s) { return {s.kernel, s.params}; }

bool IsArch(std::string_view a) {
  if (!a.starts_with("sm_") || a.size() < 5) return false;
  size_t i = 3;
  while (i < a.size() && a[i] >= '0' && a[i] <= '9') ++i;
  // sm_90, and the feature-specific sm_90a / sm_100f.
  return i >= 5 && (i == a.size() || (i + 1 == a.size() && a[i] >= 'a' && a[i] <= 'z'));
}

absl::StatusOr<std::string> DeviceArch(int device) {
  cudaDeviceProp prop{};
  if (cudaError_t err = cudaGetDeviceProperties(&prop, device); err != cudaSuccess) {
    cudaGetLastError();
    return absl::FailedPreconditionError(StrCat("JIT cache: no architecture given and CUDA device ",
                                                device,
                                                " cannot be queried: ", cudaGetErrorString(err)));
  }
  return StrCat("sm_", prop.major, prop.minor);
}

// Makes `device` current (its primary context created and current) for the
// guard's lifetime, then restores the caller's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
    status_ = CudaStatus(cudaSetDevice(device), "cudaSetDevice");
    if (status_.ok()) status_ = CudaStatus(cudaFree(nullptr), "initialising the CUDA context");
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  const absl::Status& status() const { return status_; }

 private:
  static absl::Status CudaStatus(cudaError_t err, std::string_view what) {
    if (err == cudaSuccess) return absl::OkStatus();
    cudaGetLastError();
    return absl::FailedPreconditionError(StrCat(what, " failed: ", cudaGetErrorString(err)));
  }
  int previous_ = -1;
  absl::Status status_;
};

// A spec made ready for the cache: its source, complete options and key.
struct Prepared {
  std::string text;  // spec.ToString()
  KernelSource source;
  std::vector<std::string> options;
  std::string key;
};

// The cubin of one key, as a flight delivers it to every caller that waited.
struct Obtained {
  std::shared_ptr<const std::string> cubin;
  bool compiled = false;
  absl::Status persisted;  // the store's Put, where it compiled
};
using Flight = std::shared_future<absl::StatusOr<Obtained>>;

struct LoadedKernel {
  LoadedKernel(std::string key, jit::CuModule module, CUfunction fn, std::string spec,
               CUcontext ctx)
      : key(std::move(key)), module(std::move(module)), kernel(fn, std::move(spec), ctx) {}
  std::string key;
  jit::CuModule module;
  JitKernel kernel;  // neither copied nor moved: callers hold pointers to it
};

}  // namespace

struct JitCache::Impl {
  JitCacheOptions options;
  std::string arch;
  std::string nvrtc_version;
  int driver_version = 0;
  std::unique_ptr<sparsed::jit::KernelStore> store;

  mutable std::mutex mu;  // guards the two maps
  std::map<SpecId, std::unique_ptr<LoadedKernel>> loaded;
  std::map<std::string, Flight> in_flight;  // by key
  std::mutex load_mu;                       // one module load at a time

  std::atomic<int64_t> hits{0}, misses{0}, compiles{0}, compile_errors{0};

  absl::StatusOr<Prepared> Prepare(const KernelSpec& spec) const;
  absl::StatusOr<Obtained> Obtain(const Prepared& p);
  absl::StatusOr<Obtained> ObtainNow(const Prepared& p);
  absl::StatusOr<std::unique_ptr<LoadedKernel>> Load(const Prepared& p,
                                                     const std::string& cubin) const;
};

absl::StatusOr<Prepared> JitCache::Impl::Prepare(const KernelSpec& spec) const {
  Prepared p;
  p.text = spec.ToString();
  ASSIGN_OR_RETURN(p.source, options.generator(spec));
  if (p.source.source.empty() || p.source.entry.empty()) {
    return absl::InternalError(
        StrCat("the generator of ", p.text, " gave no source or no entry function"));
  }
  ASSIGN_OR_RETURN(p.options, jit::NvrtcOptions(p.source, arch));
  p.key = sparsed::jit::JitKey({.source = p.source.source,
                                .options = p.options,
                                .arch = arch,
                                .nvrtc_version = nvrtc_version,
                                .driver_version = driver_version});
  return p;
}

// Single flight: the first caller for a key finds or compiles the cubin;
// callers arriving meanwhile wait for its result instead of compiling too.
absl::StatusOr<Obtained> JitCache::Impl::Obtain(const Prepared& p) {
  std::promise<absl::StatusOr<Obtained>> promise;
  Flight flight;
  bool leader = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto [it, inserted] = in_flight.try_emplace(p.key);
    if (inserted) it->second = promise.get_future().share();
    flight = it->second;
    leader = inserted;
  }
  if (!leader) {
    absl::StatusOr<Obtained> r = flight.get();
    if (!r.ok()) return r.status();
    hits.fetch_add(1);  // compiled by the leader, not by this call
    Obtained o = *r;
    o.compiled = false;
    return o;
  }
  absl::StatusOr<Obtained> r = ObtainNow(p);
  {
    // Ended before the result is published: a caller arriving after this
    // finds the cubin in the store rather than a finished flight.
    std::lock_guard<std::mutex> lock(mu);
    in_flight.erase(p.key);
  }
  promise.set_value(r);
  return r;
}

absl::StatusOr<Obtained> JitCache::Impl::ObtainNow(const Prepared& p) {
  if (absl::StatusOr<std::string> stored = store->Get(p.key); stored.ok()) {
    hits.fetch_add(1);
    return Obtained{std::make_shared<const std::string>(*std::move(stored)), false, {}};
  } else if (!absl::IsNotFound(stored.status())) {
    spdlog::warn("JIT cache: reading {} failed, compiling it again: {}", p.text,
                 std::string(stored.status().message()));
  }
  misses.fetch_add(1);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::string> cubin = jit::CompileToCubin(p.source, p.options, p.text);
  if (!cubin.ok()) {
    compile_errors.fetch_add(1);
    return cubin.status();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  compiles.fetch_add(1);
  Obtained o{std::make_shared<const std::string>(*std::move(cubin)), true, {}};
  o.persisted = store->Put({.key = p.key, .spec = p.text, .arch = arch}, *o.cubin);
  if (!o.persisted.ok()) {
    spdlog::warn("JIT cache: keeping {} failed (it stays usable in memory): {}", p.text,
                 std::string(o.persisted.message()));
  }
  if (options.on_compile) options.on_compile(seconds);
  return o;
}

absl::StatusOr<std::unique_ptr<LoadedKernel>> JitCache::Impl::Load(const Prepared& p,
                                                                   const std::string& cubin) const {
  ASSIGN_OR_RETURN(const jit::DriverApi* cu, jit::Driver());
  DeviceGuard on_device(options.device);
  RETURN_IF_ERROR(on_device.status());
  CUcontext ctx = nullptr;
  RETURN_IF_ERROR(jit::CuStatus(cu->cuCtxGetCurrent(&ctx), "cuCtxGetCurrent"));
  CUmodule raw = nullptr;
  RETURN_IF_ERROR(
      jit::CuStatus(cu->cuModuleLoadData(&raw, cubin.data()),
                    StrCat("loading ", p.text, " (", arch, ") on cuda:", options.device)));
  jit::CuModule module(cu, ctx, raw);
  CUfunction fn = nullptr;
  RETURN_IF_ERROR(jit::CuStatus(cu->cuModuleGetFunction(&fn, module.get(), p.source.entry.c_str()),
                                StrCat("finding ", p.source.entry, " in ", p.text)));
  return std::make_unique<LoadedKernel>(p.key, std::move(module), fn, p.text, ctx);
}

JitCache::JitCache(Passkey, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JitCache::~JitCache() = default;

absl::StatusOr<std::unique_ptr<JitCache>> JitCache::Open(JitCacheOptions options) {
  if (!options.generator) return absl::InvalidArgumentError("JIT cache: no generator given");
  if (options.max_bytes < 0) {
    return absl::InvalidArgumentError(
        StrCat("JIT cache: max_bytes must be >= 0, got ", options.max_bytes));
  }
  auto impl = std::make_unique<Impl>();
  if (options.arch.empty()) {
    ASSIGN_OR_RETURN(impl->arch, DeviceArch(options.device));
  } else if (!IsArch(options.arch)) {
    return absl::InvalidArgumentError(
        StrCat("JIT cache: arch must be a real architecture like sm_90, got '", options.arch, "'"));
  } else {
    impl->arch = options.arch;
  }
  impl->nvrtc_version = jit::NvrtcVersion();
  impl->driver_version =
      options.driver_version >= 0 ? options.driver_version : jit::DriverVersionOrZero();
  ASSIGN_OR_RETURN(impl->store, sparsed::jit::KernelStore::Open(options.dir, options.max_bytes));
  impl->options = std::move(options);
  return std::make_unique<JitCache>(Passkey{}, std::move(impl));
}

absl::StatusOr<const JitKernel*> JitCache::Get(const KernelSpec& spec) {
  Impl& m = *impl_;
  const SpecId id = IdOf(spec);
  auto find_loaded = [&]() -> const LoadedKernel* {
    std::lock_guard<std::mutex> lock(m.mu);
    auto it = m.loaded.find(id);
    return it == m.loaded.end() ? nullptr : it->second.get();
  };
  if (const LoadedKernel* k = find_loaded()) {
    m.hits.fetch_add(1);
    m.store->Touch(k->key);
    return &k->kernel;
  }
  ASSIGN_OR_RETURN(const Prepared p, m.Prepare(spec));
  ASSIGN_OR_RETURN(const Obtained o, m.Obtain(p));
  std::lock_guard<std::mutex> loading(m.load_mu);
  if (const LoadedKernel* k = find_loaded()) return &k->kernel;  // another caller loaded it
  ASSIGN_OR_RETURN(std::unique_ptr<LoadedKernel> k, m.Load(p, *o.cubin));
  std::lock_guard<std::mutex> lock(m.mu);
  auto& slot = m.loaded[id];
  slot = std::move(k);
  return &slot->kernel;
}

absl::StatusOr<bool> JitCache::Compile(const KernelSpec& spec) {
  ASSIGN_OR_RETURN(const Prepared p, impl_->Prepare(spec));
  ASSIGN_OR_RETURN(const Obtained o, impl_->Obtain(p));
  RETURN_IF_ERROR(o.persisted);
  return o.compiled;
}

std::vector<KernelCacheEntry> JitCache::List() const { return impl_->store->List(); }

absl::StatusOr<int> JitCache::Clear() { return impl_->store->Clear(); }

KernelCacheStats JitCache::Stats() const {
  return {.hits = impl_->hits.load(),
          .misses = impl_->misses.load(),
          .compiles = impl_->compiles.load(),
          .compile_errors = impl_->compile_errors.load(),
          .entries = impl_->store->entries(),
          .bytes_on_disk = impl_->store->bytes(),
          .max_bytes = impl_->options.max_bytes};
}

}  // namespace sparsed::cuda
