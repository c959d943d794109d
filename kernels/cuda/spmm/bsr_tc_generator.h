// Specialisations of the tensor-core BSR kernel (bsr_tc_kernel.cuh): a tile
// configuration and a problem's fixed properties become a KernelSpec, and a
// KernelSpec becomes NVRTC source (defines + the template).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "jit/jit_cache.h"
#include "sparsed/kernel_cache.h"

namespace sparsed::cuda {

inline constexpr char kBsrTcKernel[] = "bsr_spmm_tc";

// A CTA tile: bm × bn of the output with wm × wn warps, `stages` deep.
struct BsrTcTile {
  int bm = 64, bn = 128, wm = 2, wn = 2, stages = 3;
};

// Everything the kernel is specialised on.
struct BsrTcConfig {
  bool bf16 = true;   // values bf16 (else f16)
  int out_kind = 0;   // 0 f32, 1 bf16, 2 f16
  bool idx64 = false; // index arrays int64 (else int32)
  int r = 16, c = 16; // stored block shape
  bool a_trans = false, b_nmajor = false, c_trans = false;
  bool beta = false, bias = false, relu = false, clamp = false;
  BsrTcTile tile;
  int kt = 16;  // k-tile; 0 picks the largest of 64, 48, 32, 16 dividing the k-block
};

KernelSpec BsrTcSpec(const BsrTcConfig& config);
// Parses and checks a spec (INVALID_ARGUMENT naming the parameter).
absl::StatusOr<BsrTcConfig> BsrTcConfigOf(const KernelSpec& spec);
// Dynamic shared memory the kernel needs, in bytes.
int BsrTcSmemBytes(const BsrTcConfig& config);
// NVRTC source of a checked spec.
absl::StatusOr<KernelSource> BsrTcSource(const KernelSpec& spec);

// The generator for every JIT kernel of the backend (dispatches on
// spec.kernel; INVALID_ARGUMENT for a kernel no generator knows).
absl::StatusOr<KernelSource> GenerateKernel(const KernelSpec& spec);

}  // namespace sparsed::cuda
