// The 2:4 tensor-core SpMM variants (problem and kernels: nm_tc_kernels.h)
// and their tuning key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "spmm/nm_tc_kernels.h"
#include "spmm/variant.h"

namespace sparsed::cuda {

using NmTcVariant = Variant<NmTcProblem>;

// The 2:4 variants: wgmma.sp tiles nm_wg_<bm>x<bn>_s<stages>… (compute
// capability 9.0, activation stored [n][k]), mma.sp tiles
// nm_tc_<bm>x<bn>x<logical k per stage>, from prefill-sized (128 × 256) to
// decode-sized (16 × 8, split along k so the weights stream through every
// SM), and the CUDA-core decode kernels nm_dec_t<1|2> (n up to 2).
const std::vector<const NmTcVariant*>& NmTcVariants();
inline constexpr std::string_view kNmTcVariantSetVersion = "nm-tc-v7";
// "<device>|spmm|nm2:4|<dtype>><out>|<b_nmajor><c_trans>|m2^a|k2^b|n<bucket>|<version>"
std::string NmTcTuneKey(const std::string& device_desc, const NmTcProblem& p);

}  // namespace sparsed::cuda
