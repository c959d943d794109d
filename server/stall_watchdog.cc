#include "server/stall_watchdog.h"

#include <algorithm>

namespace sparsed::server {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

StallWatchdog::StallWatchdog(std::chrono::duration<double> idle) : idle_(idle) {
  if (idle_.count() > 0) thread_ = std::thread([this] { Loop(); });
}

StallWatchdog::~StallWatchdog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<StallWatchdog::Watch> StallWatchdog::Start(grpc::ServerContextBase* ctx) {
  auto entry = std::make_unique<Entry>();
  entry->ctx = ctx;
  entry->last_ns = NowNs();
  if (idle_.count() > 0) {
    std::lock_guard lock(mu_);
    entries_.insert(entry.get());
  }
  return std::make_unique<Watch>(this, std::move(entry));
}

void StallWatchdog::Loop() {
  const auto period = std::clamp<std::chrono::duration<double>>(
      idle_ / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(250));
  const int64_t idle_ns = static_cast<int64_t>(idle_.count() * 1e9);
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    const int64_t now = NowNs();
    for (Entry* e : entries_) {
      if (!e->cancelled.load() && now - e->last_ns.load() > idle_ns) {
        e->cancelled = true;
        e->ctx->TryCancel();  // the handler's blocked Read returns false
      }
    }
  }
}

StallWatchdog::Watch::Watch(StallWatchdog* dog, std::unique_ptr<Entry> entry)
    : dog_(dog), entry_(std::move(entry)) {}

StallWatchdog::Watch::~Watch() {
  std::lock_guard lock(dog_->mu_);
  dog_->entries_.erase(entry_.get());
}

void StallWatchdog::Watch::Touch() { entry_->last_ns = NowNs(); }

}  // namespace sparsed::server
