// mtx_dump FILE.mtx: reads a Matrix Market file with sparsed::io and prints
// "rows cols nnz" then one "row col value" line per entry (0-based indices,
// value as %.9g). Dense (array) files print every element. Used by
// tests/unit/test_mtx_vs_scipy.py to compare against scipy.io.mmread.
#include <cstdio>
#include <string>

#include "sparsed/io/matrix_market.h"

namespace {

template <class I>
void DumpCoo(const sparsed::Tensor& t) {
  auto rows = t.data<I>("row_idx");
  auto cols = t.data<I>("col_idx");
  auto vals = t.data<float>("values");
  for (int64_t k = 0; k < t.desc().nnz; ++k) {
    std::printf("%lld %lld %.9g\n", static_cast<long long>(rows[k]),
                static_cast<long long>(cols[k]), static_cast<double>(vals[k]));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FILE.mtx\n", argv[0]);
    return 2;
  }
  absl::StatusOr<sparsed::Tensor> t = sparsed::io::ReadMatrixMarket(argv[1]);
  if (!t.ok()) {
    std::fprintf(stderr, "%s\n", std::string(t.status().message()).c_str());
    return 1;
  }
  const sparsed::TensorDesc& d = t->desc();
  if (d.format == sparsed::Format::kDense) {
    auto vals = t->data<float>("values");
    std::printf("%lld %lld %lld\n", static_cast<long long>(d.rows()),
                static_cast<long long>(d.cols()), static_cast<long long>(d.numel()));
    for (int64_t i = 0; i < d.rows(); ++i) {
      for (int64_t j = 0; j < d.cols(); ++j) {
        std::printf("%lld %lld %.9g\n", static_cast<long long>(i), static_cast<long long>(j),
                    static_cast<double>(vals[i * d.cols() + j]));
      }
    }
    return 0;
  }
  std::printf("%lld %lld %lld\n", static_cast<long long>(d.rows()),
              static_cast<long long>(d.cols()), static_cast<long long>(d.nnz));
  sparsed::VisitIndexType(d.index_dtype, [&](auto tag) { DumpCoo<decltype(tag)>(*t); });
  return 0;
}
