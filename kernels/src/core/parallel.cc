#include "sparsed/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "sparsed/cancel.h"

namespace sparsed {
namespace {

// One ParallelFor call: `count` tasks, claimed by index by whoever gets there
// first (the caller and pool workers).
struct Job {
  const std::function<void(int64_t)>* task = nullptr;
  int64_t count = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable finished;

  // Runs claimed tasks until none is left; true if it ran the last one.
  void Work() {
    for (int64_t i; (i = next.fetch_add(1)) < count;) {
      (*task)(i);
      if (done.fetch_add(1) + 1 == count) {
        std::lock_guard lock(mu);
        finished.notify_all();
      }
    }
  }
};

// Threads kept for the life of the process, so that a call costs a hand-off,
// not thread creation (issue 16: thread start-up was most of a tiny SpMM's
// time). The caller always works on its own job too, so a ParallelFor inside
// a task (or all workers busy) cannot deadlock: every task of a job is either
// running somewhere or claimed by its caller.
class WorkerPool {
 public:
  static WorkerPool& Get() {
    static WorkerPool pool(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())) - 1);
    return pool;
  }

  void Run(int64_t count, const std::function<void(int64_t)>& task) {
    auto job = std::make_shared<Job>();
    job->task = &task;
    job->count = count;
    if (!workers_.empty()) {
      std::lock_guard lock(mu_);
      queue_.push_back(job);
    }
    wake_.notify_all();
    job->Work();
    std::unique_lock lock(job->mu);
    job->finished.wait(lock, [&] { return job->done.load() == count; });
  }

  ~WorkerPool() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

 private:
  explicit WorkerPool(int threads) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Loop(); });
  }

  void Loop() {
    std::unique_lock lock(mu_);
    while (true) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::shared_ptr<Job> job = queue_.front();
      // A job leaves the queue once all its tasks are claimed.
      if (job->next.load() >= job->count) {
        queue_.pop_front();
        continue;
      }
      lock.unlock();
      job->Work();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace

void ParallelFor(int64_t n, int64_t grain, int threads,
                 const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = (n + grain - 1) / grain;
  const int workers = static_cast<int>(std::min<int64_t>(threads, max_chunks));
  if (workers <= 1) {
    body(0, n);
    return;
  }
  // Static contiguous split; callers balance work by choosing what an index is.
  const int64_t per = (n + workers - 1) / workers;
  const std::function<void(int64_t)> chunk = [&](int64_t w) {
    const int64_t begin = w * per, end = std::min(n, begin + per);
    if (begin < end) body(begin, end);
  };
  WorkerPool::Get().Run(workers, chunk);
}

void ParallelForCancellable(int64_t n, int64_t grain, int threads,
                            const std::function<void(int64_t, int64_t)>& body) {
  const CancelToken* token = CurrentCancelToken();
  if (token == nullptr) return ParallelFor(n, grain, threads, body);
  grain = std::max<int64_t>(grain, 1);
  ParallelFor(n, grain, threads, [&](int64_t begin, int64_t end) {
    ScopedCancelToken current(token);
    // About 32 pieces per thread: a stop is noticed within 1/32 of the work.
    const int64_t piece = std::max(grain, (end - begin + 31) / 32);
    for (int64_t b = begin; b < end; b += piece) {
      if (token->Requested()) return;
      body(b, std::min(end, b + piece));
    }
  });
}

}  // namespace sparsed
