#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "server/config.h"
#include "server/logging.h"

namespace sparsed::server {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

#define EXPECT_INVALID(expr, ...)                                   \
  do {                                                              \
    const absl::Status _s = (expr);                                 \
    EXPECT_EQ(_s.code(), absl::StatusCode::kInvalidArgument) << _s; \
    EXPECT_THAT(std::string(_s.message()), AllOf(__VA_ARGS__));     \
  } while (0)

// Compares every field, naming the one that differs.
void ExpectSameConfig(const Config& got, const Config& want) {
  EXPECT_EQ(got.listen, want.listen) << "listen";
  EXPECT_EQ(got.metrics_listen, want.metrics_listen) << "metrics_listen";
  EXPECT_EQ(got.data_dir, want.data_dir) << "data_dir";
  EXPECT_EQ(got.device, want.device) << "device";
  EXPECT_EQ(got.log_level, want.log_level) << "log_level";
  EXPECT_EQ(got.log_json, want.log_json) << "log_json";
  EXPECT_EQ(got.max_message_bytes, want.max_message_bytes) << "max_message_bytes";
  EXPECT_EQ(got.memory_limit_bytes, want.memory_limit_bytes) << "memory_limit_bytes";
  EXPECT_EQ(got.cpu_threads, want.cpu_threads) << "cpu_threads";
  EXPECT_EQ(got.max_inflight_compute, want.max_inflight_compute) << "max_inflight_compute";
  EXPECT_EQ(got.shutdown_grace_seconds, want.shutdown_grace_seconds) << "shutdown_grace_seconds";
  EXPECT_EQ(got.announce_file, want.announce_file) << "announce_file";
  EXPECT_EQ(got.cuda_streams, want.cuda_streams) << "cuda_streams";
  EXPECT_EQ(got.cuda_max_queued, want.cuda_max_queued) << "cuda_max_queued";
  EXPECT_EQ(got.spmm_variant, want.spmm_variant) << "spmm_variant";
  EXPECT_EQ(got.kernel_cache_bytes, want.kernel_cache_bytes) << "kernel_cache_bytes";
  EXPECT_EQ(got.restore, want.restore) << "restore";
  EXPECT_EQ(got.checkpoint_every, want.checkpoint_every) << "checkpoint_every";
  EXPECT_EQ(got.checkpoint_name, want.checkpoint_name) << "checkpoint_name";
  EXPECT_EQ(got.checkpoint_on_exit, want.checkpoint_on_exit) << "checkpoint_on_exit";
  EXPECT_EQ(got.tls_cert, want.tls_cert) << "tls_cert";
  EXPECT_EQ(got.tls_key, want.tls_key) << "tls_key";
  EXPECT_EQ(got.tls_client_ca, want.tls_client_ca) << "tls_client_ca";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A getenv stand-in backed by a map; records every name asked for.
struct FakeEnv {
  std::map<std::string, std::string> vars;
  std::vector<std::string> asked;
  std::function<const char*(const char*)> Fn() {
    return [this](const char* name) -> const char* {
      asked.push_back(name);
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

const char kRepoConfig[] = SPARSED_TEST_DATA "/../../config/sparsed.json";
const char kConfigDoc[] = SPARSED_TEST_DATA "/../../docs/CONFIG.md";

TEST(ConfigTest, DefaultsAreTheDocumentedOnes) {
  // Values as listed in the docs/CONFIG.md table.
  const Config c;
  EXPECT_EQ(c.listen, "127.0.0.1:50051");
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9464");
  EXPECT_FALSE(c.insecure);
  EXPECT_TRUE(c.reflection);
  EXPECT_EQ(c.data_dir, "./sparsed-data");
  EXPECT_EQ(c.device, "auto");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_FALSE(c.log_json);
  EXPECT_EQ(c.max_message_bytes, 67108864);
  EXPECT_EQ(c.memory_limit_bytes, -1);  // auto: 90% of the device
  EXPECT_EQ(c.cpu_threads, 0);
  EXPECT_EQ(c.max_inflight_compute, 64);
  EXPECT_EQ(c.shutdown_grace_seconds, 10.0);
  EXPECT_EQ(c.announce_file, "");
  EXPECT_EQ(c.cuda_streams, 4);
  EXPECT_EQ(c.cuda_max_queued, 64);
  EXPECT_EQ(c.spmm_variant, "");
  EXPECT_EQ(c.kernel_cache_bytes, int64_t{1} << 30);
  EXPECT_EQ(c.restore, "");
  EXPECT_EQ(c.checkpoint_every, 0.0);
  EXPECT_EQ(c.checkpoint_name, "auto");
  EXPECT_FALSE(c.checkpoint_on_exit);
  EXPECT_TRUE(CheckConfig(c).ok()) << CheckConfig(c);
}

TEST(ConfigTest, KeyNamesInEveryForm) {
  std::map<std::string, ConfigKey> by_json;
  std::set<std::string> envs, flags;
  for (const ConfigKey& k : ConfigKeys()) {
    EXPECT_TRUE(by_json.emplace(k.json, k).second) << "duplicate key " << k.json;
    EXPECT_TRUE(envs.insert(k.env).second) << k.env;
    EXPECT_TRUE(flags.insert(k.flag).second) << k.flag;
    EXPECT_FALSE(k.help.empty()) << k.json;
  }
  EXPECT_EQ(by_json.size(), 41u);
  ASSERT_TRUE(by_json.contains("metrics_listen"));
  EXPECT_EQ(by_json["metrics_listen"].env, "SPARSED_METRICS_LISTEN");
  EXPECT_EQ(by_json["metrics_listen"].flag, "--metrics-listen");
  ASSERT_TRUE(by_json.contains("shutdown_grace_seconds"));
  EXPECT_EQ(by_json["shutdown_grace_seconds"].env, "SPARSED_SHUTDOWN_GRACE_SECONDS");
  EXPECT_EQ(by_json["shutdown_grace_seconds"].flag, "--shutdown-grace-seconds");
  ASSERT_TRUE(by_json.contains("cuda_streams"));
  EXPECT_EQ(by_json["cuda_streams"].env, "SPARSED_CUDA_STREAMS");
  EXPECT_EQ(by_json["cuda_streams"].flag, "--cuda-streams");
  ASSERT_TRUE(by_json.contains("cuda_max_queued"));
  EXPECT_EQ(by_json["cuda_max_queued"].env, "SPARSED_CUDA_MAX_QUEUED");
  EXPECT_EQ(by_json["cuda_max_queued"].flag, "--cuda-max-queued");
  ASSERT_TRUE(by_json.contains("spmm_variant"));
  EXPECT_EQ(by_json["spmm_variant"].env, "SPARSED_SPMM_VARIANT");
  EXPECT_EQ(by_json["spmm_variant"].flag, "--spmm-variant");
  ASSERT_TRUE(by_json.contains("tls_client_ca"));
  EXPECT_EQ(by_json["tls_client_ca"].env, "SPARSED_TLS_CLIENT_CA");
  EXPECT_EQ(by_json["tls_client_ca"].flag, "--tls-client-ca");
}

TEST(ConfigTest, CheckpointKeys) {
  Config c;
  absl::Status s = ApplyConfigJson(c,
                                   R"({"restore": "snap-1", "checkpoint_every": 2.5,
                                       "checkpoint_name": "periodic", "checkpoint_on_exit": true})",
                                   "f.json");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.restore, "snap-1");
  EXPECT_EQ(c.checkpoint_every, 2.5);
  EXPECT_EQ(c.checkpoint_name, "periodic");
  EXPECT_TRUE(c.checkpoint_on_exit);
  EXPECT_TRUE(CheckConfig(c).ok()) << CheckConfig(c);
  for (const ConfigKey& k : ConfigKeys()) {
    EXPECT_EQ(k.boolean, k.json == "log_json" || k.json == "checkpoint_on_exit" ||
                             k.json == "bsr_tensor_cores" || k.json == "insecure" ||
                             k.json == "reflection")
        << k.json;
  }

  s = ApplyConfigFlags(c, {{"checkpoint_every", "-1"}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("--checkpoint-every"));
  for (const char* bad : {".hidden", "a/b", ""}) {
    Config d;
    d.checkpoint_name = bad;
    s = CheckConfig(d);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("checkpoint_name")) << bad;
  }
  Config r;
  r.restore = "../x";
  s = CheckConfig(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("restore"));
}

TEST(ConfigTest, CudaKeysInEveryForm) {
  Config c;
  absl::Status s = ApplyConfigJson(
      c, R"({"cuda_streams": 8, "cuda_max_queued": 0, "spmm_variant": "csr_warp"})", "f.json");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.cuda_streams, 8);
  EXPECT_EQ(c.cuda_max_queued, 0);  // no queue: busy streams refuse at once
  EXPECT_EQ(c.spmm_variant, "csr_warp");

  FakeEnv env;
  env.vars = {{"SPARSED_CUDA_STREAMS", "2"},
              {"SPARSED_CUDA_MAX_QUEUED", "500"},
              {"SPARSED_SPMM_VARIANT", ""}};
  ASSERT_TRUE(ApplyConfigEnv(c, env.Fn()).ok());
  EXPECT_EQ(c.cuda_streams, 2);
  EXPECT_EQ(c.cuda_max_queued, 500);
  EXPECT_EQ(c.spmm_variant, "");  // set-but-empty goes back to tuning

  s = ApplyConfigFlags(c, {{"cuda_streams", "16"}, {"spmm_variant", "coo_atomic"}});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.cuda_streams, 16);
  EXPECT_EQ(c.spmm_variant, "coo_atomic");

  EXPECT_INVALID(ApplyConfigJson(c, R"({"cuda_streams": 0})", "f.json"), HasSubstr("cuda_streams"),
                 HasSubstr("'0'"), HasSubstr("minimum"));
  EXPECT_INVALID(ApplyConfigFlags(c, {{"cuda_streams", "5000"}}), HasSubstr("--cuda-streams"),
                 HasSubstr("'5000'"), HasSubstr("maximum"));
  EXPECT_INVALID(ApplyConfigFlags(c, {{"cuda_max_queued", "-1"}}), HasSubstr("--cuda-max-queued"),
                 HasSubstr("'-1'"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"spmm_variant": 3})", "f.json"), HasSubstr("spmm_variant"));
  EXPECT_EQ(c.cuda_streams, 16);
  EXPECT_EQ(c.cuda_max_queued, 500);
  EXPECT_EQ(c.spmm_variant, "coo_atomic");
  EXPECT_TRUE(CheckConfig(c).ok()) << CheckConfig(c);
}

TEST(ConfigTest, KernelCacheBytesInEveryForm) {
  Config c;
  ASSERT_TRUE(ApplyConfigJson(c, R"({"kernel_cache_bytes": 0})", "f.json").ok());
  EXPECT_EQ(c.kernel_cache_bytes, 0);  // no cap
  FakeEnv env;
  env.vars = {{"SPARSED_KERNEL_CACHE_BYTES", "4294967296"}};
  ASSERT_TRUE(ApplyConfigEnv(c, env.Fn()).ok());
  EXPECT_EQ(c.kernel_cache_bytes, int64_t{4} << 30);
  ASSERT_TRUE(ApplyConfigFlags(c, {{"kernel_cache_bytes", "1048576"}}).ok());
  EXPECT_EQ(c.kernel_cache_bytes, 1 << 20);
  EXPECT_INVALID(ApplyConfigFlags(c, {{"kernel_cache_bytes", "-1"}}),
                 HasSubstr("--kernel-cache-bytes"), HasSubstr("'-1'"), HasSubstr("minimum"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"kernel_cache_bytes": "1G"})", "f.json"),
                 HasSubstr("kernel_cache_bytes"), HasSubstr("'1G'"));
  EXPECT_EQ(c.kernel_cache_bytes, 1 << 20);
}

TEST(ConfigJsonTest, SetsEveryValueType) {
  Config c;
  absl::Status s = ApplyConfigJson(c, R"({
    "listen": "127.0.0.1:7000",
    "log_json": true,
    "max_message_bytes": 2097152,
    "memory_limit_bytes": 5000000000,
    "cpu_threads": 3,
    "shutdown_grace_seconds": 2.5,
    "announce_file": "/tmp/a.json"
  })",
                                   "test.json");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.listen, "127.0.0.1:7000");
  EXPECT_TRUE(c.log_json);
  EXPECT_EQ(c.max_message_bytes, 2097152);
  EXPECT_EQ(c.memory_limit_bytes, 5000000000);  // needs 64 bits
  EXPECT_EQ(c.cpu_threads, 3);
  EXPECT_EQ(c.shutdown_grace_seconds, 2.5);
  EXPECT_EQ(c.announce_file, "/tmp/a.json");
  // Keys not in the JSON keep their values.
  EXPECT_EQ(c.device, "auto");
  EXPECT_EQ(c.max_inflight_compute, 64);

  ASSERT_TRUE(ApplyConfigJson(c, R"({"log_json": false, "metrics_listen": ""})", "t").ok());
  EXPECT_FALSE(c.log_json);
  EXPECT_EQ(c.metrics_listen, "");
  EXPECT_TRUE(ApplyConfigJson(c, "{}", "t").ok());
}

TEST(ConfigJsonTest, IntegralDoubleIsAcceptedForIntegerKey) {
  Config c;
  ASSERT_TRUE(ApplyConfigJson(c, R"({"cpu_threads": 4.0, "shutdown_grace_seconds": 3})", "t").ok());
  EXPECT_EQ(c.cpu_threads, 4);
  EXPECT_EQ(c.shutdown_grace_seconds, 3.0);
}

TEST(ConfigJsonTest, DoubleKeepsItsValue) {
  // A JSON number must arrive unchanged, not rounded to 6 significant digits.
  Config c;
  absl::Status s = ApplyConfigJson(c, R"({"shutdown_grace_seconds": 1234567.25})", "t");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.shutdown_grace_seconds, 1234567.25)
      << "got " << std::to_string(c.shutdown_grace_seconds);
  ASSERT_TRUE(ApplyConfigJson(c, R"({"shutdown_grace_seconds": 0.1})", "t").ok());
  EXPECT_EQ(c.shutdown_grace_seconds, 0.1);
}

TEST(ConfigJsonTest, CommentsAreAllowed) {
  Config c;
  absl::Status s = ApplyConfigJson(c, R"({
    // line comment
    "device": "cpu", /* block
    comment */ "log_level": "debug"
  })",
                                   "t");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.device, "cpu");
  EXPECT_EQ(c.log_level, "debug");
}

TEST(ConfigJsonTest, UnknownKeyIsRejectedByName) {
  Config c;
  EXPECT_INVALID(ApplyConfigJson(c, R"({"listen": "h:1", "cpu_thread": 2})", "my.json"),
                 HasSubstr("cpu_thread"), HasSubstr("my.json"), HasSubstr("unknown"));
}

TEST(ConfigJsonTest, NonScalarValuesAreRejected) {
  for (const char* json :
       {R"({"listen": ["a:1"]})", R"({"listen": {"host": "a"}})", R"({"listen": null})"}) {
    Config c;
    EXPECT_INVALID(ApplyConfigJson(c, json, "f.json"), HasSubstr("listen"), HasSubstr("f.json"));
    EXPECT_EQ(c.listen, Config{}.listen) << json;
  }
}

TEST(ConfigJsonTest, NonNumberForNumericKeyIsRejected) {
  Config c;
  EXPECT_INVALID(ApplyConfigJson(c, R"({"cpu_threads": true})", "f.json"), HasSubstr("cpu_threads"),
                 HasSubstr("f.json"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"cpu_threads": "four"})", "f.json"),
                 HasSubstr("cpu_threads"), HasSubstr("'four'"), HasSubstr("not a number"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"cpu_threads": 2.5})", "f.json"), HasSubstr("cpu_threads"),
                 HasSubstr("2.5"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"log_json": "maybe"})", "f.json"), HasSubstr("log_json"),
                 HasSubstr("'maybe'"), HasSubstr("boolean"));
  EXPECT_EQ(c.cpu_threads, 0);
  EXPECT_FALSE(c.log_json);
}

TEST(ConfigJsonTest, NonStringForStringKeyIsRejected) {
  // config.h: "values of the wrong type" are an error. A number or boolean
  // where text is expected is a mistake in the file, not a path named "true".
  Config c;
  EXPECT_INVALID(ApplyConfigJson(c, R"({"data_dir": true})", "f.json"), HasSubstr("data_dir"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"listen": 50051})", "f.json"), HasSubstr("listen"));
  EXPECT_EQ(c.data_dir, Config{}.data_dir);
  EXPECT_EQ(c.listen, Config{}.listen);
}

TEST(ConfigJsonTest, OutOfRangeNumbersNameKeyAndValue) {
  Config c;
  EXPECT_INVALID(ApplyConfigJson(c, R"({"max_message_bytes": 1000})", "f.json"),
                 HasSubstr("f.json"), HasSubstr("max_message_bytes"), HasSubstr("'1000'"),
                 HasSubstr("minimum"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"max_inflight_compute": 0})", "f.json"),
                 HasSubstr("max_inflight_compute"), HasSubstr("'0'"), HasSubstr("minimum"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"memory_limit_bytes": -2})", "f.json"),
                 HasSubstr("memory_limit_bytes"), HasSubstr("'-2'"));
  EXPECT_INVALID(ApplyConfigJson(c, R"({"shutdown_grace_seconds": -0.5})", "f.json"),
                 HasSubstr("shutdown_grace_seconds"), HasSubstr("-0.5"));
  // Does not fit an int.
  EXPECT_INVALID(ApplyConfigJson(c, R"({"cpu_threads": 3000000000})", "f.json"),
                 HasSubstr("cpu_threads"), HasSubstr("3000000000"));
  // The smallest allowed values pass.
  absl::Status s = ApplyConfigJson(
      c,
      R"({"max_message_bytes": 1048576, "max_inflight_compute": 1, "shutdown_grace_seconds": 0})",
      "f.json");
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.max_message_bytes, 1048576);
  EXPECT_EQ(c.max_inflight_compute, 1);
}

TEST(ConfigJsonTest, MalformedJsonIsRejected) {
  Config c;
  EXPECT_INVALID(ApplyConfigJson(c, R"({"listen": )", "broken.json"), HasSubstr("broken.json"));
  EXPECT_INVALID(ApplyConfigJson(c, R"(["listen"])", "arr.json"), HasSubstr("arr.json"),
                 HasSubstr("object"));
}

TEST(ConfigFileTest, MissingFileIsNotFound) {
  Config c;
  absl::Status s = ApplyConfigFile(c, "/nonexistent/sparsed.json");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/sparsed.json"));
}

TEST(ConfigFileTest, ErrorsNameTheFilePath) {
  const std::string path = testing::TempDir() + "/cfg_" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"({"cpu_threads": "x"})";
  Config c;
  EXPECT_INVALID(ApplyConfigFile(c, path), HasSubstr(path), HasSubstr("cpu_threads"));
  std::filesystem::remove(path);
}

TEST(ConfigEnvTest, ReadsSparsedVariables) {
  FakeEnv env;
  env.vars = {{"SPARSED_LISTEN", "10.0.0.1:6000"},
              {"SPARSED_METRICS_LISTEN", ""},
              {"SPARSED_LOG_JSON", "yes"},
              {"SPARSED_CPU_THREADS", "8"},
              {"SPARSED_MEMORY_LIMIT_BYTES", "1073741824"},
              {"SPARSED_SHUTDOWN_GRACE_SECONDS", "0.25"},
              {"LISTEN", "wrong:1"},          // no prefix: ignored
              {"sparsed_device", "cuda:0"}};  // wrong case: ignored
  Config c;
  absl::Status s = ApplyConfigEnv(c, env.Fn());
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.listen, "10.0.0.1:6000");
  EXPECT_EQ(c.metrics_listen, "");  // set-but-empty counts as set
  EXPECT_TRUE(c.log_json);
  EXPECT_EQ(c.cpu_threads, 8);
  EXPECT_EQ(c.memory_limit_bytes, 1073741824);
  EXPECT_EQ(c.shutdown_grace_seconds, 0.25);
  EXPECT_EQ(c.device, "auto");
  // Every key's variable was looked up.
  std::set<std::string> asked(env.asked.begin(), env.asked.end());
  for (const ConfigKey& k : ConfigKeys()) EXPECT_TRUE(asked.contains(k.env)) << k.env;
}

TEST(ConfigEnvTest, BooleanSpellings) {
  for (auto [text, want] : std::vector<std::pair<std::string, bool>>{{"true", true},
                                                                     {"1", true},
                                                                     {"on", true},
                                                                     {"yes", true},
                                                                     {"false", false},
                                                                     {"0", false},
                                                                     {"off", false},
                                                                     {"no", false}}) {
    FakeEnv env;
    env.vars = {{"SPARSED_LOG_JSON", text}};
    Config c;
    c.log_json = !want;
    ASSERT_TRUE(ApplyConfigEnv(c, env.Fn()).ok()) << text;
    EXPECT_EQ(c.log_json, want) << text;
  }
}

TEST(ConfigEnvTest, BadValueNamesVariableAndValue) {
  FakeEnv env;
  env.vars = {{"SPARSED_MAX_INFLIGHT_COMPUTE", "lots"}};
  Config c;
  EXPECT_INVALID(ApplyConfigEnv(c, env.Fn()), HasSubstr("SPARSED_MAX_INFLIGHT_COMPUTE"),
                 HasSubstr("'lots'"));
  env.vars = {{"SPARSED_LOG_JSON", "TRUE!"}};
  EXPECT_INVALID(ApplyConfigEnv(c, env.Fn()), HasSubstr("SPARSED_LOG_JSON"), HasSubstr("TRUE!"));
}

TEST(ConfigFlagsTest, SetsByJsonNameAndNamesTheFlagOnError) {
  Config c;
  absl::Status s = ApplyConfigFlags(
      c, {{"data_dir", "/srv/d"}, {"max_inflight_compute", "5"}, {"log_json", "on"}});
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(c.data_dir, "/srv/d");
  EXPECT_EQ(c.max_inflight_compute, 5);
  EXPECT_TRUE(c.log_json);

  EXPECT_INVALID(ApplyConfigFlags(c, {{"max_inflight_compute", "-3"}}),
                 HasSubstr("--max-inflight-compute"), HasSubstr("'-3'"));
  EXPECT_INVALID(ApplyConfigFlags(c, {{"no_such_key", "1"}}), HasSubstr("no_such_key"));
  EXPECT_EQ(c.max_inflight_compute, 5);
}

TEST(ConfigPrecedenceTest, DefaultsThenFileThenEnvThenFlags) {
  const std::string path = testing::TempDir() + "/prec_" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"({
    // set in the file only
    "data_dir": "/from/file",
    // file and env
    "log_level": "warn",
    // file, env and flag
    "cpu_threads": 2
  })";
  FakeEnv env;
  env.vars = {{"SPARSED_LOG_LEVEL", "debug"},
              {"SPARSED_CPU_THREADS", "4"},
              {"SPARSED_DEVICE", "cpu"}};  // env and flag
  const std::map<std::string, std::string> flags = {
      {"cpu_threads", "6"}, {"device", "auto"}, {"max_inflight_compute", "9"}};

  Config c;
  ASSERT_TRUE(ApplyConfigFile(c, path).ok());
  ASSERT_TRUE(ApplyConfigEnv(c, env.Fn()).ok());
  ASSERT_TRUE(ApplyConfigFlags(c, flags).ok());
  std::filesystem::remove(path);

  Config want;  // defaults for everything else
  want.data_dir = "/from/file";
  want.log_level = "debug";
  want.cpu_threads = 6;
  want.device = "auto";
  want.max_inflight_compute = 9;
  ExpectSameConfig(c, want);
}

TEST(CheckConfigTest, AcceptsGoodValues) {
  Config c;
  c.device = "cpu";
  c.metrics_listen = "";  // disabled
  c.listen = "[::1]:0";
  EXPECT_TRUE(CheckConfig(c).ok()) << CheckConfig(c);
  c.device = "cuda:1";
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    c.log_level = level;
    EXPECT_TRUE(CheckConfig(c).ok()) << level << ": " << CheckConfig(c);
  }
}

TEST(CheckConfigTest, RejectsBadValues) {
  {
    Config c;
    c.device = "gpu";
    EXPECT_INVALID(CheckConfig(c), HasSubstr("'gpu'"), HasSubstr("device"));
  }
  {
    Config c;
    c.log_level = "verbose";
    EXPECT_INVALID(CheckConfig(c), HasSubstr("'verbose'"), HasSubstr("log_level"));
  }
  {
    Config c;
    c.listen = "localhost";
    EXPECT_INVALID(CheckConfig(c), HasSubstr("'localhost'"));
  }
  {
    Config c;
    c.listen = "localhost:65536";
    EXPECT_INVALID(CheckConfig(c), HasSubstr("localhost:65536"));
  }
  {
    Config c;
    c.metrics_listen = "0.0.0.0:http";
    EXPECT_INVALID(CheckConfig(c), HasSubstr("0.0.0.0:http"));
  }
  {
    Config c;
    c.data_dir = "";
    EXPECT_INVALID(CheckConfig(c), HasSubstr("data_dir"));
  }
}

TEST(SplitHostPortTest, Valid) {
  auto hp = SplitHostPort("localhost:50051");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->first, "localhost");
  EXPECT_EQ(hp->second, 50051);

  hp = SplitHostPort("[::1]:80");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->first, "::1");
  EXPECT_EQ(hp->second, 80);

  hp = SplitHostPort("0.0.0.0:0");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->first, "0.0.0.0");
  EXPECT_EQ(hp->second, 0);

  hp = SplitHostPort("h:65535");
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->second, 65535);
}

TEST(SplitHostPortTest, Invalid) {
  for (const char* bad : {"localhost", "localhost:", ":80", "h:70000", "h:65536", "h:-1", "h:8o",
                          "h:80 ", "[::1]", ""}) {
    auto hp = SplitHostPort(bad);
    EXPECT_EQ(hp.status().code(), absl::StatusCode::kInvalidArgument) << "'" << bad << "'";
    if (!hp.ok()) {
      EXPECT_THAT(std::string(hp.status().message()), HasSubstr(std::string("'") + bad + "'"));
    }
  }
}

TEST(RepoConfigTest, ParsesAndRepeatsTheDefaults) {
  Config c;
  absl::Status s = ApplyConfigFile(c, kRepoConfig);
  ASSERT_TRUE(s.ok()) << s;
  ExpectSameConfig(c, Config{});
  EXPECT_TRUE(CheckConfig(c).ok());

  // It documents every key that has a default (announce_file has none).
  const nlohmann::json j = nlohmann::json::parse(ReadFile(kRepoConfig), nullptr,
                                                 /*allow_exceptions=*/false,
                                                 /*ignore_comments=*/true);
  ASSERT_TRUE(j.is_object());
  for (const ConfigKey& k : ConfigKeys()) {
    if (k.json == "announce_file") continue;
    EXPECT_TRUE(j.contains(k.json)) << "config/sparsed.json does not list " << k.json;
  }
}

TEST(ConfigDocTest, EveryKeyIsDocumentedInEachForm) {
  const std::string doc = ReadFile(kConfigDoc);
  ASSERT_FALSE(doc.empty()) << kConfigDoc << " is missing or empty";
  for (const ConfigKey& k : ConfigKeys()) {
    // Backquoted, so "listen" does not match inside "metrics_listen".
    EXPECT_THAT(doc, HasSubstr("`" + k.json + "`"));
    EXPECT_THAT(doc, HasSubstr("`" + k.env + "`"));
    EXPECT_THAT(doc, HasSubstr("`" + k.flag + "`"));
  }
}

}  // namespace
}  // namespace sparsed::server

namespace sparsed::server {
namespace {

TEST(LoggingTest, UnknownLevelIsRejectedWithTheValidOnes) {
  absl::Status s = SetUpLogging("bogus", false);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("'bogus'"));
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("expected trace, debug, info"));
  for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
    EXPECT_TRUE(SetUpLogging(level, false).ok()) << level;
  }
}

}  // namespace
// Issue 17: any client that could reach the port could use everything.
// Protected mode: without authentication only loopback is served, unless
// `insecure` says otherwise.
TEST(ConfigTest, ProtectedModeRefusesOtherAddressesWithoutInsecure) {
  Config c;
  EXPECT_TRUE(CheckProtectedMode(c).ok());  // the default is loopback
  for (const char* ok : {"127.0.0.1:1", "127.9.9.9:0", "localhost:5", "[::1]:7"}) {
    c.listen = ok;
    EXPECT_TRUE(CheckProtectedMode(c).ok()) << ok;
  }
  for (const char* open : {"0.0.0.0:50051", "[::]:1", "10.1.2.3:9", "example.org:1"}) {
    c.listen = open;
    c.insecure = false;
    const absl::Status s = CheckProtectedMode(c);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << open;
    EXPECT_THAT(std::string(s.message()), HasSubstr(open));
    EXPECT_THAT(std::string(s.message()), HasSubstr("--insecure"));
    c.insecure = true;
    EXPECT_TRUE(CheckProtectedMode(c).ok()) << open;
    // Authentication makes any address acceptable: tokens, or client certificates.
    c.insecure = false;
    c.auth_tokens = "/etc/sparsed/tokens";
    EXPECT_TRUE(CheckProtectedMode(c).ok()) << open;
    c.auth_tokens.clear();
    c.tls_client_ca = "/etc/sparsed/ca.pem";
    EXPECT_TRUE(CheckProtectedMode(c).ok()) << open;
    c.tls_client_ca.clear();
  }
}

// Issue 17: the default reserved no limit (47.7 GB on a 24 GB host).
TEST(ConfigTest, MemoryLimitDefaultsToAFractionOfTheDevice) {
  EXPECT_EQ(EffectiveMemoryLimit(-1, 24'000'000'000), 21'600'000'000);
  EXPECT_EQ(EffectiveMemoryLimit(-1, 0), 0);  // unknown total: no limit rather than none allowed
  EXPECT_EQ(EffectiveMemoryLimit(0, 24'000'000'000), 0);
  EXPECT_EQ(EffectiveMemoryLimit(5'000, 24'000'000'000), 5'000);
}

}  // namespace sparsed::server
