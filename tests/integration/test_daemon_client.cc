// The real daemon on loopback, driven through the C++ client library.
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

#include "daemon_process.h"
#include "sparsed/client/client.h"
#include "sparsed/convert.h"
#include "sparsed/io/matrix_market.h"

namespace sparsed {
namespace {

using client::Client;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::TestDataDir;
using testing::TestDevice;

// A dense row-major matrix in double, the reference representation.
struct Dense {
  int64_t rows = 0, cols = 0;
  std::vector<double> v;
  double& at(int64_t r, int64_t c) { return v[r * cols + c]; }
  double at(int64_t r, int64_t c) const { return v[r * cols + c]; }
};

// Densifies a COO tensor (i32 or i64 indices) by walking its triplets.
Dense DensifyCoo(const Tensor& coo) {
  Dense d{coo.desc().rows(), coo.desc().cols(), {}};
  d.v.assign(d.rows * d.cols, 0.0);
  VisitIndexType(coo.desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    auto r = coo.data<I>("row_idx");
    auto c = coo.data<I>("col_idx");
    auto x = coo.data<float>("values");
    for (size_t k = 0; k < x.size(); ++k) d.at(r[k], c[k]) += x[k];
  });
  return d;
}

Tensor DenseTensor(int64_t rows, int64_t cols, uint32_t seed, Dense* ref) {
  TensorDesc desc{Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0};
  Tensor t = *Tensor::Allocate(desc);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  ref->rows = rows;
  ref->cols = cols;
  ref->v.resize(rows * cols);
  auto x = t.data<float>("values");
  for (int64_t i = 0; i < rows * cols; ++i) ref->v[i] = x[i] = u(rng);
  return t;
}

Dense Multiply(const Dense& a, const Dense& b) {
  Dense c{a.rows, b.cols, std::vector<double>(a.rows * b.cols, 0.0)};
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t k = 0; k < a.cols; ++k) {
      const double aik = a.at(i, k);
      if (aik == 0) continue;
      for (int64_t j = 0; j < b.cols; ++j) c.at(i, j) += aik * b.at(k, j);
    }
  return c;
}

Dense TransposeOf(const Dense& a) {
  Dense t{a.cols, a.rows, std::vector<double>(a.v.size())};
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < a.cols; ++j) t.at(j, i) = a.at(i, j);
  return t;
}

Dense AbsOf(Dense a) {
  for (double& x : a.v) x = std::abs(x);
  return a;
}

// `magnitude` (|A|·|B| for want = A·B) widens the tolerance by the rounding a
// float32-accumulating backend (the GPU) may add when terms cancel.
void ExpectClose(const Tensor& got, const Dense& want, const Dense* magnitude = nullptr) {
  ASSERT_EQ(got.format(), Format::kDense);
  ASSERT_EQ(got.desc().rows(), want.rows);
  ASSERT_EQ(got.desc().cols(), want.cols);
  auto x = got.data<float>("values");
  for (int64_t i = 0; i < want.rows * want.cols; ++i) {
    const double tol =
        1e-4 * (1 + std::abs(want.v[i])) + (magnitude != nullptr ? 3e-5 * magnitude->v[i] : 0.0);
    ASSERT_NEAR(x[i], want.v[i], tol) << "at flat index " << i;
  }
}

// The device the daemon under test computes on, from GetStatus; checked
// against SPARSED_TEST_DEVICE unless that is "auto".
std::string ActiveDevice(Client& client) {
  auto st = client.GetStatus();
  EXPECT_TRUE(st.ok()) << st.status();
  if (!st.ok()) return "";
  std::string active;
  for (const v1::DeviceInfo& d : st->devices()) {
    if (d.active()) {
      EXPECT_TRUE(active.empty()) << "two active devices: " << active << ", " << d.name();
      active = d.name();
    }
  }
  if (TestDevice() != "auto") EXPECT_EQ(active, TestDevice());
  return active;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = DaemonProcess::Start();
    ASSERT_TRUE(d.ok()) << d.status();
    daemon_ = std::make_unique<DaemonProcess>(std::move(*d));
    auto c = Client::Connect(daemon_->grpc_address(), {.connect_timeout_seconds = 10});
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
  }
  void TearDown() override {
    // Close our channel first: an idle client channel answers the server's
    // shutdown ping only from gRPC's 5 s backup poller, which would delay exit.
    client_.reset();
    if (daemon_ && daemon_->pid() > 0) {
      auto status = daemon_->Stop(SIGTERM);
      ASSERT_TRUE(status.ok()) << status.status();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
          << "daemon exit status " << *status;
    }
  }
  v1::TensorRef Ref(const std::string& id) {
    v1::TensorRef r;
    r.set_id(id);
    return r;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
};

// Densifies a CSR tensor (i32 or i64 indices); `mask` marks the stored
// positions (a stored weight may be exactly zero).
Dense DensifyCsr(const Tensor& csr, Dense* mask = nullptr) {
  Dense d{csr.desc().rows(), csr.desc().cols(), {}};
  d.v.assign(d.rows * d.cols, 0.0);
  if (mask != nullptr) *mask = d;
  VisitIndexType(csr.desc().index_dtype, [&](auto tag) {
    using I = decltype(tag);
    auto ptr = csr.data<I>("row_ptr");
    auto col = csr.data<I>("col_idx");
    auto x = csr.data<float>("values");
    for (int64_t r = 0; r < d.rows; ++r)
      for (I k = ptr[r]; k < ptr[r + 1]; ++k) {
        d.at(r, col[k]) = x[k];
        if (mask != nullptr) mask->at(r, col[k]) = 1.0;
      }
  });
  return d;
}

v1::Operand InlineOperand(const Tensor& t) {
  v1::Operand op;
  *op.mutable_inline_() = *client::ToInline(t);
  return op;
}

// The C++ client's Training calls: a layer's forward, backward and SGD step
// against references computed here from the downloaded weight.
TEST_F(DaemonTest, TrainingLayerForwardBackwardStep) {
  v1::CreateLayerRequest create;
  create.set_name("fc");
  create.set_in_features(9);
  create.set_out_features(5);
  create.set_sparsity(0.5);
  create.set_bias(true);
  create.set_seed(4);
  create.mutable_optimizer()->set_lr(0.2f);
  auto info = client_->CreateLayer(create);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(client::LooksLikeLayerId(info->id())) << info->id();
  const v1::LayerRef layer = client::LayerRefFromArg("fc");

  auto weight = client_->GetParameter(layer, "weight");
  ASSERT_TRUE(weight.ok()) << weight.status();
  EXPECT_EQ(weight->desc().nnz, info->nnz());
  Dense mask;
  const Dense w = DensifyCsr(*weight, &mask);
  auto bias_t = client_->GetParameter(layer, "bias");
  ASSERT_TRUE(bias_t.ok()) << bias_t.status();
  auto bias = bias_t->data<float>("values");

  Dense x, dy;
  Tensor xt = DenseTensor(4, 9, 21, &x);
  Tensor dyt = DenseTensor(4, 5, 22, &dy);
  v1::ForwardRequest fwd;
  *fwd.mutable_layer() = layer;
  *fwd.mutable_x() = InlineOperand(xt);
  fwd.set_call_id("b0");
  fwd.mutable_output()->set_inline_(true);
  auto y = client_->Forward(fwd);
  ASSERT_TRUE(y.ok()) << y.status();
  Dense want_y = Multiply(x, TransposeOf(w));
  for (int64_t i = 0; i < want_y.rows; ++i)
    for (int64_t j = 0; j < want_y.cols; ++j) want_y.at(i, j) += bias[j];
  ExpectClose(*client::FromInline(y->y().inline_()), want_y);

  v1::BackwardRequest bwd;
  *bwd.mutable_layer() = layer;
  *bwd.mutable_dy() = InlineOperand(dyt);
  bwd.set_call_id("b0");
  bwd.set_want_dx(true);
  bwd.mutable_output()->set_name("dx");
  auto dx = client_->Backward(bwd);
  ASSERT_TRUE(dx.ok()) << dx.status();
  ASSERT_TRUE(dx->dx().has_tensor());
  auto dx_held = client_->Download(Ref(dx->dx().tensor().id()));
  ASSERT_TRUE(dx_held.ok()) << dx_held.status();
  ExpectClose(dx_held->second, Multiply(dy, w));
  // The call was consumed.
  bwd.mutable_output()->set_inline_(true);
  EXPECT_EQ(client_->Backward(bwd).status().code(), absl::StatusCode::kNotFound);

  v1::StepRequest step;
  *step.mutable_layer() = layer;
  auto report = client_->Step(step);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->step(), 1);
  EXPECT_EQ(report->nnz(), info->nnz());
  auto stepped = client_->GetParameter(layer, "weight");
  ASSERT_TRUE(stepped.ok()) << stepped.status();
  const Dense grad = Multiply(TransposeOf(dy), x);
  Dense want_w = w;
  for (size_t i = 0; i < want_w.v.size(); ++i) want_w.v[i] -= 0.2 * grad.v[i] * mask.v[i];
  Dense stepped_mask;
  const Dense got_w = DensifyCsr(*stepped, &stepped_mask);
  EXPECT_EQ(stepped_mask.v, mask.v);
  for (size_t i = 0; i < want_w.v.size(); ++i) ASSERT_NEAR(got_w.v[i], want_w.v[i], 1e-5) << i;

  auto listed = client_->ListLayers();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->layers_size(), 1);
  EXPECT_EQ(listed->layers(0).step(), 1);

  // Errors name the field; the daemon keeps serving.
  create.set_name("bad");
  create.set_in_features(0);
  auto bad = client_->CreateLayer(create);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("in_features = 0"));
  EXPECT_EQ(client_->GetLayer(client::LayerRefFromArg("nope")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->ForgetCall(layer, "nope").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(client_->DeleteLayer(layer).ok());
  EXPECT_EQ(client_->GetLayer(layer).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(DaemonTest, TrainingOpsSddmmAndDenseMatmul) {
  Dense a, b, p;
  Tensor at = DenseTensor(6, 4, 31, &a);
  Tensor bt = DenseTensor(4, 5, 32, &b);
  // A pattern: every entry of a random dense [6, 5] above 0.3, held as CSR.
  Tensor pdense = DenseTensor(6, 5, 33, &p);
  for (float& v : pdense.data<float>("values")) v = v > 0.3f ? v : 0.0f;
  auto pcsr = Convert(pdense, Format::kCsr);
  ASSERT_TRUE(pcsr.ok()) << pcsr.status();
  auto pinfo = client_->Upload(*pcsr, {.name = "pattern"});
  ASSERT_TRUE(pinfo.ok()) << pinfo.status();

  v1::SddmmRequest sd;
  *sd.mutable_a() = InlineOperand(at);
  *sd.mutable_b() = InlineOperand(bt);
  sd.mutable_pattern()->mutable_ref()->set_name("pattern");
  sd.set_alpha(2.0f);
  sd.mutable_output()->set_inline_(true);
  auto r = client_->Sddmm(sd);
  ASSERT_TRUE(r.ok()) << r.status();
  auto got = client::FromInline(r->inline_());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->format(), Format::kCsr);
  Dense mask;
  const Dense got_d = DensifyCsr(*got, &mask);
  const Dense ab = Multiply(a, b);
  int64_t stored = 0;
  for (int64_t i = 0; i < 6; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      EXPECT_EQ(mask.at(i, j), p.at(i, j) > 0.3 ? 1.0 : 0.0) << i << "," << j;
      stored += mask.at(i, j) != 0;
      EXPECT_NEAR(got_d.at(i, j), mask.at(i, j) * 2.0 * ab.at(i, j), 1e-4);
    }
  EXPECT_EQ(stored, pcsr->desc().nnz);

  v1::DenseMatmulRequest mm;
  *mm.mutable_a() = InlineOperand(at);
  *mm.mutable_b() = InlineOperand(bt);
  mm.set_row_begin(1);
  mm.set_row_end(4);
  mm.mutable_output()->set_inline_(true);
  auto tile = client_->DenseMatmul(mm);
  ASSERT_TRUE(tile.ok()) << tile.status();
  Dense want{3, 5, {}};
  for (int64_t i = 1; i < 4; ++i)
    for (int64_t j = 0; j < 5; ++j) want.v.push_back(ab.at(i, j));
  ExpectClose(*client::FromInline(tile->inline_()), want);

  mm.set_row_end(7);
  auto bad = client_->DenseMatmul(mm);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("row_end"));
}

TEST_F(DaemonTest, RealMatrixUploadSpmmWithEpilogueDownload) {
  auto coo = io::ReadMatrixMarket(TestDataDir() + "/bcsstk13.mtx");
  ASSERT_TRUE(coo.ok()) << coo.status();
  const Dense a = DensifyCoo(*coo);
  auto csr = Convert(*coo, Format::kCsr);
  ASSERT_TRUE(csr.ok()) << csr.status();
  auto a_info = client_->Upload(*csr, {.name = "bcsstk13"});
  ASSERT_TRUE(a_info.ok()) << a_info.status();
  EXPECT_EQ(a_info->desc().nnz(), csr->desc().nnz);

  Dense b, bias;
  Tensor bt = DenseTensor(a.cols, 24, 1, &b);
  Tensor biast = DenseTensor(1, 24, 2, &bias);
  auto b_info = client_->Upload(bt);
  ASSERT_TRUE(b_info.ok()) << b_info.status();

  v1::SpmmRequest req;
  req.mutable_a()->mutable_ref()->set_name("bcsstk13");
  req.mutable_b()->mutable_ref()->set_id(b_info->id());
  req.set_alpha(1e-6f);  // bcsstk13 has entries ~1e6..1e9: keep ReLU meaningful
  *req.mutable_epilogue()->mutable_bias()->mutable_inline_() = *client::ToInline(biast);
  req.mutable_epilogue()->set_relu(true);
  req.mutable_epilogue()->set_clamp_max(50.0f);
  req.mutable_output()->set_name("c");
  auto result = client_->Spmm(req);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->has_tensor());
  EXPECT_EQ(result->tensor().name(), "c");

  auto downloaded = client_->Download(Ref(result->tensor().id()));
  ASSERT_TRUE(downloaded.ok()) << downloaded.status();
  Dense want = Multiply(a, b);
  int clamped = 0, zeroed = 0;
  for (int64_t i = 0; i < want.rows; ++i)
    for (int64_t j = 0; j < want.cols; ++j) {
      double& w = want.at(i, j);
      w = std::min(std::max(1e-6 * w + bias.at(0, j), 0.0), 50.0);
      clamped += w == 50.0;
      zeroed += w == 0.0;
    }
  EXPECT_GT(clamped, 0);  // the epilogue's steps all took effect somewhere
  EXPECT_GT(zeroed, 0);
  Dense magnitude = Multiply(AbsOf(a), AbsOf(b));
  for (double& m : magnitude.v) m *= 1e-6;  // alpha
  ExpectClose(downloaded->second, want, &magnitude);
}

TEST_F(DaemonTest, InlineOperandsTransposesAndSparseRightOperand) {
  // A dense [7, 5] times sparse B^T where B is [9, 5] CSR: C = A B^T, [7, 9].
  Dense a, bdense;
  Tensor at = DenseTensor(7, 5, 3, &a);
  Tensor bd = DenseTensor(9, 5, 4, &bdense);
  for (int64_t i = 0; i < 45; ++i) {
    if (i % 3 != 0) bdense.v[i] = bd.data<float>("values")[i] = 0.0f;
  }
  auto bcsr = Convert(bd, Format::kCsr);
  ASSERT_TRUE(bcsr.ok()) << bcsr.status();
  v1::SpmmRequest req;
  *req.mutable_a()->mutable_inline_() = *client::ToInline(at);
  *req.mutable_b()->mutable_inline_() = *client::ToInline(*bcsr);
  req.set_transpose_b(true);
  req.mutable_output()->set_inline_(true);
  auto result = client_->Spmm(req);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->has_inline_());
  auto c = client::FromInline(result->inline_());
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectClose(*c, Multiply(a, TransposeOf(bdense)));

  // alpha, beta and C: C2 = 2 * A B^T - 0.5 * C.
  v1::SpmmRequest req2 = req;
  req2.set_alpha(2.0f);
  req2.set_beta(-0.5f);
  *req2.mutable_c()->mutable_inline_() = result->inline_();
  auto result2 = client_->Spmm(req2);
  ASSERT_TRUE(result2.ok()) << result2.status();
  Dense want = Multiply(a, TransposeOf(bdense));
  for (double& w : want.v) w = 2 * w - 0.5 * w;
  ExpectClose(*client::FromInline(result2->inline_()), want);
}

TEST_F(DaemonTest, MalformedTensorsAreRejectedAndTheDaemonKeepsServing) {
  // CSR [3, 4] whose row pointers go backwards.
  TensorDesc desc{Format::kCsr, DType::kF32, DType::kI32, {3, 4}, 4};
  Tensor bad = *Tensor::Allocate(desc);
  const int32_t row_ptr[] = {0, 3, 1, 4}, col_idx[] = {0, 1, 2, 3};
  std::copy(std::begin(row_ptr), std::end(row_ptr), bad.data<int32_t>("row_ptr").begin());
  std::copy(std::begin(col_idx), std::end(col_idx), bad.data<int32_t>("col_idx").begin());
  std::fill(bad.data<float>("values").begin(), bad.data<float>("values").end(), 1.0f);
  auto up = client_->Upload(bad);
  EXPECT_EQ(up.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(up.status().message()), HasSubstr("row_ptr"));

  // Column index out of range, inline through Create.
  Tensor bad2 = *Tensor::Allocate(desc);
  const int32_t row_ptr2[] = {0, 1, 2, 4}, col_idx2[] = {0, 1, 2, 9};
  std::copy(std::begin(row_ptr2), std::end(row_ptr2), bad2.data<int32_t>("row_ptr").begin());
  std::copy(std::begin(col_idx2), std::end(col_idx2), bad2.data<int32_t>("col_idx").begin());
  v1::CreateRequest create;
  *create.mutable_tensor() = *client::ToInline(bad2);
  auto created = client_->Create(create);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(created.status().message()), HasSubstr("col_idx"));
  EXPECT_THAT(std::string(created.status().message()), HasSubstr("9"));

  // A desc that lies about sizes: nnz larger than rows*cols.
  v1::CreateRequest lie;
  lie.mutable_tensor()->mutable_desc()->set_format(v1::CSR);
  lie.mutable_tensor()->mutable_desc()->set_dtype(v1::F32);
  lie.mutable_tensor()->mutable_desc()->add_shape(2);
  lie.mutable_tensor()->mutable_desc()->add_shape(2);
  lie.mutable_tensor()->mutable_desc()->set_nnz(1000000000);
  auto lied = client_->Create(lie);
  EXPECT_EQ(lied.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(lied.status().message()), HasSubstr("nnz = 1000000000"));

  // Shape mismatch in SpMM.
  Dense x;
  v1::SpmmRequest req;
  *req.mutable_a()->mutable_inline_() =
      *client::ToInline(*Convert(DenseTensor(3, 4, 5, &x), Format::kCsr));
  *req.mutable_b()->mutable_inline_() = *client::ToInline(DenseTensor(5, 2, 6, &x));
  auto mismatch = client_->Spmm(req);
  EXPECT_EQ(mismatch.status().code(), absl::StatusCode::kInvalidArgument);

  // Unknown handles.
  EXPECT_EQ(client_->GetInfo(Ref("t-0000000000000000")).status().code(),
            absl::StatusCode::kNotFound);
  v1::TensorRef by_name;
  by_name.set_name("nope");
  EXPECT_EQ(client_->Delete(by_name).status().code(), absl::StatusCode::kNotFound);

  auto status = client_->GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  const std::string active = ActiveDevice(*client_);
  EXPECT_EQ(status->backend(), active == "cpu" ? "cpu" : "cuda");
  EXPECT_EQ(status->tensor_count(), 0);
}

// Dense with about `density` of its entries non-zero (the rest exactly 0).
Tensor SparseDenseTensor(int64_t rows, int64_t cols, double density, uint32_t seed, Dense* ref) {
  Tensor t = DenseTensor(rows, cols, seed, ref);
  std::mt19937 rng(seed + 1000);
  std::uniform_real_distribution<double> u(0, 1);
  auto x = t.data<float>("values");
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (u(rng) >= density) ref->v[i] = x[i] = 0.0f;
  }
  return t;
}

TEST_F(DaemonTest, ConvertAndTransposeHoldNewTensorsAndKeepTheSource) {
  Dense a;
  auto src = client_->Upload(SparseDenseTensor(19, 13, 0.3, 7, &a), {.name = "conv-src"});
  ASSERT_TRUE(src.ok()) << src.status();

  v1::ConvertRequest to_csr;
  to_csr.mutable_source()->mutable_ref()->set_name("conv-src");
  to_csr.set_to(v1::CSR);
  to_csr.mutable_output()->set_name("conv-csr");
  auto csr = client_->Convert(to_csr);
  ASSERT_TRUE(csr.ok()) << csr.status();
  ASSERT_TRUE(csr->has_tensor());
  EXPECT_EQ(csr->tensor().desc().format(), v1::CSR);
  EXPECT_EQ(csr->tensor().desc().index_dtype(), v1::I32);  // narrowest by default
  int64_t nonzeros = 0;
  for (double v : a.v) nonzeros += v != 0;
  EXPECT_EQ(csr->tensor().desc().nnz(), nonzeros);

  // CSR -> COO with i64 indices, sent back inline, equals the dense source.
  v1::ConvertRequest to_coo;
  to_coo.mutable_source()->mutable_ref()->set_id(csr->tensor().id());
  to_coo.set_to(v1::COO);
  to_coo.set_index_dtype(v1::I64);
  to_coo.mutable_output()->set_inline_(true);
  auto coo = client_->Convert(to_coo);
  ASSERT_TRUE(coo.ok()) << coo.status();
  ASSERT_TRUE(coo->has_inline_());
  auto coo_t = client::FromInline(coo->inline_());
  ASSERT_TRUE(coo_t.ok()) << coo_t.status();
  EXPECT_EQ(coo_t->desc().index_dtype, DType::kI64);
  EXPECT_EQ(DensifyCoo(*coo_t).v, a.v);

  // Transpose of the CSR, downloaded and densified here.
  v1::TransposeRequest tr;
  tr.mutable_source()->mutable_ref()->set_name("conv-csr");
  auto t = client_->Transpose(tr);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->tensor().desc().format(), v1::CSR);
  auto t_down = client_->Download(Ref(t->tensor().id()));
  ASSERT_TRUE(t_down.ok()) << t_down.status();
  auto t_coo = Convert(t_down->second, Format::kCoo);
  ASSERT_TRUE(t_coo.ok()) << t_coo.status();
  EXPECT_EQ(DensifyCoo(*t_coo).v, TransposeOf(a).v);

  // The source is still there, unchanged.
  auto back = client_->Download(Ref(src->id()));
  ASSERT_TRUE(back.ok()) << back.status();
  auto x = back->second.data<float>("values");
  EXPECT_EQ(std::vector<double>(x.begin(), x.end()), a.v);

  // A request error names its field; the daemon keeps serving.
  to_csr.set_to(static_cast<v1::Format>(9));
  to_csr.mutable_output()->clear_name();
  auto bad = client_->Convert(to_csr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("to = 9"));
  v1::InspectRequest ins;
  ins.mutable_tensor()->set_id("t-0123456789abcdef");
  EXPECT_EQ(client_->Inspect(ins).status().code(), absl::StatusCode::kNotFound);
  auto listed = client_->List();
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->tensors_size(), 3);  // source, CSR, its transpose
}

// Needs the prune and inspect kernels.
TEST_F(DaemonTest, PruneNmAndInspectThroughTheClientLibrary) {
  Dense a;
  auto src = client_->Upload(SparseDenseTensor(8, 16, 0.9, 8, &a));
  ASSERT_TRUE(src.ok()) << src.status();
  v1::PruneRequest prune;
  prune.mutable_source()->mutable_ref()->set_id(src->id());
  prune.mutable_nm()->set_n(2);
  prune.mutable_nm()->set_m(4);
  auto pruned = client_->Prune(prune);
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(pruned->tensor().desc().format(), v1::NM);
  EXPECT_EQ(pruned->tensor().desc().nnz(), 8 * 4 * 2);

  // Reference: in every group of 4 keep the 2 largest |w| (earlier on ties).
  Dense want{a.rows, a.cols, std::vector<double>(a.v.size(), 0.0)};
  for (int64_t r = 0; r < a.rows; ++r) {
    for (int64_t g = 0; g < a.cols; g += 4) {
      std::vector<int64_t> cols = {g, g + 1, g + 2, g + 3};
      std::stable_sort(cols.begin(), cols.end(), [&](int64_t x, int64_t y) {
        return std::abs(a.at(r, x)) > std::abs(a.at(r, y));
      });
      for (int k = 0; k < 2; ++k) want.at(r, cols[k]) = a.at(r, cols[k]);
    }
  }
  v1::ConvertRequest to_coo;
  to_coo.mutable_source()->mutable_ref()->set_id(pruned->tensor().id());
  to_coo.set_to(v1::COO);
  to_coo.mutable_output()->set_inline_(true);
  auto coo = client_->Convert(to_coo);
  ASSERT_TRUE(coo.ok()) << coo.status();
  EXPECT_EQ(DensifyCoo(*client::FromInline(coo->inline_())).v, want.v);

  v1::InspectRequest ins;
  ins.mutable_tensor()->set_id(pruned->tensor().id());
  ins.set_spy_height(4);
  ins.set_spy_width(4);
  auto stats = client_->Inspect(ins);
  ASSERT_TRUE(stats.ok()) << stats.status();
  int64_t nonzeros = 0;
  std::vector<int64_t> cells(16, 0);  // 4 x 4 cells of 2 x 4 entries
  for (int64_t r = 0; r < want.rows; ++r)
    for (int64_t c = 0; c < want.cols; ++c)
      if (want.at(r, c) != 0) {
        ++nonzeros;
        ++cells[(r / 2) * 4 + c / 4];
      }
  EXPECT_EQ(stats->nonzeros(), nonzeros);
  EXPECT_EQ(stats->stored(), 8 * 4 * 2);
  EXPECT_EQ(stats->info().desc().n(), 2);
  EXPECT_EQ(stats->spy().cell_rows(), 2);
  EXPECT_EQ(stats->spy().cell_cols(), 4);
  EXPECT_EQ(std::vector<int64_t>(stats->spy().counts().begin(), stats->spy().counts().end()),
            cells);
}

TEST_F(DaemonTest, NamesListInfoDeleteAndMemoryAccounting) {
  Dense x;
  Tensor t = DenseTensor(10, 10, 7, &x);
  auto first = client_->Upload(t, {.name = "w", .labels = {{"layer", "1"}}});
  ASSERT_TRUE(first.ok()) << first.status();
  auto dup = client_->Upload(t, {.name = "w"});
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kAlreadyExists);
  auto second = client_->Upload(t, {.name = "w2"});
  ASSERT_TRUE(second.ok());
  // Held tensors live where the backend computes.
  EXPECT_EQ(first->device(), ActiveDevice(*client_));

  auto list = client_->List("w");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->tensors_size(), 2);
  EXPECT_EQ(list->tensors(0).name(), "w");
  EXPECT_EQ(list->tensors(0).labels().at("layer"), "1");
  EXPECT_EQ(list->tensors(0).bytes(), 400);

  auto status = client_->GetStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->tensor_count(), 2);
  EXPECT_GE(status->memory_in_use_bytes(), 800);

  v1::TensorRef by_name;
  by_name.set_name("w");
  auto deleted = client_->Delete(by_name);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->bytes_freed(), 400);
  EXPECT_EQ(client_->GetInfo(by_name).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetStatus()->tensor_count(), 1);
}

TEST_F(DaemonTest, CheckpointsThroughTheClientLibrary) {
  Dense xw, xu;
  Tensor w = DenseTensor(6, 5, 21, &xw);
  Tensor u = DenseTensor(3, 4, 22, &xu);
  auto held_w = client_->Upload(w, {.name = "w", .labels = {{"layer", "3"}}});
  auto held_u = client_->Upload(u);  // unnamed
  ASSERT_TRUE(held_w.ok() && held_u.ok());

  auto one = client_->SaveCheckpoint("one", {Ref(held_u->id()), Ref(held_u->id())});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->name(), "one");
  EXPECT_EQ(one->tensors(), 1);
  auto all = client_->SaveCheckpoint("all");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->tensors(), 2);
  EXPECT_GT(all->bytes(), 4 * (30 + 12));

  auto list = client_->ListCheckpoints();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->checkpoints_size(), 2);
  EXPECT_EQ(list->checkpoints(0).name(), "all");
  EXPECT_EQ(list->checkpoints(0).tensors(), 2);
  EXPECT_EQ(list->checkpoints(0).bytes(), all->bytes());
  EXPECT_EQ(list->checkpoints(1).name(), "one");
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  EXPECT_NEAR(static_cast<double>(list->checkpoints(0).modified_unix_ms()),
              static_cast<double>(now_ms), 60e3);

  // "w" is held: nothing is restored, nothing changes.
  auto clash = client_->RestoreCheckpoint("all");
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(clash.status().message(), HasSubstr("'w'"));
  EXPECT_EQ(client_->GetStatus()->tensor_count(), 2);

  ASSERT_TRUE(client_->Delete(Ref(held_w->id())).ok());
  ASSERT_TRUE(client_->Delete(Ref(held_u->id())).ok());
  auto restored = client_->RestoreCheckpoint("all");
  ASSERT_TRUE(restored.ok()) << restored.status();
  ASSERT_EQ(restored->restored_size(), 2);
  ASSERT_EQ(restored->id_map_size(), 2);
  ASSERT_TRUE(restored->id_map().contains(held_w->id()));
  ASSERT_TRUE(restored->id_map().contains(held_u->id()));
  for (const auto& [saved, ref] : std::vector<std::pair<std::string, const Dense*>>{
           {held_w->id(), &xw}, {held_u->id(), &xu}}) {
    const std::string new_id = restored->id_map().at(saved);
    EXPECT_NE(new_id, saved);
    auto got = client_->Download(Ref(new_id));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->first.device(), ActiveDevice(*client_));
    auto values = got->second.data<float>("values");
    ASSERT_EQ(values.size(), ref->v.size());
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(values[i], ref->v[i]) << i;
  }
  v1::TensorRef by_name;
  by_name.set_name("w");
  auto info = client_->GetInfo(by_name);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->labels().at("layer"), "3");
  EXPECT_EQ(info->id(), restored->id_map().at(held_w->id()));

  EXPECT_TRUE(client_->DeleteCheckpoint("one").ok());
  EXPECT_EQ(client_->DeleteCheckpoint("one").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->RestoreCheckpoint("one").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->SaveCheckpoint("bad/name").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->SaveCheckpoint("x", {Ref("t-0000000000000000")}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->ListCheckpoints()->checkpoints_size(), 1);
}

TEST_F(DaemonTest, MetricsCountRequestsAndPassPromtool) {
  ASSERT_TRUE(client_->GetStatus().ok());
  EXPECT_FALSE(client_->GetInfo(Ref("t-0000000000000001")).ok());
  const std::string& addr = daemon_->metrics_address();
  httplib::Client http(addr.substr(0, addr.rfind(':')),
                       std::stoi(addr.substr(addr.rfind(':') + 1)));
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res) << "GET /metrics failed";
  EXPECT_EQ(res->status, 200);
  const std::string body = res->body;
  EXPECT_THAT(body, HasSubstr("sparsed_requests_total{"));
  EXPECT_THAT(body, HasSubstr("/sparsed.v1.Admin/GetStatus"));
  EXPECT_THAT(body, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(body, HasSubstr("sparsed_request_duration_seconds_bucket"));
  EXPECT_THAT(body, HasSubstr("sparsed_process_resident_memory_bytes"));
  const std::string active = ActiveDevice(*client_);
  EXPECT_THAT(body, HasSubstr("sparsed_tensor_bytes{device=\"" + active + "\"}"));
  if (active == "cpu") {
    EXPECT_THAT(body, Not(HasSubstr("sparsed_device_pool_")));
  } else {
    EXPECT_THAT(body, HasSubstr("sparsed_device_pool_reserved_bytes{device=\"" + active + "\"}"));
    EXPECT_THAT(body, HasSubstr("sparsed_device_pool_used_bytes{device=\"" + active + "\"}"));
  }

  if (std::ifstream("/usr/bin/promtool")) {
    const std::string path = ::testing::TempDir() + "/metrics.txt";
    std::ofstream(path) << body;
    EXPECT_EQ(std::system(("/usr/bin/promtool check metrics < " + path).c_str()), 0) << body;
  }
}

// A made-up method name is UNIMPLEMENTED and counted under method="unknown",
// never as a label of its own (issue 17: 20k bogus names made /metrics 123 MB).
TEST_F(DaemonTest, MadeUpMethodsAreLabelledUnknown) {
  grpc::GenericStub stub(client_->channel());
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext ctx;
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1), response;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    const std::string method = "/sparsed.v1.Admin/Bogus" + std::to_string(i);
    stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
      std::lock_guard lock(mu);
      status = s;
      done = true;
      cv.notify_one();
    });
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done; });
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method;
  }
  ASSERT_TRUE(client_->GetStatus().ok());
  const std::string& addr = daemon_->metrics_address();
  httplib::Client http(addr.substr(0, addr.rfind(':')),
                       std::stoi(addr.substr(addr.rfind(':') + 1)));
  auto res = http.Get("/metrics");
  ASSERT_TRUE(res) << "GET /metrics failed";
  EXPECT_THAT(res->body, Not(HasSubstr("Bogus")));
  EXPECT_THAT(res->body,
              HasSubstr("sparsed_requests_total{method=\"unknown\",code=\"UNIMPLEMENTED\"} 50"));
  EXPECT_THAT(res->body, HasSubstr("method=\"/sparsed.v1.Admin/GetStatus\""));
}

// Issue 17: an upload that stops sending held its memory and a thread
// forever. With --upload-idle-timeout-seconds 1 the daemon cancels it and
// frees the memory, and keeps serving.
TEST(UploadIdleTimeout, StalledUploadIsCancelledAndItsMemoryFreed) {
  auto d = DaemonProcess::Start({"--upload-idle-timeout-seconds", "1"});
  ASSERT_TRUE(d.ok()) << d.status();
  auto c = Client::Connect(d->grpc_address(), {.connect_timeout_seconds = 10});
  ASSERT_TRUE(c.ok()) << c.status();
  auto stub = v1::Tensors::NewStub((*c)->channel());
  grpc::ClientContext ctx;
  v1::TensorInfo info;
  std::unique_ptr<grpc::ClientWriter<v1::UploadRequest>> writer = stub->Upload(&ctx, &info);
  v1::UploadRequest header;
  v1::TensorDesc* desc = header.mutable_header()->mutable_desc();
  desc->set_format(v1::DENSE);
  desc->set_dtype(v1::F32);
  desc->add_shape(2048);
  desc->add_shape(2048);  // 16 MiB, allocated when the header arrives
  ASSERT_TRUE(writer->Write(header));
  // The tensor is allocated, then freed once the upload is cancelled.
  bool allocated = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = (*c)->GetStatus();
    ASSERT_TRUE(st.ok()) << st.status();
    if (st->memory_in_use_bytes() >= (int64_t{16} << 20)) allocated = true;
    if (allocated && st->memory_in_use_bytes() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(allocated);
  auto st = (*c)->GetStatus();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->memory_in_use_bytes(), 0) << "the stalled upload still holds its memory";
  writer->WritesDone();
  const grpc::Status finished = writer->Finish();
  EXPECT_FALSE(finished.ok());
  EXPECT_EQ(st->tensor_count(), 0);
  auto stopped = d->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(WIFEXITED(*stopped) && WEXITSTATUS(*stopped) == 0) << *stopped;
}

TEST_F(DaemonTest, HealthServiceReportsServing) {
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest; the reply
  // HealthCheckResponse{status: SERVING = 1} encodes as the bytes 08 01.
  grpc::GenericStub stub(client_->channel());
  grpc::ClientContext ctx;
  // An empty ByteBuffer is not a valid message to send; wrap an empty slice.
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard lock(mu);
                   status = s;
                   done = true;
                   cv.notify_one();
                 });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return done; });
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(DaemonTest, SigtermFinishesInFlightCallAndExitsZero) {
  // A multiply big enough to be in flight when SIGTERM arrives.
  const int64_t n = 400000, k = 40, per_row = 64;
  TensorDesc desc{Format::kCsr, DType::kF32, DType::kI32, {n, n}, n * per_row};
  Tensor a = *Tensor::Allocate(desc);
  auto rp = a.data<int32_t>("row_ptr");
  auto ci = a.data<int32_t>("col_idx");
  auto v = a.data<float>("values");
  for (int64_t r = 0; r <= n; ++r) rp[r] = static_cast<int32_t>(r * per_row);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < per_row; ++j) {
      ci[r * per_row + j] = static_cast<int32_t>((j * (n / per_row) + r % 97));
      v[r * per_row + j] = 1.0f;
    }
  Dense bd;
  Tensor b = DenseTensor(n, k, 8, &bd);
  auto ai = client_->Upload(a);
  ASSERT_TRUE(ai.ok()) << ai.status();
  auto bi = client_->Upload(b);
  ASSERT_TRUE(bi.ok()) << bi.status();
  v1::SpmmRequest req;
  req.mutable_a()->mutable_ref()->set_id(ai->id());
  req.mutable_b()->mutable_ref()->set_id(bi->id());
  absl::StatusOr<v1::OpResult> result;
  std::thread caller([&] { result = client_->Spmm(req); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto exit_status = daemon_->Stop(SIGTERM);
  caller.join();
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0);
  EXPECT_TRUE(result.ok()) << "in-flight call was not finished: " << result.status();
}

TEST_F(DaemonTest, OneGibibyteTensorRoundTripsWithoutExtraCopies) {
  // 2^28 + 3 floats: just over 1 GiB, and not a whole number of chunks.
  const int64_t numel = (int64_t{1} << 28) + 3;
  TensorDesc desc{Format::kDense, DType::kF32, DType::kI32, {numel}, 0};
  auto big = Tensor::Allocate(desc);
  ASSERT_TRUE(big.ok());
  auto x = big->data<float>("values");
  for (int64_t i = 0; i < numel; ++i) x[i] = static_cast<float>(i % 1000003);
  const int64_t rss_before = *daemon_->PeakRssBytes();
  auto info = client_->Upload(*big);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->bytes(), numel * 4);
  auto back = client_->Download(Ref(info->id()));
  ASSERT_TRUE(back.ok()) << back.status();
  auto y = back->second.data<float>("values");
  ASSERT_EQ(y.size(), static_cast<size_t>(numel));
  EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin()));
  // The daemon held the tensor once plus bounded chunk buffers: well under
  // two copies.
  const int64_t grew = *daemon_->PeakRssBytes() - rss_before;
  EXPECT_LT(grew, numel * 4 + (256 << 20)) << "peak RSS grew by " << grew << " bytes";
}

}  // namespace
}  // namespace sparsed

namespace sparsed {
namespace {

// CSR [rows, cols] with one 1.0 per row, at column r % cols; dense reference too.
Tensor OnePerRowCsr(int64_t rows, int64_t cols, Dense* ref) {
  TensorDesc desc{Format::kCsr, DType::kF32, DType::kI32, {rows, cols}, rows};
  Tensor t = *Tensor::Allocate(desc);
  auto rp = t.data<int32_t>("row_ptr");
  auto ci = t.data<int32_t>("col_idx");
  auto v = t.data<float>("values");
  *ref = Dense{rows, cols, std::vector<double>(rows * cols, 0.0)};
  for (int64_t r = 0; r <= rows; ++r) rp[r] = static_cast<int32_t>(r);
  for (int64_t r = 0; r < rows; ++r) {
    ci[r] = static_cast<int32_t>(r % cols);
    v[r] = 1.0f;
    ref->at(r, r % cols) = 1.0;
  }
  return t;
}

TEST(DaemonMemoryTest, OverTheLimitFailsOnlyThatRequestAndTheDaemonKeepsServing) {
  // The limit applies to the backend's device (host or GPU).
  auto d = DaemonProcess::Start({"--memory-limit-bytes", "100000"});
  ASSERT_TRUE(d.ok()) << d.status();
  auto connected = Client::Connect(d->grpc_address(), {.connect_timeout_seconds = 10});
  ASSERT_TRUE(connected.ok()) << connected.status();
  Client& client = **connected;
  constexpr auto kExhausted = absl::StatusCode::kResourceExhausted;

  Dense w, a, a_small;
  Tensor wt = DenseTensor(100, 150, 3, &w);  // 60000 bytes
  ASSERT_TRUE(client.Upload(wt, {.name = "w"}).ok());
  ASSERT_TRUE(client.Upload(OnePerRowCsr(400, 100, &a), {.name = "a"}).ok());  // 4804 bytes
  ASSERT_TRUE(client.Upload(OnePerRowCsr(10, 100, &a_small), {.name = "a_small"}).ok());

  // A second copy of w does not fit: by upload or by create.
  auto again = client.Upload(wt);
  EXPECT_EQ(again.status().code(), kExhausted) << again.status();
  v1::CreateRequest create;
  *create.mutable_tensor() = *client::ToInline(wt);
  auto created = client.Create(create);
  EXPECT_EQ(created.status().code(), kExhausted) << created.status();

  // Nor does a 240000-byte result, held or inline.
  v1::SpmmRequest big;
  big.mutable_a()->mutable_ref()->set_name("a");
  big.mutable_b()->mutable_ref()->set_name("w");
  auto held = client.Spmm(big);
  EXPECT_EQ(held.status().code(), kExhausted) << held.status();
  big.mutable_output()->set_inline_(true);
  auto inl = client.Spmm(big);
  EXPECT_EQ(inl.status().code(), kExhausted) << inl.status();

  // A small product still computes, correctly, on whatever device serves.
  v1::SpmmRequest small;
  small.mutable_a()->mutable_ref()->set_name("a_small");
  small.mutable_b()->mutable_ref()->set_name("w");
  small.mutable_output()->set_inline_(true);
  auto ok = client.Spmm(small);
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto result = client::FromInline(ok->inline_());
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectClose(*result, Multiply(a_small, w));

  // Freeing w makes room again.
  v1::TensorRef w_ref;
  w_ref.set_name("w");
  ASSERT_TRUE(client.Delete(w_ref).ok());
  auto after = client.Upload(wt);
  EXPECT_TRUE(after.ok()) << after.status();
  auto status = client.GetStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->tensor_count(), 3);

  connected->reset();  // close the channel before SIGTERM (see DaemonTest::TearDown)
  auto exit_status = d->Stop(SIGTERM);
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_TRUE(WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0);
}

}  // namespace
}  // namespace sparsed
