#include "server/metrics.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include "server/process_stats.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text escapes only backslash and newline.
std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Series names a family of this type occupies in the exposition.
std::vector<std::string> SeriesNames(const std::string& name, MetricType type) {
  if (type != MetricType::kHistogram) return {name};
  return {name, name + "_bucket", name + "_sum", name + "_count"};
}

// A counter or gauge family whose samples come from a callback.
class CallbackFamily final : public FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::vector<std::string> label_names, CallbackFn fn)
      : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
        fn_(std::move(fn)) {}

 protected:
  void RenderSamples(std::string& out) const override {
    for (const CallbackSample& s : fn_()) {
      if (s.label_values.size() != label_names().size()) continue;
      AppendSample(out, "", s.label_values, "", s.value);
    }
  }

 private:
  const CallbackFn fn_;
};

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty() || !IsNameStart(name[0])) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  // Label names may not contain ':' (the metric-name regex allows it).
  if (name.find(':') != std::string_view::npos) return false;
  return IsValidMetricName(name);
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Shortest round-trip digits. Scientific only for very small or large
  // magnitudes, so bucket bounds read "0.0001", "60" and counts stay integers.
  char buf[64];
  std::to_chars_result r =
      std::to_chars(buf, buf + sizeof(buf) - 1, v, std::chars_format::scientific);
  if (r.ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  *r.ptr = '\0';
  const int exponent = std::atoi(std::strchr(buf, 'e') + 1);
  if (exponent >= -4 && exponent < 21) {
    r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
    if (r.ec != std::errc()) return "NaN";
  }
  return std::string(buf, r.ptr);
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// ---- Counter / Histogram ----

void Counter::Increment(double v) {
  if (!(v >= 0)) return;  // also drops NaN
  value_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  // First bucket whose upper bound is >= v ("le" is inclusive); NaN lands in +Inf.
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  if (std::isnan(v)) i = bounds_.size();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Take() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  // Derived from the buckets so +Inf and _count always agree in one scrape.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

// ---- FamilyBase / Family ----

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

void FamilyBase::Render(std::string& out) const {
  std::string samples;
  RenderSamples(samples);
  if (samples.empty()) return;  // like other clients, omit families without series
  out += StrCat("# HELP ", name_, " ", EscapeHelp(help_), "\n");
  out += StrCat("# TYPE ", name_, " ", TypeName(type_), "\n");
  out += samples;
}

void FamilyBase::AppendSample(std::string& out, std::string_view suffix,
                              std::span<const std::string> label_values, std::string_view extra,
                              double value) const {
  out += name_;
  out += suffix;
  if (!label_values.empty() || !extra.empty()) {
    out += '{';
    for (size_t i = 0; i < label_values.size(); ++i) {
      if (i > 0) out += ',';
      out += StrCat(label_names_[i], "=\"", EscapeLabelValue(label_values[i]), "\"");
    }
    if (!extra.empty()) {
      if (!label_values.empty()) out += ',';
      out += extra;
    }
    out += '}';
  }
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

template <>
void Family<Counter>::RenderSamples(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [labels, child] : children_) AppendSample(out, "", labels, "", child->Value());
}

template <>
void Family<Gauge>::RenderSamples(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [labels, child] : children_) AppendSample(out, "", labels, "", child->Value());
}

template <>
void Family<Histogram>::RenderSamples(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [labels, child] : children_) {
    Histogram::Snapshot s = child->Take();
    for (size_t i = 0; i <= s.bounds.size(); ++i) {
      std::string le = i < s.bounds.size() ? FormatValue(s.bounds[i]) : "+Inf";
      AppendSample(out, "_bucket", labels, StrCat("le=\"", le, "\""),
                   static_cast<double>(s.cumulative[i]));
    }
    AppendSample(out, "_sum", labels, "", s.sum);
    AppendSample(out, "_count", labels, "", static_cast<double>(s.count));
  }
}

// ---- MetricsRegistry ----

absl::Status MetricsRegistry::CheckNew(const std::string& name, MetricType type,
                                       const std::vector<std::string>& label_names) const {
  if (!IsValidMetricName(name)) {
    return absl::InvalidArgumentError(StrCat("invalid metric name '", name, "'"));
  }
  if (type == MetricType::kCounter && !name.ends_with("_total")) {
    return absl::InvalidArgumentError(StrCat("counter name '", name, "' must end in _total"));
  }
  std::set<std::string_view> seen;
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label) || label.starts_with("__")) {
      return absl::InvalidArgumentError(
          StrCat("metric ", name, ": invalid label name '", label, "'"));
    }
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(StrCat("histogram ", name, ": label 'le' is reserved"));
    }
    if (!seen.insert(label).second) {
      return absl::InvalidArgumentError(
          StrCat("metric ", name, ": duplicate label name '", label, "'"));
    }
  }
  for (const std::string& series : SeriesNames(name, type)) {
    auto it = series_names_.find(series);
    if (it != series_names_.end()) {
      return absl::AlreadyExistsError(
          StrCat("metric name '", series, "' is already used by family '", it->second, "'"));
    }
  }
  return absl::OkStatus();
}

template <class F>
F* MetricsRegistry::Insert(std::unique_ptr<F> family) {
  F* raw = family.get();
  for (const std::string& series : SeriesNames(raw->name(), raw->type())) {
    series_names_.emplace(series, raw->name());
  }
  families_.emplace(raw->name(), std::move(family));
  return raw;
}

template <class M>
absl::StatusOr<Family<M>*> MetricsRegistry::AddScalar(std::string name, std::string help,
                                                      std::vector<std::string> label_names,
                                                      MetricType type) {
  Family<M>* family;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(CheckNew(name, type, label_names));
    family = Insert(std::make_unique<Family<M>>(std::move(name), std::move(help), type,
                                                std::move(label_names),
                                                [] { return std::make_unique<M>(); }));
  }
  // An unlabelled metric is exposed (as 0) from the start.
  if (family->label_names().empty()) RETURN_IF_ERROR(family->Get({}).status());
  return family;
}

absl::StatusOr<Family<Counter>*> MetricsRegistry::AddCounter(std::string name, std::string help,
                                                             std::vector<std::string> label_names) {
  return AddScalar<Counter>(std::move(name), std::move(help), std::move(label_names),
                            MetricType::kCounter);
}

absl::StatusOr<Family<Gauge>*> MetricsRegistry::AddGauge(std::string name, std::string help,
                                                         std::vector<std::string> label_names) {
  return AddScalar<Gauge>(std::move(name), std::move(help), std::move(label_names),
                          MetricType::kGauge);
}

absl::StatusOr<Family<Histogram>*> MetricsRegistry::AddHistogram(
    std::string name, std::string help, std::vector<std::string> label_names,
    std::vector<double> bounds) {
  // A trailing +Inf is implicit; drop it if given.
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
      return absl::InvalidArgumentError(
          StrCat("histogram ", name, ": bucket bounds must be finite and strictly increasing"));
    }
  }
  Family<Histogram>* family;
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(CheckNew(name, MetricType::kHistogram, label_names));
    family = Insert(std::make_unique<Family<Histogram>>(
        std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names),
        [bounds = std::move(bounds)] { return std::make_unique<Histogram>(bounds); }));
  }
  if (family->label_names().empty()) RETURN_IF_ERROR(family->Get({}).status());
  return family;
}

absl::Status MetricsRegistry::AddCallback(std::string name, std::string help, MetricType type,
                                          std::vector<std::string> label_names, CallbackFn fn) {
  if (type == MetricType::kHistogram) {
    return absl::InvalidArgumentError(
        StrCat("metric ", name, ": callback families must be counters or gauges"));
  }
  if (!fn) return absl::InvalidArgumentError(StrCat("metric ", name, ": empty callback"));
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(CheckNew(name, type, label_names));
  Insert(std::make_unique<CallbackFamily>(std::move(name), std::move(help), type,
                                          std::move(label_names), std::move(fn)));
  return absl::OkStatus();
}

std::string MetricsRegistry::Render() const {
  // Families are never removed, so the pointers outlive the lock; rendering
  // (and running callbacks) without it lets callbacks touch the registry.
  std::vector<const FamilyBase*> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    families.reserve(families_.size());
    for (const auto& [name, family] : families_) families.push_back(family.get());
  }
  std::string out;
  for (const FamilyBase* family : families) family->Render(out);
  return out;
}

}  // namespace sparsed::server

// ---- ServerMetrics ----

namespace sparsed::server {

std::vector<double> ServerMetrics::DurationBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
}

std::vector<double> ServerMetrics::CompileBuckets() {
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(std::string_view version) {
  auto m = std::make_unique<ServerMetrics>(Passkey{});
  MetricsRegistry& r = m->registry_;
  ASSIGN_OR_RETURN(m->requests_, r.AddCounter("sparsed_requests_total",
                                              "gRPC requests handled, by method and status code.",
                                              {"method", "code"}));
  ASSIGN_OR_RETURN(m->durations_,
                   r.AddHistogram("sparsed_request_duration_seconds",
                                  "gRPC request handling time in seconds, by method.", {"method"},
                                  DurationBuckets()));

  ASSIGN_OR_RETURN(m->auto_checkpoints_,
                   r.AddCounter("sparsed_checkpoint_saves_total",
                                "Automatic checkpoints (--checkpoint-every, --checkpoint-on-exit) "
                                "by trigger and result (ok, failed).",
                                {"trigger", "result"}));
  ASSIGN_OR_RETURN(
      Family<Gauge> * last,
      r.AddGauge("sparsed_checkpoint_last_success_timestamp_seconds",
                 "Unix time of the last automatic checkpoint that saved (0: none).", {}));
  ASSIGN_OR_RETURN(m->last_checkpoint_, last->Get({}));
  // Both triggers and results appear from the start (0), so alerts can rate() them.
  for (std::string_view trigger : {"periodic", "exit"}) {
    for (std::string_view result : {"ok", "failed"}) {
      RETURN_IF_ERROR(m->auto_checkpoints_->Get({trigger, result}).status());
    }
  }

  ServerMetrics* self = m.get();  // the callbacks live in self->registry_
  auto per_device = [self](double DeviceUsage::*field) {
    return [self, field] {
      std::vector<CallbackSample> out;
      for (const DeviceUsage& u : self->DeviceUsageNow()) out.push_back({{u.device}, u.*field});
      return out;
    };
  };
  RETURN_IF_ERROR(r.AddCallback("sparsed_tensors", "Tensors held, by device.", MetricType::kGauge,
                                {"device"}, per_device(&DeviceUsage::tensors)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_tensor_bytes", "Bytes of tensor data held, by device.",
                                MetricType::kGauge, {"device"}, per_device(&DeviceUsage::bytes)));
  auto per_pool = [self](double DeviceUsage::*field) {
    return [self, field] {
      std::vector<CallbackSample> out;
      for (const DeviceUsage& u : self->DeviceUsageNow()) {
        if (u.has_pool) out.push_back({{u.device}, u.*field});
      }
      return out;
    };
  };
  RETURN_IF_ERROR(r.AddCallback(
      "sparsed_device_healthy",
      "1 while the backend's device computes, 0 once it has faulted (the daemon must restart).",
      MetricType::kGauge, {"device"}, [self] {
        std::vector<CallbackSample> out;
        for (const DeviceUsage& u : self->DeviceUsageNow()) {
          if (u.has_health) out.push_back({{u.device}, u.healthy});
        }
        return out;
      }));
  RETURN_IF_ERROR(r.AddCallback("sparsed_device_pool_reserved_bytes",
                                "Bytes a CUDA device's memory pool holds from the driver.",
                                MetricType::kGauge, {"device"},
                                per_pool(&DeviceUsage::pool_reserved_bytes)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_device_pool_used_bytes",
                                "Bytes of a CUDA device's memory pool handed out to allocations.",
                                MetricType::kGauge, {"device"},
                                per_pool(&DeviceUsage::pool_used_bytes)));

  // The tune database, read at scrape time; absent until SetTuneStats.
  auto tune = [self](double TuneStats::*field) {
    return [self, field]() -> std::vector<CallbackSample> {
      std::optional<TuneStats> t = self->TuneStatsNow();
      if (!t) return {};
      return {{{}, (*t).*field}};
    };
  };
  RETURN_IF_ERROR(r.AddCallback("sparsed_tune_trials_total",
                                "Kernel variant timings run by the autotuner.",
                                MetricType::kCounter, {}, tune(&TuneStats::trials)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_tune_db_hits_total",
                                "Tune database lookups that found a tuned variant.",
                                MetricType::kCounter, {}, tune(&TuneStats::hits)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_tune_db_misses_total",
                                "Tune database lookups that found no entry.", MetricType::kCounter,
                                {}, tune(&TuneStats::misses)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_tune_db_entries", "Entries in the tune database.",
                                MetricType::kGauge, {}, tune(&TuneStats::entries)));

  // The backend's JIT kernel cache, read at scrape time; absent until
  // SetKernelCacheStats. Compile times are observed as they happen.
  auto kernels = [self](double KernelCacheMetrics::*field) {
    return [self, field]() -> std::vector<CallbackSample> {
      std::optional<KernelCacheMetrics> k = self->KernelCacheNow();
      if (!k) return {};
      return {{{}, (*k).*field}};
    };
  };
  RETURN_IF_ERROR(r.AddCallback("sparsed_kernel_cache_hits_total",
                                "JIT kernel lookups that found a compiled kernel (memory or disk).",
                                MetricType::kCounter, {}, kernels(&KernelCacheMetrics::hits)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_kernel_cache_misses_total",
                                "JIT kernel lookups that had to compile.", MetricType::kCounter, {},
                                kernels(&KernelCacheMetrics::misses)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_kernel_compiles_total",
                                "JIT kernel compilations that succeeded.", MetricType::kCounter, {},
                                kernels(&KernelCacheMetrics::compiles)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_kernel_compile_errors_total",
                                "JIT kernel compilations that failed.", MetricType::kCounter, {},
                                kernels(&KernelCacheMetrics::compile_errors)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_kernel_cache_bytes",
                                "Bytes of compiled JIT kernels in the cache on disk.",
                                MetricType::kGauge, {}, kernels(&KernelCacheMetrics::bytes)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_kernel_cache_entries",
                                "Compiled JIT kernels in the cache.", MetricType::kGauge, {},
                                kernels(&KernelCacheMetrics::entries)));
  ASSIGN_OR_RETURN(Family<Histogram> * compile,
                   r.AddHistogram("sparsed_kernel_compile_seconds",
                                  "Wall time of successful JIT kernel compilations in seconds.", {},
                                  CompileBuckets()));
  ASSIGN_OR_RETURN(m->compile_seconds_, compile->Get({}));

  // Each process metric reads /proc at scrape time; on failure it is omitted.
  auto process = [](double ProcessStats::*field) {
    return [field]() -> std::vector<CallbackSample> {
      absl::StatusOr<ProcessStats> s = ReadProcessStats();
      if (!s.ok()) return {};
      return {{{}, (*s).*field}};
    };
  };
  RETURN_IF_ERROR(r.AddCallback("sparsed_process_resident_memory_bytes",
                                "Resident memory size in bytes.", MetricType::kGauge, {},
                                process(&ProcessStats::resident_memory_bytes)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_process_virtual_memory_bytes",
                                "Virtual memory size in bytes.", MetricType::kGauge, {},
                                process(&ProcessStats::virtual_memory_bytes)));
  RETURN_IF_ERROR(r.AddCallback("sparsed_process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.",
                                MetricType::kCounter, {}, process(&ProcessStats::cpu_seconds)));
  // The start time never changes: read it once.
  if (absl::StatusOr<ProcessStats> s = ReadProcessStats(); s.ok()) {
    RETURN_IF_ERROR(r.AddCallback("sparsed_process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  MetricType::kGauge, {}, [t = s->start_time_seconds] {
                                    return std::vector<CallbackSample>{{{}, t}};
                                  }));
  }

  ASSIGN_OR_RETURN(
      Family<Gauge> * build,
      r.AddGauge("sparsed_build_info", "sparsed build information; always 1.", {"version"}));
  ASSIGN_OR_RETURN(Gauge * info, build->Get({version}));
  info->Set(1);
  return m;
}

void ServerMetrics::SetDeviceUsage(DeviceUsageFn fn) {
  std::lock_guard<std::mutex> lock(usage_mu_);
  usage_fn_ = std::move(fn);
}

void ServerMetrics::SetTuneStats(TuneStatsFn fn) {
  std::lock_guard<std::mutex> lock(usage_mu_);
  tune_fn_ = std::move(fn);
}

void ServerMetrics::SetKernelCacheStats(KernelCacheMetricsFn fn) {
  std::lock_guard<std::mutex> lock(usage_mu_);
  kernel_cache_fn_ = std::move(fn);
}

void ServerMetrics::ObserveKernelCompile(double seconds) { compile_seconds_->Observe(seconds); }

std::optional<KernelCacheMetrics> ServerMetrics::KernelCacheNow() const {
  KernelCacheMetricsFn fn;
  {
    std::lock_guard<std::mutex> lock(usage_mu_);
    fn = kernel_cache_fn_;
  }
  if (!fn) return std::nullopt;
  return fn();
}

std::optional<TuneStats> ServerMetrics::TuneStatsNow() const {
  TuneStatsFn fn;
  {
    std::lock_guard<std::mutex> lock(usage_mu_);
    fn = tune_fn_;
  }
  if (!fn) return std::nullopt;
  return fn();
}

std::vector<DeviceUsage> ServerMetrics::DeviceUsageNow() const {
  DeviceUsageFn fn;
  {
    std::lock_guard<std::mutex> lock(usage_mu_);
    fn = usage_fn_;
  }
  if (!fn) return {};
  return fn();
}

void ServerMetrics::RecordAutoCheckpoint(std::string_view trigger, bool ok) {
  const std::string_view result = ok ? "ok" : "failed";
  if (absl::StatusOr<Counter*> c = auto_checkpoints_->Get({trigger, result}); c.ok()) {
    (*c)->Increment();
  }
  if (ok) {
    last_checkpoint_->Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
}

void ServerMetrics::RecordRequest(std::string_view method, std::string_view code, double seconds) {
  // The label counts are fixed above, so Get cannot fail here.
  if (absl::StatusOr<Counter*> c = requests_->Get({method, code}); c.ok()) (*c)->Increment();
  if (absl::StatusOr<Histogram*> h = durations_->Get({method}); h.ok()) (*h)->Observe(seconds);
}

}  // namespace sparsed::server
