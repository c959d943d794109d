// Without the CUDA part compiled in, there are no GPUs to list.
#ifndef SPARSED_HAVE_CUDA
#include "sparsed/gpu_info.h"

namespace sparsed {
bool CudaCompiledIn() { return false; }
std::vector<GpuInfo> ListGpus() { return {}; }
}  // namespace sparsed
#endif
