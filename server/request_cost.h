// What a request will cost, estimated from the descriptions of its operands
// before anything runs (issue 17: a 19-byte request could cost hours). The
// unit is one scalar operation (a multiply-add, an entry read or written);
// estimates are upper bounds within a small factor, never exact timings.
// A request over max_request_work is refused with RESOURCE_EXHAUSTED naming
// the estimate, so a cost bomb costs the daemon nothing.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "sparsed/spmm.h"
#include "sparsed/tensor.h"
#include "sparsed/train_ops.h"
#include "sparsed/training.h"

namespace sparsed::server {

// Stored entries a kernel reads: numel of dense, values of sparse formats
// (BSR and N:M with their padding).
double StoredWork(const TensorDesc& d);

double SpmmWork(const SpmmArgs& args);
// The same from descriptions (graphs estimate ops whose operands do not exist yet).
double SpmmDescWork(const TensorDesc& a, const TensorDesc& b, bool transpose_a, bool transpose_b);
// Convert, Transpose, Prune and Inspect of `source` into (at most) `result`
// entries: every stored entry, the row and column pointers, the output.
double UnaryWork(const TensorDesc& source, double result_entries);
// Entries a conversion of `source` to `to` writes: a dense result every
// element, a BSR one (blocks R x C; C 0: square) at most every stored entry's
// block and never more than the padded matrix, the others the stored entries.
double ConvertedEntries(const TensorDesc& source, Format to, int64_t block_rows,
                        int64_t block_cols);
double SddmmWork(const SddmmArgs& args);
double SddmmDescWork(const TensorDesc& a, const TensorDesc& b, const TensorDesc& pattern,
                     bool transpose_a);
double DenseMatmulWork(const DenseMatmulArgs& args);
double DenseMatmulDescWork(const TensorDesc& a, const TensorDesc& b, bool transpose_a,
                           bool transpose_b, int64_t row_begin, int64_t row_end);
// Creating a layer: its initialisation walks every weight (dense_prune) or
// draws the kept ones (random_pattern).
double CreateLayerWork(const train::LayerConfig& config);
// One forward or backward of a layer with `weights` stored on `batch` rows.
double LayerCallWork(int64_t batch, int64_t in_features, int64_t out_features, int64_t weights);

// OK when max_work <= 0 (unlimited) or work <= max_work; else
// RESOURCE_EXHAUSTED: "<what>: estimated cost W operations is more than
// max_request_work = M".
absl::Status CheckWork(double work, double max_work, std::string_view what);

}  // namespace sparsed::server
