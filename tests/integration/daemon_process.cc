#include "daemon_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "sparsed/str_cat.h"

namespace sparsed::testing {

namespace {
std::string EnvOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : std::string(fallback);
}
}  // namespace

std::string DaemonBinary() { return EnvOr("SPARSED_DAEMON_BIN", SPARSED_BIN); }
std::string TestDevice() { return EnvOr("SPARSED_TEST_DEVICE", "cpu"); }
std::string TestDataDir() { return EnvOr("SPARSED_TEST_DATA", SPARSED_TEST_DATA); }

DaemonProcess::DaemonProcess(DaemonProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      dir_(std::move(o.dir_)),
      data_dir_(std::move(o.data_dir_)),
      log_(std::move(o.log_)),
      grpc_(std::move(o.grpc_)),
      metrics_(std::move(o.metrics_)) {}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

absl::StatusOr<DaemonProcess> DaemonProcess::Start(const std::vector<std::string>& extra_args,
                                                   const std::string& data_dir) {
  char tmpl[] = "/tmp/sparsed-it-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  DaemonProcess d;
  d.dir_ = tmpl;
  d.log_ = d.dir_ + "/sparsed.log";
  d.data_dir_ = data_dir.empty() ? d.dir_ + "/data" : data_dir;
  const std::string announce = d.dir_ + "/announce.json";
  std::vector<std::string> args = {
      DaemonBinary(), "--listen",    "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
      "--device",     TestDevice(),  "--data-dir",  d.data_dir_,        "--announce-file",
      announce,       "--log-level", "debug"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    // Child: stdout and stderr to the log (never the test runner's pipes),
    // and die with the test process so no daemon outlives a crashed test.
    const int fd = ::open(d.log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) std::_Exit(126);
    ::dup2(fd, STDOUT_FILENO);
    ::dup2(fd, STDERR_FILENO);
    ::close(fd);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  d.pid_ = pid;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      d.pid_ = -1;
      std::ifstream in(d.log_);
      std::stringstream ss;
      ss << in.rdbuf();
      return absl::InternalError(StrCat("sparsed exited early (status ", status, "): ", ss.str()));
    }
    std::ifstream in(announce);
    if (in) {
      nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (!j.is_discarded()) {
        d.grpc_ = j["grpc"].get<std::string>();
        d.metrics_ = j["metrics"].get<std::string>();
        return d;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return absl::DeadlineExceededError("sparsed did not announce its addresses within 30 s");
}

absl::StatusOr<int> DaemonProcess::Stop(int sig, double timeout_s) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not running");
  ::kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return absl::DeadlineExceededError("daemon did not exit in time");
}

absl::StatusOr<int64_t> DaemonProcess::PeakRssBytes() const {
  std::ifstream in(StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return absl::NotFoundError("VmHWM not found");
}

}  // namespace sparsed::testing
