#include "sparsed/parallel.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "sparsed/cancel.h"

namespace sparsed {

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
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  const int64_t per = (n + workers - 1) / workers;
  for (int w = 1; w < workers; ++w) {
    const int64_t begin = w * per, end = std::min(n, begin + per);
    if (begin < end) pool.emplace_back([&body, begin, end] { body(begin, end); });
  }
  body(0, std::min(n, per));
  for (std::thread& t : pool) t.join();
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
