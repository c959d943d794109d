// Helpers every GPU test shares: whether a GPU is present (tests skip
// without one), and host<->device copies and value casts that fail the test
// (not the program) when they fail.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

#include "sparsed/cast.h"
#include "sparsed/gpu_info.h"
#include "sparsed/tensor.h"

namespace sparsed::gpu_test {

inline bool HaveGpu() { return !ListGpus().empty(); }

// t's values as `to` (a plain copy when t already is).
inline Tensor Cast(const Tensor& t, DType to) {
  absl::StatusOr<Tensor> r = CastValues(t, to);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(r).value() : Tensor();
}

// A copy of t on cuda:0.
inline Tensor ToDevice(const Tensor& t) {
  absl::StatusOr<Tensor> d = t.CopyTo(Device::Cuda(0));
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? std::move(d).value() : Tensor();
}

// The expected output element of a product with the fused epilogue, in
// float64: value = min(relu?(alpha·acc + beta_c + bias), clamp_max), and the
// magnitude the tolerance scales with (the sum of the terms' absolute values;
// `mag` is that of the product's terms). beta_c is beta·C_in[i, j]; each
// optional step is absent when nullopt.
struct Expected {
  double value = 0, magnitude = 0;
};
inline Expected ApplyEpilogue(double acc, double mag, double alpha, std::optional<double> beta_c,
                              std::optional<double> bias, bool relu,
                              std::optional<double> clamp_max) {
  Expected e{alpha * acc, std::abs(alpha) * mag};
  if (beta_c) {
    e.value += *beta_c;
    e.magnitude += std::abs(*beta_c);
  }
  if (bias) {
    e.value += *bias;
    e.magnitude += std::abs(*bias);
  }
  if (relu) e.value = std::max(e.value, 0.0);
  if (clamp_max) e.value = std::min(e.value, *clamp_max);
  return e;
}

}  // namespace sparsed::gpu_test
