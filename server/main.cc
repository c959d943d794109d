// sparsed: the sparse tensor daemon. See docs/CONFIG.md for every setting.
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "server/config.h"
#include "server/daemon.h"
#include "server/logging.h"

namespace {

using sparsed::server::Config;

// Defaults < config file < SPARSED_* environment < flags.
absl::Status LoadConfig(const std::string& config_file,
                        const std::map<std::string, std::string>& flags, Config& config) {
  std::string file = config_file;
  if (file.empty()) {
    if (const char* env = std::getenv("SPARSED_CONFIG")) file = env;
  }
  if (!file.empty()) {
    if (absl::Status s = sparsed::server::ApplyConfigFile(config, file); !s.ok()) return s;
  }
  if (absl::Status s = sparsed::server::ApplyConfigEnv(config); !s.ok()) return s;
  return sparsed::server::ApplyConfigFlags(config, flags);
}

bool IsBoolWord(const std::string& v) {
  for (const char* w : {"true", "false", "1", "0", "yes", "no", "on", "off"}) {
    if (v == w) return true;
  }
  return false;
}

// Boolean keys work as plain flags too: "--checkpoint-on-exit" alone means
// "--checkpoint-on-exit true" ("--log-json false" and "--log-json=on" still work).
std::vector<std::string> ExpandBoolFlags(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    out.push_back(args[i]);
    for (const sparsed::server::ConfigKey& key : sparsed::server::ConfigKeys()) {
      if (key.boolean && args[i] == key.flag &&
          (i + 1 == args.size() || !IsBoolWord(args[i + 1]))) {
        out.push_back("true");
      }
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sparsed: a daemon that holds sparse tensors and serves sparse compute over gRPC"};
  std::string config_file;
  app.add_option("--config", config_file,
                 "JSON configuration file (default: $SPARSED_CONFIG; none if unset)");
  app.set_version_flag("--version", SPARSED_VERSION);
  std::map<std::string, std::string> flags;
  for (const sparsed::server::ConfigKey& key : sparsed::server::ConfigKeys()) {
    app.add_option_function<std::string>(
           key.flag, [&flags, json = key.json](const std::string& v) { flags[json] = v; },
           key.help + " (env " + key.env + ")")
        ->type_name("VALUE");
  }
  std::vector<std::string> args = ExpandBoolFlags(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  CLI11_PARSE(app, static_cast<int>(arg_ptrs.size()), arg_ptrs.data());

  Config config;
  if (absl::Status s = LoadConfig(config_file, flags, config); !s.ok()) {
    std::fprintf(stderr, "sparsed: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (absl::Status s = sparsed::server::SetUpLogging(config.log_level, config.log_json); !s.ok()) {
    std::fprintf(stderr, "sparsed: error: %s\n", std::string(s.message()).c_str());
    return 2;
  }

  // Block the shutdown signals in every thread (threads inherit the mask) and
  // take them synchronously below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigset_t with_hangup = signals;
  sigaddset(&with_hangup, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &with_hangup, nullptr);

  auto daemon = sparsed::server::Daemon::Start(config);
  if (!daemon.ok()) {
    spdlog::critical("cannot start: {}", std::string(daemon.status().message()));
    return 1;
  }
  int sig = 0;
  // SIGHUP rereads the token file; SIGTERM/SIGINT begin the shutdown.
  while (sigwait(&with_hangup, &sig) == 0 && sig == SIGHUP) (void)(*daemon)->ReloadAuth();
  spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // A second signal during the orderly shutdown exits at once (issue 17: a
  // daemon stuck behind long calls ignored SIGTERM, even twice).
  std::thread([signals] {
    int again = 0;
    sigwait(&signals, &again);
    spdlog::critical("received a second {}: exiting now, without waiting for calls or saving",
                     again == SIGTERM ? "SIGTERM" : "SIGINT");
    spdlog::shutdown();
    std::_Exit(1);
  }).detach();
  // A failed exit checkpoint is a failed exit: the operator must know that
  // the last state was not saved.
  const absl::Status stopped = (*daemon)->Shutdown();
  if (absl::IsDeadlineExceeded(stopped)) {
    // Calls are still running past the bound: the server cannot be destroyed
    // under them, so leave without running destructors.
    spdlog::shutdown();
    std::_Exit(1);
  }
  return stopped.ok() ? 0 : 1;
}
