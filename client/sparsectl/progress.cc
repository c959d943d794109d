#include "progress.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "common.h"

namespace sparsed::client::cli {
namespace {

constexpr auto kDelay = std::chrono::milliseconds(500);     // before the first draw
constexpr auto kInterval = std::chrono::milliseconds(100);  // between draws
constexpr int kWidth = 30;

}  // namespace

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) {
    Draw(last_done_, last_total_);
    std::fputc('\n', stderr);
  }
}

void ProgressBar::Update(int64_t done, int64_t total) {
  last_done_ = done;
  last_total_ = total;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - start_ < kDelay || (drawn_ && now - last_draw_ < kInterval)) return;
  last_draw_ = now;
  Draw(done, total);
}

void ProgressBar::Draw(int64_t done, int64_t total) {
  drawn_ = true;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double fraction = total > 0 ? static_cast<double>(done) / total : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '-');
  const double mb_per_s = seconds > 0 ? done / seconds / 1e6 : 0.0;
  // \r returns to the line start; \033[K clears what a longer line left.
  std::fprintf(stderr, "\r%s [%s] %3d%%  %s / %s  %.1f MB/s\033[K", label_.c_str(), bar.c_str(),
               static_cast<int>(fraction * 100), HumanBytes(done).c_str(),
               HumanBytes(total).c_str(), mb_per_s);
  std::fflush(stderr);
}

}  // namespace sparsed::client::cli
