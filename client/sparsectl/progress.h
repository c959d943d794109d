// A transfer progress bar on stderr: drawn only when stderr is a terminal and
// the transfer has taken more than half a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "sparsed/client/client.h"

namespace sparsed::client::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();  // ends the line if anything was drawn
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void Update(int64_t done, int64_t total);
  // A callback for Client::Upload/Download bound to this bar.
  ProgressFn Callback() {
    return [this](int64_t done, int64_t total) { Update(done, total); };
  }

 private:
  void Draw(int64_t done, int64_t total);

  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  int64_t last_done_ = 0;
  int64_t last_total_ = 0;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace sparsed::client::cli
