// Internals of SparseLinear shared by its source files: the layer's state and
// the device/host helpers the pattern changes are built from.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sparsed/backend.h"
#include "sparsed/tensor.h"
#include "sparsed/training.h"

namespace sparsed::train {

// A forward call kept for its backward: the input, and the output when the
// layer has a ReLU (its backward needs where Y > 0).
struct PendingCall {
  Tensor x;
  std::optional<Tensor> y;
};

// SparseLinear::Impl is this (a plain struct, so the free functions below can
// take it without access to SparseLinear's private members).
struct LayerData {
  LayerConfig config;
  Device device;
  int64_t step = 0;
  Tensor weight;               // CSR f32 [out, in]
  std::optional<Tensor> bias;  // dense f32 [out]
  Tensor weight_grad;          // dense f32 [nnz]
  std::optional<Tensor> bias_grad;
  std::map<std::string, Tensor> state;  // "weight.state1", ... (see LayerState)
  std::map<std::string, PendingCall> pending;
  // The last backward batch (X, dZ), for RigL growth and DenseGradient.
  std::optional<Tensor> last_x, last_dz;
};

// A CSR pattern on the host with int64 indices (structure only, no values).
struct HostPattern {
  int64_t rows = 0, cols = 0;
  std::vector<int64_t> row_ptr;  // rows + 1
  std::vector<int64_t> col_idx;  // sorted within each row
  int64_t nnz() const { return static_cast<int64_t>(col_idx.size()); }
};

// A dense f32 [n] of zeros on `device`.
absl::StatusOr<Tensor> Zeros(const Device& device, int64_t n);
// A dense f32 1-D view of all of `t`'s values (shared memory): a CSR's stored
// values or a dense tensor's elements.
absl::StatusOr<Tensor> FlatValues(const Tensor& t);
// The index structure of a CSR tensor on any device, copied to the host.
absl::StatusOr<HostPattern> ReadPattern(const Tensor& csr);
// A CSR tensor on `values`' device with `pattern`'s structure (indices of
// `index_dtype`) and `values` (dense f32 [nnz], shared) as its values.
absl::StatusOr<Tensor> BuildCsr(const HostPattern& pattern, DType index_dtype,
                                const Tensor& values);
// The narrowest index dtype that can index [rows, cols] with nnz entries.
DType IndexDtypeFor(int64_t rows, int64_t cols, int64_t nnz);

// Replaces the layer's pattern: new entry i takes its value and optimizer
// state from old stored entry source[i], or starts at zero when source[i] is
// -1. The weight gradient becomes zeros of the new length.
absl::Status ApplyPattern(Backend& backend, LayerData& layer, const HostPattern& pattern,
                          const std::vector<int64_t>& source);

// Gradual magnitude pruning if it is due at layer.step; true when it ran.
absl::StatusOr<bool> MaybePrune(Backend& backend, LayerData& layer);
// A RigL drop-and-grow if it is due at layer.step; fills report.dropped/grown.
absl::Status MaybeRigl(Backend& backend, LayerData& layer, StepReport& report);

// The initial parameters on the host, generated from config.seed.
struct HostInit {
  HostPattern pattern;
  std::vector<float> values;  // parallel to pattern.col_idx
  std::vector<float> bias;    // out_features, empty without bias
};
absl::StatusOr<HostInit> InitLayer(const LayerConfig& config);

}  // namespace sparsed::train
