// The requests the load tool sends. An Op sets up what it needs on the daemon
// once (resident tensors), then each client thread calls Run repeatedly on
// its own connection; TearDown deletes what SetUp made.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "load_stats.h"
#include "sparsed/client/client.h"

namespace sparsed::load {

struct OpOptions {
  std::string name;              // spmm_tiny | upload | download | dnn_graph
  int64_t size_bytes = 1 << 20;  // upload/download: tensor size
  int tiny_rows = 64;            // spmm_tiny: A is rows x rows CSR at 5%, B rows x 8 dense
  // dnn_graph: the Sparse DNN network (bench/dnn_graph) as one Graphs.Run:
  // Y = clamp(relu(Y·W_i + bias), 0, 32) over `dnn_layers` resident
  // neurons x neurons CSR weights with 32 non-zeros per row (1/16 each),
  // bias -0.3, Y0 a resident dense batch x neurons; the result comes back inline.
  int dnn_layers = 30;
  int dnn_neurons = 1024;
  int dnn_batch = 1200;
  // dnn_graph: "yw" multiplies Y·W_i (the Graph Challenge's form); "ywt"
  // holds W_iᵀ and multiplies Y·(W_iᵀ)ᵀ (transpose_b: the F.linear form,
  // docs/PERFORMANCE-GUIDE.md). Same network, same result.
  std::string dnn_form = "yw";
  // dnn_graph: keep the result as a held tensor (deleted again by the same
  // request, a second RPC inside the measured latency) instead of inline.
  bool dnn_keep = false;
};

class Op {
 public:
  virtual ~Op() = default;
  virtual absl::Status SetUp(client::Client& c) = 0;
  // One request on `c`; returns the server's compute time in ms (-1 when the
  // response carries none), or the call's error.
  virtual absl::StatusOr<double> Run(client::Client& c) = 0;
  virtual void TearDown(client::Client& c) = 0;
};

// INVALID_ARGUMENT naming the op for an unknown name or a bad size.
absl::StatusOr<std::unique_ptr<Op>> MakeOp(const OpOptions& options);

}  // namespace sparsed::load
