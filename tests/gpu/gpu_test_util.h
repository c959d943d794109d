// Helpers every GPU test shares: whether a GPU is present (tests skip
// without one), and host<->device copies and value casts that fail the test
// (not the program) when they fail.
#pragma once

#include <gtest/gtest.h>

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

}  // namespace sparsed::gpu_test
