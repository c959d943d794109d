// What CUDA devices this process can see (empty without a GPU or without the
// CUDA part compiled in). Never fails: errors mean "no devices".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sparsed {

struct GpuInfo {
  int index = 0;
  std::string name;  // e.g. "NVIDIA H100 80GB HBM3"
  int cc_major = 0, cc_minor = 0;
  int64_t total_bytes = 0, free_bytes = 0;
};

std::vector<GpuInfo> ListGpus();
// Whether the CUDA part was compiled into this binary.
bool CudaCompiledIn();

}  // namespace sparsed
