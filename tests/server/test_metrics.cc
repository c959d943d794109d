#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/process_stats.h"
#include "sparsed/tune_db.h"

namespace sparsed::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Parses sample lines of the text format into "series{labels}" -> value.
std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t sp = line.rfind(' ');
    std::string value = line.substr(sp + 1);
    double v = value == "+Inf" ? INFINITY : std::strtod(value.c_str(), nullptr);
    out[line.substr(0, sp)] = v;
  }
  return out;
}

TEST(MetricsRegistryTest, CounterAndGaugeRender) {
  MetricsRegistry r;
  auto requests = r.AddCounter("test_requests_total", "Requests.", {"method", "code"});
  ASSERT_TRUE(requests.ok()) << requests.status();
  auto c = (*requests)->Get({"/a", "OK"});
  ASSERT_TRUE(c.ok());
  (*c)->Increment();
  (*c)->Increment(2);
  (*c)->Increment(-5);  // ignored: counters only go up
  ASSERT_TRUE((*requests)->Get({"/b", "INTERNAL"}).ok());

  auto temp = r.AddGauge("test_temperature_celsius", "Temp.\nSecond line \\ ok");
  ASSERT_TRUE(temp.ok());
  auto g = (*temp)->Get({});
  ASSERT_TRUE(g.ok());
  (*g)->Set(21.5);
  (*g)->Decrement(0.25);

  std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# HELP test_requests_total Requests.\n"
                              "# TYPE test_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# HELP test_temperature_celsius Temp.\\nSecond line \\\\ ok\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE test_temperature_celsius gauge\n"));
  auto samples = ParseSamples(text);
  EXPECT_EQ(samples.at(R"(test_requests_total{method="/a",code="OK"})"), 3);
  EXPECT_EQ(samples.at(R"(test_requests_total{method="/b",code="INTERNAL"})"), 0);
  EXPECT_EQ(samples.at("test_temperature_celsius"), 21.25);
}

TEST(MetricsRegistryTest, UnlabelledMetricsAreExposedFromTheStart) {
  MetricsRegistry r;
  ASSERT_TRUE(r.AddCounter("test_events_total", "Events.").ok());
  auto labelled = r.AddCounter("test_labelled_total", "Labelled.", {"x"});
  ASSERT_TRUE(labelled.ok());
  std::string text = r.Render();
  EXPECT_EQ(ParseSamples(text).at("test_events_total"), 0);
  // A labelled family with no children yet has no series and is omitted.
  EXPECT_THAT(text, Not(HasSubstr("test_labelled_total")));
}

TEST(MetricsRegistryTest, ChildPointersAreStable) {
  MetricsRegistry r;
  auto f = r.AddCounter("test_total", "T.", {"k"});
  ASSERT_TRUE(f.ok());
  auto a = (*f)->Get({"x"});
  for (int i = 0; i < 100; ++i) ASSERT_TRUE((*f)->Get({std::to_string(i)}).ok());
  auto b = (*f)->Get({"x"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(MetricsRegistryTest, WrongLabelCountIsRejected) {
  MetricsRegistry r;
  auto f = r.AddCounter("test_total", "T.", {"a", "b"});
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->Get({"only-one"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*f)->Get({"1", "2", "3"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulative) {
  MetricsRegistry r;
  auto h = r.AddHistogram("test_latency_seconds", "Latency.", {"method"}, {1, 2, 5});
  ASSERT_TRUE(h.ok()) << h.status();
  auto child = (*h)->Get({"/m"});
  ASSERT_TRUE(child.ok());
  for (double v : {0.5, 1.0, 1.5, 3.0, 10.0}) (*child)->Observe(v);

  std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE test_latency_seconds histogram\n"));
  auto s = ParseSamples(text);
  EXPECT_EQ(s.at(R"(test_latency_seconds_bucket{method="/m",le="1"})"), 2);  // le is inclusive
  EXPECT_EQ(s.at(R"(test_latency_seconds_bucket{method="/m",le="2"})"), 3);
  EXPECT_EQ(s.at(R"(test_latency_seconds_bucket{method="/m",le="5"})"), 4);
  EXPECT_EQ(s.at(R"(test_latency_seconds_bucket{method="/m",le="+Inf"})"), 5);
  EXPECT_EQ(s.at(R"(test_latency_seconds_count{method="/m"})"), 5);
  EXPECT_DOUBLE_EQ(s.at(R"(test_latency_seconds_sum{method="/m"})"), 16);
  // Buckets appear in increasing order of le.
  EXPECT_LT(text.find("le=\"1\""), text.find("le=\"2\""));
  EXPECT_LT(text.find("le=\"5\""), text.find("le=\"+Inf\""));
}

TEST(MetricsRegistryTest, HistogramRejectsBadBuckets) {
  MetricsRegistry r;
  EXPECT_EQ(r.AddHistogram("h1_seconds", "H.", {}, {1, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddHistogram("h2_seconds", "H.", {}, {2, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(r.AddHistogram("h3_seconds", "H.", {}, {NAN}).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A trailing +Inf is accepted and not duplicated.
  auto ok = r.AddHistogram("h4_seconds", "H.", {}, {1, INFINITY});
  ASSERT_TRUE(ok.ok()) << ok.status();
  std::string text = r.Render();
  size_t first = text.find("le=\"+Inf\"");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(text.find("le=\"+Inf\"", first + 1), std::string::npos);
}

TEST(MetricsRegistryTest, LabelValuesAreEscaped) {
  MetricsRegistry r;
  auto f = r.AddGauge("test_gauge", "G.", {"path"});
  ASSERT_TRUE(f.ok());
  auto g = (*f)->Get({"a\"b\\c\nd"});
  ASSERT_TRUE(g.ok());
  (*g)->Set(7);
  EXPECT_THAT(r.Render(), HasSubstr("test_gauge{path=\"a\\\"b\\\\c\\nd\"} 7\n"));
  EXPECT_EQ(EscapeLabelValue("plain"), "plain");
}

TEST(MetricsRegistryTest, InvalidNamesAreRejected) {
  MetricsRegistry r;
  auto code = [](const auto& s) { return s.status().code(); };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code(r.AddGauge("", "x")), kInvalid);
  EXPECT_EQ(code(r.AddGauge("1abc", "x")), kInvalid);
  EXPECT_EQ(code(r.AddGauge("a-b", "x")), kInvalid);
  EXPECT_EQ(code(r.AddGauge("a b", "x")), kInvalid);
  EXPECT_EQ(code(r.AddGauge("ok_name", "x", {"bad-label"})), kInvalid);
  EXPECT_EQ(code(r.AddGauge("ok_name", "x", {"a:b"})), kInvalid);
  EXPECT_EQ(code(r.AddGauge("ok_name", "x", {"__reserved"})), kInvalid);
  EXPECT_EQ(code(r.AddGauge("ok_name", "x", {"dup", "dup"})), kInvalid);
  EXPECT_EQ(code(r.AddCounter("no_suffix", "x")), kInvalid);
  EXPECT_EQ(code(r.AddHistogram("h_seconds", "x", {"le"}, {1})), kInvalid);
  EXPECT_EQ(r.AddCallback("cb_gauge", "x", MetricType::kGauge, {"0bad"},
                          [] { return std::vector<CallbackSample>{}; })
                .code(),
            kInvalid);
  // None of the rejected registrations took the name.
  EXPECT_TRUE(r.AddGauge("ok_name", "x", {"ns:x", "b"}).status().code() == kInvalid);
  EXPECT_TRUE(r.AddGauge("ok_name", "x", {"a", "b"}).ok());
  EXPECT_TRUE(r.AddGauge("colons:are_ok_in_metric_names", "x").ok());

  EXPECT_TRUE(IsValidMetricName("sparsed_requests_total"));
  EXPECT_TRUE(IsValidMetricName("_x:y9"));
  EXPECT_FALSE(IsValidMetricName("9x"));
  EXPECT_FALSE(IsValidMetricName("é"));
}

TEST(MetricsRegistryTest, DuplicateNamesAreRejected) {
  MetricsRegistry r;
  ASSERT_TRUE(r.AddGauge("dup_gauge", "x").ok());
  EXPECT_EQ(r.AddGauge("dup_gauge", "x").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.AddCallback("dup_gauge", "x", MetricType::kGauge, {},
                          [] { return std::vector<CallbackSample>{}; })
                .code(),
            absl::StatusCode::kAlreadyExists);
  // Series names produced by a histogram collide too, in both directions.
  ASSERT_TRUE(r.AddHistogram("lat_seconds", "x", {}, {1}).ok());
  EXPECT_EQ(r.AddGauge("lat_seconds_count", "x").status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(r.AddGauge("other_seconds_sum", "x").ok());
  EXPECT_EQ(r.AddHistogram("other_seconds", "x", {}, {1}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(MetricsRegistryTest, FamiliesAreSortedByName) {
  MetricsRegistry r;
  ASSERT_TRUE(r.AddGauge("zeta", "z").ok());
  ASSERT_TRUE(r.AddGauge("alpha", "a").ok());
  ASSERT_TRUE(r.AddGauge("mid", "m").ok());
  std::string text = r.Render();
  EXPECT_LT(text.find("# HELP alpha"), text.find("# HELP mid"));
  EXPECT_LT(text.find("# HELP mid"), text.find("# HELP zeta"));
  EXPECT_EQ(text, r.Render());  // stable between scrapes
}

TEST(MetricsRegistryTest, CallbackFamiliesAreEvaluatedAtScrape) {
  MetricsRegistry r;
  double value = 1;
  ASSERT_TRUE(r.AddCallback("cb_things", "Things.", MetricType::kGauge, {"device"}, [&] {
                 return std::vector<CallbackSample>{{{"cpu"}, value},
                                                    {{"cpu", "extra"}, 99}};  // wrong arity
               }).ok());
  EXPECT_EQ(ParseSamples(r.Render()).at(R"(cb_things{device="cpu"})"), 1);
  value = 42;
  std::string text = r.Render();
  EXPECT_EQ(ParseSamples(text).at(R"(cb_things{device="cpu"})"), 42);
  EXPECT_THAT(text, Not(HasSubstr("99")));
  EXPECT_EQ(r.AddCallback("cb_hist", "x", MetricType::kHistogram, {},
                          [] { return std::vector<CallbackSample>{}; })
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry r;
  auto f = r.AddCounter("conc_total", "C.", {"t"});
  auto h = r.AddHistogram("conc_seconds", "H.", {}, {0.5});
  ASSERT_TRUE(f.ok() && h.ok());
  constexpr int kThreads = 4, kIters = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIters; ++i) {
        (*(*f)->Get({t % 2 ? "odd" : "even"}))->Increment();
        (*(*h)->Get({}))->Observe(i % 2 ? 1.0 : 0.25);
        if (i % 1000 == 0) r.Render();
      }
    });
  }
  for (auto& t : threads) t.join();
  auto s = ParseSamples(r.Render());
  EXPECT_EQ(s.at(R"(conc_total{t="odd"})"), kThreads / 2 * kIters);
  EXPECT_EQ(s.at(R"(conc_total{t="even"})"), kThreads / 2 * kIters);
  EXPECT_EQ(s.at(R"(conc_seconds_bucket{le="0.5"})"), kThreads * kIters / 2);
  EXPECT_EQ(s.at("conc_seconds_count"), kThreads * kIters);
}

TEST(FormatValueTest, PrometheusParsableNumbers) {
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(2.5), "2.5");
  EXPECT_EQ(FormatValue(1234567890123.0), "1234567890123");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(1e-5), "1e-05");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
  EXPECT_EQ(std::strtod(FormatValue(0.1 + 0.2).c_str(), nullptr), 0.1 + 0.2);  // round-trips
}

TEST(ProcessStatsTest, ParsesProcFiles) {
  ProcessStats s;
  ASSERT_TRUE(ParseStatm("765 423 395 5 0 123 0\n", 4096, s).ok());
  EXPECT_EQ(s.virtual_memory_bytes, 765.0 * 4096);
  EXPECT_EQ(s.resident_memory_bytes, 423.0 * 4096);
  EXPECT_FALSE(ParseStatm("garbage", 4096, s).ok());

  // Command name with a space and a ')' in it; utime=250, stime=50, starttime=1000.
  const std::string stat =
      "6809 (odd) name) R 6806 6806 4007 0 -1 4194304 97 0 0 0 250 50 0 0 20 0 1 0 1000 "
      "3133440 356 18446744073709551615 0\n";
  ASSERT_TRUE(ParseStat(stat, 100, 1700000000, s).ok());
  EXPECT_DOUBLE_EQ(s.cpu_seconds, 3.0);
  EXPECT_DOUBLE_EQ(s.start_time_seconds, 1700000010.0);
  EXPECT_FALSE(ParseStat("1 (x) R 1 2", 100, 0, s).ok());

  auto boot = ParseBootTime("cpu 1 2 3\nintr 5\nbtime 1795382989\nprocesses 9\n");
  ASSERT_TRUE(boot.ok());
  EXPECT_EQ(*boot, 1795382989.0);
  EXPECT_FALSE(ParseBootTime("cpu 1 2 3\n").ok());
}

TEST(ProcessStatsTest, ReadsOwnProcess) {
  auto s = ReadProcessStats();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->resident_memory_bytes, 0);
  EXPECT_GE(s->virtual_memory_bytes, s->resident_memory_bytes);
  EXPECT_GE(s->cpu_seconds, 0);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(s->start_time_seconds, now + 1);
  EXPECT_GT(s->start_time_seconds, now - 3600);  // this test process started recently
}

TEST(ServerMetricsTest, RecordsRequestsAndDeviceUsage) {
  auto m = ServerMetrics::Create("1.2.3");
  ASSERT_TRUE(m.ok()) << m.status();
  (*m)->RecordRequest("/sparsed.v1.Tensors/Upload", "OK", 0.002);
  (*m)->RecordRequest("/sparsed.v1.Tensors/Upload", "OK", 0.5);
  (*m)->RecordRequest("/sparsed.v1.Tensors/Upload", "INVALID_ARGUMENT", 0.00005);
  (*m)->SetDeviceUsage([] {
    return std::vector<DeviceUsage>{{"cpu", 3, 1024}, {"cuda:0", 1, 4096}};
  });

  std::string text = (*m)->Render();
  auto s = ParseSamples(text);
  const std::string up = R"(method="/sparsed.v1.Tensors/Upload")";
  EXPECT_EQ(s.at("sparsed_requests_total{" + up + R"(,code="OK"})"), 2);
  EXPECT_EQ(s.at("sparsed_requests_total{" + up + R"(,code="INVALID_ARGUMENT"})"), 1);
  EXPECT_EQ(s.at("sparsed_request_duration_seconds_count{" + up + "}"), 3);
  EXPECT_EQ(s.at("sparsed_request_duration_seconds_bucket{" + up + R"(,le="0.0001"})"), 1);
  EXPECT_EQ(s.at("sparsed_request_duration_seconds_bucket{" + up + R"(,le="0.0025"})"), 2);
  EXPECT_EQ(s.at("sparsed_request_duration_seconds_bucket{" + up + R"(,le="60"})"), 3);
  EXPECT_EQ(s.at(R"(sparsed_tensors{device="cpu"})"), 3);
  EXPECT_EQ(s.at(R"(sparsed_tensor_bytes{device="cuda:0"})"), 4096);
  EXPECT_EQ(s.at(R"(sparsed_build_info{version="1.2.3"})"), 1);
  EXPECT_GT(s.at("sparsed_process_resident_memory_bytes"), 0);
  EXPECT_GT(s.at("sparsed_process_virtual_memory_bytes"), 0);
  EXPECT_GE(s.at("sparsed_process_cpu_seconds_total"), 0);
  EXPECT_GT(s.at("sparsed_process_start_time_seconds"), 1e9);
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_process_cpu_seconds_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_request_duration_seconds histogram\n"));
}

TEST(ServerMetricsTest, DevicePoolGaugesOnlyForDevicesWithAPool) {
  auto m = ServerMetrics::Create();
  ASSERT_TRUE(m.ok());
  DeviceUsage gpu{"cuda:0", 2, 3000};
  gpu.has_pool = true;
  gpu.pool_reserved_bytes = 33554432;
  gpu.pool_used_bytes = 3072;
  int calls = 0;
  (*m)->SetDeviceUsage([&] {
    ++calls;
    return std::vector<DeviceUsage>{{"cpu", 1, 100}, gpu};
  });
  std::string text = (*m)->Render();
  EXPECT_GT(calls, 0);
  auto s = ParseSamples(text);
  EXPECT_EQ(s.at(R"(sparsed_device_pool_reserved_bytes{device="cuda:0"})"), 33554432);
  EXPECT_EQ(s.at(R"(sparsed_device_pool_used_bytes{device="cuda:0"})"), 3072);
  EXPECT_EQ(s.at(R"(sparsed_tensor_bytes{device="cuda:0"})"), 3000);
  EXPECT_FALSE(s.contains(R"(sparsed_device_pool_reserved_bytes{device="cpu"})"));
  EXPECT_FALSE(s.contains(R"(sparsed_device_pool_used_bytes{device="cpu"})"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_device_pool_reserved_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_device_pool_used_bytes gauge\n"));

  // A CPU-only daemon has no pool: the families are left out entirely.
  (*m)->SetDeviceUsage([] { return std::vector<DeviceUsage>{{"cpu", 1, 100}}; });
  text = (*m)->Render();
  EXPECT_THAT(text, Not(HasSubstr("sparsed_device_pool")));
  EXPECT_EQ(ParseSamples(text).at(R"(sparsed_tensor_bytes{device="cpu"})"), 100);
}

// sparsed_device_healthy: only for the device the backend computes on, 1
// while it computes and 0 once it has faulted.
TEST(ServerMetricsTest, DeviceHealthOnlyForTheBackendsDevice) {
  auto m = ServerMetrics::Create();
  ASSERT_TRUE(m.ok());
  double healthy = 1;
  (*m)->SetDeviceUsage([&] {
    DeviceUsage gpu{"cuda:0", 2, 3000};
    gpu.has_health = true;
    gpu.healthy = healthy;
    return std::vector<DeviceUsage>{{"cpu", 1, 100}, gpu};
  });
  auto s = ParseSamples((*m)->Render());
  EXPECT_EQ(s.at(R"(sparsed_device_healthy{device="cuda:0"})"), 1);
  EXPECT_FALSE(s.contains(R"(sparsed_device_healthy{device="cpu"})"));
  healthy = 0;
  const std::string text = (*m)->Render();
  EXPECT_EQ(ParseSamples(text).at(R"(sparsed_device_healthy{device="cuda:0"})"), 0);
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_device_healthy gauge\n"));
}

TEST(ServerMetricsTest, NoDeviceSeriesBeforeUsageIsSet) {
  auto m = ServerMetrics::Create();
  ASSERT_TRUE(m.ok());
  std::string text = (*m)->Render();
  EXPECT_THAT(text, Not(HasSubstr("sparsed_tensors{")));
  EXPECT_THAT(text, Not(HasSubstr("sparsed_device_pool")));
  EXPECT_THAT(text, HasSubstr("sparsed_build_info{version=\"" + std::string(kSparsedVersion)));
}

TEST(ServerMetricsTest, TuneSeriesComeFromTheTuneDbAtScrape) {
  auto m = ServerMetrics::Create();
  ASSERT_TRUE(m.ok());
  EXPECT_THAT((*m)->Render(), Not(HasSubstr("sparsed_tune")));  // absent until set

  auto db = TuneDb::Open("");  // in memory
  ASSERT_TRUE(db.ok());
  TuneDb* raw = db->get();
  (*m)->SetTuneStats([raw] {
    return TuneStats{.entries = static_cast<double>(raw->size()),
                     .hits = static_cast<double>(raw->hits()),
                     .misses = static_cast<double>(raw->misses()),
                     .trials = static_cast<double>(raw->trials())};
  });
  auto s = ParseSamples((*m)->Render());
  EXPECT_EQ(s.at("sparsed_tune_db_entries"), 0);
  EXPECT_EQ(s.at("sparsed_tune_db_hits_total"), 0);

  for (const char* key : {"a", "b", "c"}) {
    ASSERT_TRUE(raw->Record(TuneEntry{.key = key, .variant = "v"}).ok());
  }
  raw->Lookup("a");
  raw->Lookup("b");
  raw->Lookup("missing");
  raw->AddTrials(7);
  const std::string text = (*m)->Render();
  s = ParseSamples(text);
  EXPECT_EQ(s.at("sparsed_tune_db_entries"), 3);
  EXPECT_EQ(s.at("sparsed_tune_db_hits_total"), 2);
  EXPECT_EQ(s.at("sparsed_tune_db_misses_total"), 1);
  EXPECT_EQ(s.at("sparsed_tune_trials_total"), 7);
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_tune_trials_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_tune_db_hits_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_tune_db_misses_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_tune_db_entries gauge\n"));
}

TEST(ServerMetricsTest, KernelCacheSeriesComeFromTheBackendAtScrape) {
  auto m = ServerMetrics::Create();
  ASSERT_TRUE(m.ok());
  std::string text = (*m)->Render();
  EXPECT_THAT(text, Not(HasSubstr("sparsed_kernel_cache")));  // absent until set
  // The compile histogram is there from the start, empty.
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_kernel_compile_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_count 0\n"));

  KernelCacheMetrics now;
  (*m)->SetKernelCacheStats([&now] { return now; });
  auto s = ParseSamples((*m)->Render());
  for (const char* name : {"sparsed_kernel_cache_hits_total", "sparsed_kernel_cache_misses_total",
                           "sparsed_kernel_compiles_total", "sparsed_kernel_compile_errors_total",
                           "sparsed_kernel_cache_bytes", "sparsed_kernel_cache_entries"}) {
    EXPECT_EQ(s.at(name), 0) << name;
  }
  now = {.hits = 5, .misses = 2, .compiles = 1, .compile_errors = 1, .bytes = 12345, .entries = 1};
  (*m)->ObserveKernelCompile(0.07);
  (*m)->ObserveKernelCompile(3.0);
  text = (*m)->Render();
  s = ParseSamples(text);
  EXPECT_EQ(s.at("sparsed_kernel_cache_hits_total"), 5);
  EXPECT_EQ(s.at("sparsed_kernel_cache_misses_total"), 2);
  EXPECT_EQ(s.at("sparsed_kernel_compiles_total"), 1);
  EXPECT_EQ(s.at("sparsed_kernel_compile_errors_total"), 1);
  EXPECT_EQ(s.at("sparsed_kernel_cache_bytes"), 12345);
  EXPECT_EQ(s.at("sparsed_kernel_cache_entries"), 1);
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_kernel_cache_hits_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE sparsed_kernel_cache_bytes gauge\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_bucket{le=\"0.05\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_bucket{le=\"2.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_bucket{le=\"5\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_bucket{le=\"60\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_sum 3.07\n"));
}

TEST(MetricsHttpServerTest, ServesMetricsAndHealth) {
  auto m = ServerMetrics::Create("9.9.9");
  ASSERT_TRUE(m.ok());
  MetricsHttpServer server([&] { return (*m)->Render(); });
  auto port = server.Start("127.0.0.1", 0);
  ASSERT_TRUE(port.ok()) << port.status();
  ASSERT_GT(*port, 0);
  (*m)->RecordRequest("/sparsed.v1.Compute/SpMM", "OK", 0.01);

  httplib::Client client("127.0.0.1", *port);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ParseSamples(res->body).at(
                R"(sparsed_requests_total{method="/sparsed.v1.Compute/SpMM",code="OK"})"),
            1);

  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok");

  auto missing = client.Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // The port is taken, so a second server on it must fail with the address.
  MetricsHttpServer second([] { return std::string(); });
  auto clash = second.Start("127.0.0.1", *port);
  ASSERT_FALSE(clash.ok());
  EXPECT_THAT(std::string(clash.status().message()),
              HasSubstr("127.0.0.1:" + std::to_string(*port)));

  EXPECT_EQ(server.Start("127.0.0.1", 0).status().code(), absl::StatusCode::kFailedPrecondition);
  server.Stop();
  server.Stop();  // idempotent
  httplib::Client after("127.0.0.1", *port);
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/healthz"));
}

TEST(MetricsHttpServerTest, StopRightAfterStartDoesNotHang) {
  for (int i = 0; i < 20; ++i) {
    MetricsHttpServer server([] { return std::string(); });
    ASSERT_TRUE(server.Start("127.0.0.1", 0).ok());
  }  // destructor stops
}

TEST(PromtoolTest, FullOutputPassesCheckMetrics) {
  const char* promtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool)) GTEST_SKIP() << "promtool not installed";

  auto m = ServerMetrics::Create();
  ASSERT_TRUE(m.ok());
  (*m)->RecordRequest("/sparsed.v1.Tensors/Upload", "OK", 0.003);
  (*m)->RecordRequest("/sparsed.v1.Tensors/Upload", "NOT_FOUND", 120);
  (*m)->RecordRequest("/odd\"method\\with\nstuff", "UNKNOWN", 0.2);
  (*m)->SetDeviceUsage([] {
    DeviceUsage gpu{"cuda:0", 3, 4096};
    gpu.has_pool = true;
    gpu.pool_reserved_bytes = 1 << 25;
    gpu.pool_used_bytes = 4096;
    return std::vector<DeviceUsage>{{"cpu", 2, 2048}, {"cuda\"0\\", 1, 512}, gpu};
  });
  (*m)->SetTuneStats([] { return TuneStats{.entries = 4, .hits = 10, .misses = 3, .trials = 12}; });
  (*m)->SetKernelCacheStats([] {
    return KernelCacheMetrics{
        .hits = 9, .misses = 2, .compiles = 2, .compile_errors = 0, .bytes = 65536, .entries = 2};
  });
  (*m)->ObserveKernelCompile(1.5);
  std::string text = (*m)->Render();
  ASSERT_THAT(text, HasSubstr("sparsed_kernel_cache_bytes 65536\n"));
  ASSERT_THAT(text, HasSubstr("sparsed_kernel_compile_seconds_count 1\n"));
  ASSERT_THAT(text, HasSubstr(R"(method="/odd\"method\\with\nstuff")"));
  ASSERT_THAT(text, HasSubstr(R"(sparsed_device_pool_reserved_bytes{device="cuda:0"} 33554432)"));
  ASSERT_THAT(text, HasSubstr(R"(sparsed_device_pool_used_bytes{device="cuda:0"} 4096)"));
  for (const char* series :
       {"sparsed_tune_db_entries 4\n", "sparsed_tune_db_hits_total 10\n",
        "sparsed_tune_db_misses_total 3\n", "sparsed_tune_trials_total 12\n"}) {
    ASSERT_THAT(text, HasSubstr(series));
  }

  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("sparsed_metrics_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(file);
    out << text;
  }
  const std::string cmd = std::string(promtool) + " check metrics < " + file.string() + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  int status = ::pclose(pipe);
  std::filesystem::remove(file);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output << "\n--- input ---\n" << text;
  EXPECT_EQ(output, "") << output;  // lint findings are printed even with exit 0
}

}  // namespace
}  // namespace sparsed::server
