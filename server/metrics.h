// A small thread-safe Prometheus metrics registry (text exposition 0.0.4).
//
// Families are registered once (names validated, duplicates rejected) and
// live as long as the registry. Labelled children are created on first use
// and never removed, so the pointers handed out are stable and callers on hot
// paths may cache them. Updates to a child are lock-free atomics.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sparsed::server {

enum class MetricType { kCounter, kGauge, kHistogram };

// Monotonic counter. Negative increments are ignored.
class Counter {
 public:
  void Increment(double v = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Increment(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Decrement(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed-bucket histogram. `bounds` are the finite upper bounds, strictly
// increasing; the +Inf bucket is implicit.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;        // finite upper bounds
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries, last is +Inf
    double sum = 0;
    uint64_t count = 0;  // == cumulative.back()
  };
  Snapshot Take() const;

 private:
  const std::vector<double> bounds_;
  // Per-bucket (non-cumulative) counts; the last entry is the +Inf bucket.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// Orders label-value tuples; transparent so lookups need no allocation.
struct LabelValuesLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;

  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  MetricType type() const { return type_; }

  // Appends HELP, TYPE and all samples of this family to `out`.
  void Render(std::string& out) const;

 protected:
  // Appends the sample lines only.
  virtual void RenderSamples(std::string& out) const = 0;

  // `name{k="v",...,extra} value\n`; `extra` is a preformatted label or empty.
  void AppendSample(std::string& out, std::string_view suffix,
                    std::span<const std::string> label_values, std::string_view extra,
                    double value) const;

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
};

// A family of labelled children of type T (Counter, Gauge or Histogram).
template <class T>
class Family final : public FamilyBase {
 public:
  using Factory = std::function<std::unique_ptr<T>()>;
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         Factory factory)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        factory_(std::move(factory)) {}

  // The child for these label values, created on first use. Fails with
  // INVALID_ARGUMENT when the number of values differs from the label names.
  // The pointer stays valid for the lifetime of the registry.
  absl::StatusOr<T*> Get(std::span<const std::string_view> values);
  absl::StatusOr<T*> Get(std::initializer_list<std::string_view> values) {
    return Get(std::span<const std::string_view>(values.begin(), values.size()));
  }

 protected:
  void RenderSamples(std::string& out) const override;

 private:
  const Factory factory_;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<T>, LabelValuesLess> children_;
};

// One sample produced by a callback family at scrape time.
struct CallbackSample {
  std::vector<std::string> label_values;
  double value = 0;
};
using CallbackFn = std::function<std::vector<CallbackSample>()>;

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // All Add* fail with INVALID_ARGUMENT for a malformed metric or label name
  // (also: duplicate label names, labels starting with "__", "le" on a
  // histogram, a counter name not ending in "_total", bad buckets) and with
  // ALREADY_EXISTS when the name, or a series name it produces such as
  // `<histogram>_count`, is already taken.
  absl::StatusOr<Family<Counter>*> AddCounter(std::string name, std::string help,
                                              std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Gauge>*> AddGauge(std::string name, std::string help,
                                          std::vector<std::string> label_names = {});
  absl::StatusOr<Family<Histogram>*> AddHistogram(std::string name, std::string help,
                                                  std::vector<std::string> label_names,
                                                  std::vector<double> bounds);
  // A counter or gauge family whose samples come from `fn` at each Render().
  // `fn` runs without the registry lock held; samples whose label count does
  // not match `label_names` are dropped.
  absl::Status AddCallback(std::string name, std::string help, MetricType type,
                           std::vector<std::string> label_names, CallbackFn fn);

  // Prometheus text exposition format 0.0.4, families sorted by name.
  std::string Render() const;

 private:
  absl::Status CheckNew(const std::string& name, MetricType type,
                        const std::vector<std::string>& label_names) const;
  template <class F>
  F* Insert(std::unique_ptr<F> family);
  // A counter or gauge family; unlabelled ones get their single series at once.
  template <class M>
  absl::StatusOr<Family<M>*> AddScalar(std::string name, std::string help,
                                       std::vector<std::string> label_names, MetricType type);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>> families_;
  std::map<std::string, std::string> series_names_;  // series name -> family
};

// Helpers exposed for tests and for other exposition code.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
// Shortest text that round-trips; "+Inf", "-Inf", "NaN" for non-finite.
std::string FormatValue(double v);
// Escapes backslash, double quote and newline for a label value.
std::string EscapeLabelValue(std::string_view v);

// ---- ServerMetrics: the daemon's metric set ----

// Tensors and bytes held on one device, reported at scrape time.
struct DeviceUsage {
  std::string device;  // e.g. "cpu", "cuda:0"
  double tensors = 0;
  double bytes = 0;
  // The memory pool of a CUDA device: bytes reserved from the driver and
  // handed out to allocations. Reported only when has_pool (CUDA devices).
  bool has_pool = false;
  double pool_reserved_bytes = 0;
  double pool_used_bytes = 0;
  // Whether the device still computes (Backend::Health: 0 once it faulted).
  // Reported only when has_health (the device the backend computes on).
  bool has_health = false;
  double healthy = 1;
};
using DeviceUsageFn = std::function<std::vector<DeviceUsage>()>;

// The tune database's counters, read at scrape time.
struct TuneStats {
  double entries = 0;
  double hits = 0;
  double misses = 0;
  double trials = 0;
};
using TuneStatsFn = std::function<TuneStats()>;

// The backend's JIT kernel cache, read at scrape time.
struct KernelCacheMetrics {
  double hits = 0;
  double misses = 0;
  double compiles = 0;
  double compile_errors = 0;
  double bytes = 0;  // on disk
  double entries = 0;
};
using KernelCacheMetricsFn = std::function<KernelCacheMetrics()>;

#ifdef SPARSED_VERSION
inline constexpr std::string_view kSparsedVersion = SPARSED_VERSION;
#else
inline constexpr std::string_view kSparsedVersion = "unknown";
#endif

// Owns a registry with the sparsed_* families:
//   sparsed_requests_total{method,code}, sparsed_request_duration_seconds{method},
//   sparsed_tensors{device}, sparsed_tensor_bytes{device},
//   sparsed_device_pool_{reserved,used}_bytes{device} (CUDA devices only),
//   sparsed_device_healthy{device} (the backend's device),
//   sparsed_process_{resident,virtual}_memory_bytes, sparsed_process_cpu_seconds_total,
//   sparsed_process_start_time_seconds, sparsed_build_info{version},
//   sparsed_tune_trials_total, sparsed_tune_db_{hits,misses}_total, sparsed_tune_db_entries,
//   sparsed_kernel_cache_{hits,misses}_total, sparsed_kernel_compiles_total,
//   sparsed_kernel_compile_errors_total, sparsed_kernel_cache_bytes,
//   sparsed_kernel_cache_entries, sparsed_kernel_compile_seconds.
class ServerMetrics {
  struct Passkey {};

 public:
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(
      std::string_view version = kSparsedVersion);
  explicit ServerMetrics(Passkey) {}

  // Source for sparsed_tensors / sparsed_tensor_bytes (and the device pool
  // gauges for entries with has_pool); may be set (or
  // replaced) at any time. Called on every scrape, without locks held here.
  void SetDeviceUsage(DeviceUsageFn fn);
  // Source for the sparsed_tune_* series (absent until set); same rules.
  void SetTuneStats(TuneStatsFn fn);
  // Source for the sparsed_kernel_cache_* / sparsed_kernel_compile*_total
  // series (absent until set); same rules.
  void SetKernelCacheStats(KernelCacheMetricsFn fn);
  // One successful JIT compilation of `seconds` (sparsed_kernel_compile_seconds).
  void ObserveKernelCompile(double seconds);

  // One automatic checkpoint (`trigger` "periodic" or "exit") that saved or
  // failed: sparsed_checkpoint_saves_total{trigger, result} and, on success,
  // sparsed_checkpoint_last_success_timestamp_seconds.
  void RecordAutoCheckpoint(std::string_view trigger, bool ok);

  // `method` is the full gRPC method ("/sparsed.v1.Tensors/Upload"), `code`
  // the status name ("OK", "INVALID_ARGUMENT").
  void RecordRequest(std::string_view method, std::string_view code, double seconds);

  std::string Render() const { return registry_.Render(); }
  MetricsRegistry& registry() { return registry_; }

  // Bucket bounds of sparsed_request_duration_seconds (100us .. 60s).
  static std::vector<double> DurationBuckets();
  // Bucket bounds of sparsed_kernel_compile_seconds (50 ms .. 60 s).
  static std::vector<double> CompileBuckets();

 private:
  std::vector<DeviceUsage> DeviceUsageNow() const;
  std::optional<TuneStats> TuneStatsNow() const;
  std::optional<KernelCacheMetrics> KernelCacheNow() const;

  MetricsRegistry registry_;
  Family<Counter>* requests_ = nullptr;
  Family<Histogram>* durations_ = nullptr;
  Histogram* compile_seconds_ = nullptr;
  Family<Counter>* auto_checkpoints_ = nullptr;
  Gauge* last_checkpoint_ = nullptr;
  mutable std::mutex usage_mu_;
  DeviceUsageFn usage_fn_;
  TuneStatsFn tune_fn_;                   // guarded by usage_mu_
  KernelCacheMetricsFn kernel_cache_fn_;  // guarded by usage_mu_
};

// ---- template implementation ----

template <class T>
absl::StatusOr<T*> Family<T>::Get(std::span<const std::string_view> values) {
  if (values.size() != label_names().size()) {
    return absl::InvalidArgumentError("metric " + name() + ": expected " +
                                      std::to_string(label_names().size()) + " label values, got " +
                                      std::to_string(values.size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(values);
  if (it != children_.end()) return it->second.get();
  std::vector<std::string> key(values.begin(), values.end());
  auto [pos, inserted] = children_.emplace(std::move(key), factory_());
  return pos->second.get();
}

template <>
void Family<Counter>::RenderSamples(std::string& out) const;
template <>
void Family<Gauge>::RenderSamples(std::string& out) const;
template <>
void Family<Histogram>::RenderSamples(std::string& out) const;

}  // namespace sparsed::server
