// Tests' Backend that passes every op to an inner backend (a CPU backend by
// default); a test subclasses it and overrides what it observes or changes
// (counting SpMMs, answering Health() as it sets it, …).
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "sparsed/backend.h"

namespace sparsed::test {

class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner = MakeCpuBackend(1))
      : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }
  absl::Status Health() const override { return inner_->Health(); }
  Device device() const override { return inner_->device(); }
  absl::StatusOr<Tensor> Spmm(const SpmmArgs& a) override { return inner_->Spmm(a); }
  absl::StatusOr<Tensor> Convert(const Tensor& t, Format to, const ConvertOptions& o) override {
    return inner_->Convert(t, to, o);
  }
  absl::StatusOr<Tensor> Transpose(const Tensor& t) override { return inner_->Transpose(t); }
  absl::StatusOr<Tensor> Prune(const Tensor& t, const PruneOptions& o) override {
    return inner_->Prune(t, o);
  }
  absl::StatusOr<Tensor> Sddmm(const SddmmArgs& a) override { return inner_->Sddmm(a); }
  absl::StatusOr<Tensor> DenseMatmul(const DenseMatmulArgs& a) override {
    return inner_->DenseMatmul(a);
  }
  absl::Status OptimizerUpdate(const OptimizerUpdateArgs& a) override {
    return inner_->OptimizerUpdate(a);
  }
  absl::StatusOr<TopKResult> TopK(const Tensor& s, int64_t k, TopKOrder o) override {
    return inner_->TopK(s, k, o);
  }
  absl::Status Axpby(float a, const Tensor& x, float b, Tensor& y) override {
    return inner_->Axpby(a, x, b, y);
  }
  absl::StatusOr<Tensor> ReluBackward(const Tensor& dy, const Tensor& y) override {
    return inner_->ReluBackward(dy, y);
  }
  absl::StatusOr<Tensor> ColumnSums(const Tensor& x) override { return inner_->ColumnSums(x); }
  absl::Status GrowthScores(Tensor& tile, const Tensor& pattern, int64_t row_begin) override {
    return inner_->GrowthScores(tile, pattern, row_begin);
  }
  absl::StatusOr<Tensor> GatherOrZero(const Tensor& src,
                                      const std::vector<int64_t>& index) override {
    return inner_->GatherOrZero(src, index);
  }

 private:
  std::unique_ptr<Backend> inner_;
};

}  // namespace sparsed::test
