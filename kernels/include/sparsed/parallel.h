// A minimal parallel-for over an index range on a fixed set of threads.
#pragma once

#include <cstdint>
#include <functional>

namespace sparsed {

// Splits [0, n) into contiguous chunks of at least `grain` and runs
// body(begin, end) on up to `threads` threads (0 = hardware concurrency).
// Returns when all chunks are done. body must not throw.
void ParallelFor(int64_t n, int64_t grain, int threads,
                 const std::function<void(int64_t, int64_t)>& body);

// As ParallelFor, for loops that build a new result: each thread works
// through its range in pieces (at least `grain`), stops at a piece boundary
// once the calling thread's CancelToken (sparsed/cancel.h) asks, and sees
// that token as its own. body may therefore see smaller ranges than
// ParallelFor gives it (never overlapping, each index once unless stopped).
// After a stop the result is incomplete: return CancelStatus().
void ParallelForCancellable(int64_t n, int64_t grain, int threads,
                            const std::function<void(int64_t, int64_t)>& body);

}  // namespace sparsed
