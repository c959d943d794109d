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

}  // namespace sparsed
