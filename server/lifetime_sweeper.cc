#include "server/lifetime_sweeper.h"

#include <spdlog/spdlog.h>

#include "server/lifetime.h"
#include "server/service_context.h"

namespace sparsed::server {

LifetimeSweeper::LifetimeSweeper(ServiceContext& ctx, std::chrono::milliseconds period)
    : ctx_(ctx), period_(period), thread_([this] { Run(); }) {}

LifetimeSweeper::~LifetimeSweeper() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LifetimeSweeper::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  wake_.notify_all();
}

void LifetimeSweeper::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, period_, [this] { return woken_ || stopping_; });
    if (stopping_) break;
    woken_ = false;
    lock.unlock();
    SweepOnce();
    lock.lock();
  }
}

void LifetimeSweeper::SweepOnce() {
  std::lock_guard pass(sweep_mu_);
  const int lapsed = ctx_.sessions->LapseIdle();
  if (lapsed > 0) spdlog::info("{} session(s) ended: no ping within the lease", lapsed);
  const SessionTable& sessions = *ctx_.sessions;
  auto open = [&sessions](const std::string& id) { return sessions.IsOpen(id); };
  const std::vector<TensorStore::Released> gone = ctx_.store.ReleaseEnded(UnixNowMs(), open);
  if (ctx_.regions) ctx_.regions->ReleaseEnded(open);
  if (gone.empty()) return;
  std::lock_guard lock(mu_);
  for (const TensorStore::Released& r : gone) {
    ++released_[r.reason];
    spdlog::debug(
        "released {} ({}: {})", r.tensor->id, r.reason,
        r.tensor->lifetime.session_id.empty() ? "expired" : r.tensor->lifetime.session_id);
  }
}

std::map<std::string, int64_t> LifetimeSweeper::released() const {
  std::lock_guard lock(mu_);
  return released_;
}

}  // namespace sparsed::server
