// Runs the real sparsed binary as a child process on 127.0.0.1 with ephemeral
// ports for integration tests, and stops it with a signal.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sparsed::testing {

// $SPARSED_DAEMON_BIN, else the sparsed built with this test (SPARSED_BIN).
std::string DaemonBinary();
// $SPARSED_TEST_DEVICE ("cpu", "auto", "cuda:0", ...), else "cpu".
std::string TestDevice();
// $SPARSED_TEST_DATA, else the source tree's tests/data (SPARSED_TEST_DATA).
std::string TestDataDir();

class DaemonProcess {
 public:
  // Starts the daemon (DaemonBinary()) with --listen 127.0.0.1:0
  // --metrics-listen 127.0.0.1:0 --device TestDevice(), a fresh data dir (or
  // `data_dir` when given: a restart on another daemon's data) and
  // `extra_args`; waits until it serves.
  static absl::StatusOr<DaemonProcess> Start(const std::vector<std::string>& extra_args = {},
                                             const std::string& data_dir = "");
  // The data dir it serves from.
  const std::string& data_dir() const { return data_dir_; }

  DaemonProcess(DaemonProcess&& o) noexcept;
  DaemonProcess& operator=(DaemonProcess&&) = delete;
  ~DaemonProcess();  // SIGKILLs a daemon still running

  const std::string& grpc_address() const { return grpc_; }
  const std::string& metrics_address() const { return metrics_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_; }

  // Sends `sig` and waits up to `timeout_s`; returns the exit status
  // (as from waitpid), or DEADLINE_EXCEEDED.
  absl::StatusOr<int> Stop(int sig, double timeout_s = 30);
  // Peak resident memory (VmHWM) in bytes, from /proc.
  absl::StatusOr<int64_t> PeakRssBytes() const;

 private:
  DaemonProcess() = default;
  pid_t pid_ = -1;
  std::string dir_, data_dir_, log_, grpc_, metrics_;
};

}  // namespace sparsed::testing
