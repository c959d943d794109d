#include "sparsed/op_batch.h"

#include <chrono>
#include <vector>

namespace sparsed {
namespace {

class HostOpBatch final : public OpBatch {
 public:
  int Mark() override {
    marks_.push_back(std::chrono::steady_clock::now());
    return static_cast<int>(marks_.size()) - 1;
  }
  absl::Status Finish() override { return absl::OkStatus(); }
  double MillisecondsBetween(int from, int to) const override {
    if (from < 0 || to < 0 || from >= static_cast<int>(marks_.size()) ||
        to >= static_cast<int>(marks_.size())) {
      return 0.0;
    }
    return std::chrono::duration<double, std::milli>(marks_[to] - marks_[from]).count();
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> marks_;
};

}  // namespace

std::unique_ptr<OpBatch> MakeHostOpBatch() { return std::make_unique<HostOpBatch>(); }

}  // namespace sparsed
