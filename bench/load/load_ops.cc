#include "load_ops.h"

#include <algorithm>
#include <random>
#include <vector>

#include "sparsed/backend.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::load {
namespace {

absl::StatusOr<Tensor> DenseF32(int64_t rows, int64_t cols, uint32_t seed) {
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(TensorDesc{
                                 Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0}));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  for (float& v : t.data<float>("values")) v = u(rng);
  return t;
}

// rows x rows CSR, each row with ~5% of its entries (at least one).
absl::StatusOr<Tensor> TinyCsr(int64_t rows, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t per_row = std::max<int64_t>(1, rows / 20);
  TensorDesc d{Format::kCsr, DType::kF32, DType::kI32, {rows, rows}, rows * per_row};
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(d));
  auto ptr = t.data<int32_t>("row_ptr");
  auto col = t.data<int32_t>("col_idx");
  auto val = t.data<float>("values");
  const int64_t stride = rows / per_row;
  for (int64_t r = 0; r <= rows; ++r) ptr[r] = static_cast<int32_t>(r * per_row);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t first = static_cast<int64_t>(rng() % static_cast<uint32_t>(stride));
    for (int64_t k = 0; k < per_row; ++k) {
      col[r * per_row + k] = static_cast<int32_t>(first + k * stride);  // sorted, unique
      val[r * per_row + k] = 0.5f + static_cast<float>(k % 7);
    }
  }
  return t;
}

v1::TensorRef Ref(const std::string& id) {
  v1::TensorRef ref;
  ref.set_id(id);
  return ref;
}

class TinySpmm final : public Op {
 public:
  explicit TinySpmm(int rows) : rows_(rows) {}
  absl::Status SetUp(client::Client& c) override {
    ASSIGN_OR_RETURN(Tensor a, TinyCsr(rows_, 1));
    ASSIGN_OR_RETURN(Tensor b, DenseF32(rows_, 8, 2));
    ASSIGN_OR_RETURN(v1::TensorInfo ia, c.Upload(a));
    ASSIGN_OR_RETURN(v1::TensorInfo ib, c.Upload(b));
    a_ = ia.id();
    b_ = ib.id();
    *request_.mutable_a()->mutable_ref() = Ref(a_);
    *request_.mutable_b()->mutable_ref() = Ref(b_);
    request_.mutable_output()->set_inline_(true);
    return absl::OkStatus();
  }
  absl::StatusOr<double> Run(client::Client& c) override {
    ASSIGN_OR_RETURN(v1::OpResult r, c.Spmm(request_));
    return r.elapsed_ms();
  }
  void TearDown(client::Client& c) override {
    (void)c.Delete(Ref(a_));
    (void)c.Delete(Ref(b_));
  }

 private:
  int rows_;
  std::string a_, b_;
  v1::SpmmRequest request_;
};

class Upload final : public Op {
 public:
  explicit Upload(int64_t bytes) : bytes_(bytes) {}
  absl::Status SetUp(client::Client&) override {
    ASSIGN_OR_RETURN(tensor_, DenseF32(1, bytes_ / 4, 3));
    return absl::OkStatus();
  }
  absl::StatusOr<double> Run(client::Client& c) override {
    ASSIGN_OR_RETURN(v1::TensorInfo info, c.Upload(tensor_));
    RETURN_IF_ERROR(c.Delete(Ref(info.id())).status());
    return -1.0;
  }
  void TearDown(client::Client&) override {}

 private:
  int64_t bytes_;
  Tensor tensor_;
};

class Download final : public Op {
 public:
  explicit Download(int64_t bytes) : bytes_(bytes) {}
  absl::Status SetUp(client::Client& c) override {
    ASSIGN_OR_RETURN(Tensor t, DenseF32(1, bytes_ / 4, 4));
    ASSIGN_OR_RETURN(v1::TensorInfo info, c.Upload(t));
    id_ = info.id();
    return absl::OkStatus();
  }
  absl::StatusOr<double> Run(client::Client& c) override {
    ASSIGN_OR_RETURN(auto got, c.Download(Ref(id_)));
    if (got.second.bytes() != bytes_ / 4 * 4) {
      return absl::InternalError(StrCat("downloaded ", got.second.bytes(), " bytes"));
    }
    return -1.0;
  }
  void TearDown(client::Client& c) override { (void)c.Delete(Ref(id_)); }

 private:
  int64_t bytes_;
  std::string id_;
};

// neurons x neurons CSR with `per_row` distinct columns per row, values 1/16.
absl::StatusOr<Tensor> DnnWeight(int64_t neurons, int64_t per_row, uint32_t seed) {
  std::mt19937 rng(seed);
  TensorDesc d{Format::kCsr, DType::kF32, DType::kI32, {neurons, neurons}, neurons * per_row};
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(d));
  auto ptr = t.data<int32_t>("row_ptr");
  auto col = t.data<int32_t>("col_idx");
  auto val = t.data<float>("values");
  std::vector<int32_t> all(neurons);
  for (int64_t r = 0; r <= neurons; ++r) ptr[r] = static_cast<int32_t>(r * per_row);
  for (int64_t r = 0; r < neurons; ++r) {
    for (int64_t i = 0; i < neurons; ++i) all[i] = static_cast<int32_t>(i);
    for (int64_t k = 0; k < per_row; ++k) {  // a partial shuffle picks per_row columns
      std::swap(all[k], all[k + rng() % static_cast<uint32_t>(neurons - k)]);
    }
    std::sort(all.begin(), all.begin() + per_row);
    for (int64_t k = 0; k < per_row; ++k) {
      col[r * per_row + k] = all[k];
      val[r * per_row + k] = 1.0f / 16;
    }
  }
  return t;
}

class DnnGraph final : public Op {
 public:
  DnnGraph(int layers, int neurons, int batch, bool transposed, bool keep)
      : layers_(layers), neurons_(neurons), batch_(batch), transposed_(transposed), keep_(keep) {}
  absl::Status SetUp(client::Client& c) override {
    ASSIGN_OR_RETURN(Tensor y0, DenseF32(batch_, neurons_, 5));
    for (float& v : y0.data<float>("values")) v = v > 0.5f ? 1.0f : 0.0f;  // sparse 0/1 input
    ASSIGN_OR_RETURN(v1::TensorInfo iy, c.Upload(y0));
    ids_.push_back(iy.id());
    ASSIGN_OR_RETURN(Tensor bias, Tensor::Allocate(TensorDesc{
                                      Format::kDense, DType::kF32, DType::kI32, {neurons_}, 0}));
    for (float& v : bias.data<float>("values")) v = -0.3f;
    ASSIGN_OR_RETURN(v1::TensorInfo ib, c.Upload(bias));
    ids_.push_back(ib.id());
    v1::GraphOp* op = request_.add_ops();
    op->set_name("dnn");
    v1::Repeat* r = op->mutable_repeat();
    r->set_times(layers_);
    *r->mutable_init()->mutable_ref() = Ref(iy.id());
    r->set_carry("y");
    r->add_params("w");
    for (int i = 0; i < layers_; ++i) {
      ASSIGN_OR_RETURN(Tensor w, DnnWeight(neurons_, std::min(32, neurons_), 100 + i));
      if (transposed_) {
        ASSIGN_OR_RETURN(w, cpu_->Transpose(w));
      }
      ASSIGN_OR_RETURN(v1::TensorInfo iw, c.Upload(w));
      ids_.push_back(iw.id());
      *r->add_bindings()->add_operands()->mutable_ref() = Ref(iw.id());
    }
    v1::GraphOp* body = r->add_body();
    body->set_name("layer");
    v1::GraphSpmm* s = body->mutable_spmm();
    s->mutable_a()->set_output("y");
    s->mutable_b()->set_output("w");
    s->set_transpose_b(transposed_);
    *s->mutable_bias()->mutable_ref() = Ref(ib.id());
    s->set_relu(true);
    s->set_clamp_max(32.0f);
    v1::GraphOutput* out = request_.add_outputs();
    out->set_output("dnn");
    out->set_inline_(!keep_);
    return absl::OkStatus();
  }
  absl::StatusOr<double> Run(client::Client& c) override {
    ASSIGN_OR_RETURN(v1::RunResponse r, c.Run(request_));
    if (r.results_size() != 1 || r.results(0).has_inline_() == keep_) {
      return absl::InternalError(
          StrCat("the graph returned no ", keep_ ? "held" : "inline", " result"));
    }
    if (keep_) RETURN_IF_ERROR(c.Delete(Ref(r.results(0).tensor().id())).status());
    return r.compute_ms();
  }
  void TearDown(client::Client& c) override {
    for (const std::string& id : ids_) (void)c.Delete(Ref(id));
  }

 private:
  int layers_, neurons_, batch_;
  bool transposed_, keep_;
  std::unique_ptr<Backend> cpu_ = MakeCpuBackend(1);  // transposes the weights
  std::vector<std::string> ids_;
  v1::RunRequest request_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Op>> MakeOp(const OpOptions& o) {
  if ((o.name == "upload" || o.name == "download") &&
      (o.size_bytes < 4 || o.size_bytes > (8LL << 30))) {
    return absl::InvalidArgumentError(
        StrCat("--size-bytes = ", o.size_bytes, " must be in [4, 8 GiB] for ", o.name));
  }
  if (o.name == "spmm_tiny") {
    if (o.tiny_rows < 20 || o.tiny_rows > 1 << 16) {
      return absl::InvalidArgumentError(
          StrCat("--tiny-rows = ", o.tiny_rows, " must be in [20, 65536]"));
    }
    return std::make_unique<TinySpmm>(o.tiny_rows);
  }
  if (o.name == "upload") return std::make_unique<Upload>(o.size_bytes);
  if (o.name == "download") return std::make_unique<Download>(o.size_bytes);
  if (o.name == "dnn_graph") {
    if (o.dnn_layers < 1 || o.dnn_layers > 1920) {
      return absl::InvalidArgumentError(
          StrCat("--dnn-layers = ", o.dnn_layers, " must be in [1, 1920]"));
    }
    if (o.dnn_neurons < 1 || o.dnn_neurons > 65536) {
      return absl::InvalidArgumentError(
          StrCat("--dnn-neurons = ", o.dnn_neurons, " must be in [1, 65536]"));
    }
    if (o.dnn_batch < 1 || o.dnn_batch > 65536) {
      return absl::InvalidArgumentError(
          StrCat("--dnn-batch = ", o.dnn_batch, " must be in [1, 65536]"));
    }
    if (o.dnn_form != "yw" && o.dnn_form != "ywt") {
      return absl::InvalidArgumentError(
          StrCat("--dnn-form = '", o.dnn_form, "' must be yw or ywt"));
    }
    return std::make_unique<DnnGraph>(o.dnn_layers, o.dnn_neurons, o.dnn_batch, o.dnn_form == "ywt",
                                      o.dnn_keep);
  }
  return absl::InvalidArgumentError(
      StrCat("--op = '", o.name, "' is not one of spmm_tiny, upload, download, dnn_graph"));
}

}  // namespace sparsed::load
