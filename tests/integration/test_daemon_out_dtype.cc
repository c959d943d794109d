// SpmmRequest.out_dtype through the real daemon and the C++ client: 16-bit
// inputs default to a 16-bit result, an explicit out_dtype is honoured, and
// bad values are refused naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <random>

#include "daemon_process.h"
#include "sparsed/cast.h"
#include "sparsed/client/client.h"
#include "sparsed/half.h"

namespace sparsed {
namespace {

using client::Client;
using testing::DaemonProcess;
using ::testing::HasSubstr;

class OutDTypeTest : public ::testing::Test {
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
    client_.reset();
    if (daemon_ && daemon_->pid() > 0) {
      auto status = daemon_->Stop(SIGTERM);
      ASSERT_TRUE(status.ok()) << status.status();
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    }
  }

  // Uploads `t` with its values cast to `dtype`; returns the id.
  std::string Upload(const Tensor& t, DType dtype) {
    absl::StatusOr<Tensor> cast = CastValues(t, dtype);
    EXPECT_TRUE(cast.ok()) << cast.status();
    absl::StatusOr<v1::TensorInfo> info = client_->Upload(*cast);
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->id() : "";
  }

  static v1::SpmmRequest Request(const std::string& a, const std::string& b) {
    v1::SpmmRequest req;
    req.mutable_a()->mutable_ref()->set_id(a);
    req.mutable_b()->mutable_ref()->set_id(b);
    return req;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<Client> client_;
};

// A [m, k] CSR with about a third of the entries, and its dense doubles.
Tensor RandomCsr(int64_t m, int64_t k, std::mt19937& rng, std::vector<double>* dense) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::bernoulli_distribution keep(0.35);
  std::vector<int32_t> ptr{0}, col;
  std::vector<float> val;
  dense->assign(m * k, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      if (!keep(rng)) continue;
      col.push_back(static_cast<int32_t>(j));
      val.push_back(u(rng));
      (*dense)[i * k + j] = val.back();
    }
    ptr.push_back(static_cast<int32_t>(col.size()));
  }
  TensorDesc desc{Format::kCsr, DType::kF32, DType::kI32, {m, k}, static_cast<int64_t>(col.size())};
  Tensor t = *Tensor::Allocate(desc);
  std::copy(ptr.begin(), ptr.end(), t.data<int32_t>("row_ptr").begin());
  std::copy(col.begin(), col.end(), t.data<int32_t>("col_idx").begin());
  std::copy(val.begin(), val.end(), t.data<float>("values").begin());
  return t;
}

Tensor RandomDense(int64_t r, int64_t c, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor t = *Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {r, c}, 0});
  for (float& x : t.data<float>("values")) x = u(rng);
  return t;
}

// The exact f32 values a tensor holds after a round trip through `dtype`.
std::vector<double> ValuesAs(DType dtype, const std::vector<double>& dense_f32) {
  std::vector<double> out(dense_f32.size());
  for (size_t i = 0; i < out.size(); ++i) {
    const float f = static_cast<float>(dense_f32[i]);
    out[i] = dtype == DType::kF16 ? HalfToFloat(FloatToHalf(f))
                                  : (dtype == DType::kBF16 ? Bf16ToFloat(FloatToBf16(f)) : f);
  }
  return out;
}

std::vector<double> Multiply(const std::vector<double>& a, const std::vector<double>& b, int64_t m,
                             int64_t k, int64_t n) {
  std::vector<double> c(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t q = 0; q < k; ++q)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += a[i * k + q] * b[q * n + j];
  return c;
}

std::vector<double> DenseOf(const Tensor& t) {
  std::vector<double> v;
  for (float x : t.data<float>("values")) v.push_back(x);
  return v;
}

// A 16-bit result within one unit in the last place of the reference
// rounded to that dtype (f32 first, then nearest even).
void ExpectSixteenBit(const Tensor& got, DType dtype, const std::vector<double>& want) {
  ASSERT_EQ(got.desc().dtype, dtype);
  std::span<const uint16_t> bits = got.data<uint16_t>("values");
  ASSERT_EQ(bits.size(), want.size());
  auto ordered = [](uint16_t b) { return (b & 0x8000) ? -int(b & 0x7fff) : int(b & 0x7fff); };
  for (size_t i = 0; i < want.size(); ++i) {
    const float f = static_cast<float>(want[i]);
    const uint16_t ref = dtype == DType::kF16 ? FloatToHalf(f) : FloatToBf16(f);
    EXPECT_LE(std::abs(ordered(bits[i]) - ordered(ref)), 1)
        << "at " << i << ": bits " << bits[i] << " vs " << ref << " (" << want[i] << ")";
  }
}

void ExpectF32(const Tensor& got, const std::vector<double>& want) {
  ASSERT_EQ(got.desc().dtype, DType::kF32);
  std::span<const float> x = got.data<float>("values");
  ASSERT_EQ(x.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(x[i], want[i], 1e-4 * (1 + std::abs(want[i]))) << i;
  }
}

TEST_F(OutDTypeTest, SixteenBitInputsDefaultToTheirDtypeAndOutDTypeIsHonoured) {
  std::mt19937 rng(17);
  const int64_t m = 40, k = 33, n = 12;
  std::vector<double> a_dense;
  const Tensor a = RandomCsr(m, k, rng, &a_dense);
  const Tensor b = RandomDense(k, n, rng);
  const std::vector<double> b_dense = DenseOf(b);

  for (DType in : {DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(in));
    const std::string ia = Upload(a, in), ib = Upload(b, in);
    const std::vector<double> want =
        Multiply(ValuesAs(in, a_dense), ValuesAs(in, b_dense), m, k, n);

    // Unset: the result has the inputs' dtype, held.
    v1::SpmmRequest req = Request(ia, ib);
    absl::StatusOr<v1::OpResult> r = client_->Spmm(req);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->has_tensor());
    EXPECT_EQ(static_cast<int>(r->tensor().desc().dtype()), static_cast<int>(in));
    v1::TensorRef held;
    held.set_id(r->tensor().id());
    auto down = client_->Download(held);
    ASSERT_TRUE(down.ok()) << down.status();
    EXPECT_EQ(down->second.bytes(), m * n * 2);
    ExpectSixteenBit(down->second, in, want);

    // Explicit f32, inline.
    req.set_out_dtype(v1::F32);
    req.mutable_output()->set_inline_(true);
    r = client_->Spmm(req);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(r->has_inline_());
    auto f32 = client::FromInline(r->inline_(), "result");
    ASSERT_TRUE(f32.ok()) << f32.status();
    ExpectF32(*f32, want);

    // The other 16-bit type, inline.
    const DType other = in == DType::kF16 ? DType::kBF16 : DType::kF16;
    req.set_out_dtype(other == DType::kF16 ? v1::F16 : v1::BF16);
    r = client_->Spmm(req);
    ASSERT_TRUE(r.ok()) << r.status();
    auto cross = client::FromInline(r->inline_(), "result");
    ASSERT_TRUE(cross.ok()) << cross.status();
    ExpectSixteenBit(*cross, other, want);
  }
}

TEST_F(OutDTypeTest, F32AndMixedInputsDefaultToF32AndMayAskForF16) {
  std::mt19937 rng(5);
  const int64_t m = 21, k = 17, n = 9;
  std::vector<double> a_dense;
  const Tensor a = RandomCsr(m, k, rng, &a_dense);
  const Tensor b = RandomDense(k, n, rng);
  const std::string a32 = Upload(a, DType::kF32), b32 = Upload(b, DType::kF32);
  const std::string b16 = Upload(b, DType::kF16);

  v1::SpmmRequest req = Request(a32, b32);
  req.mutable_output()->set_inline_(true);
  const std::vector<double> want32 = Multiply(a_dense, DenseOf(b), m, k, n);
  absl::StatusOr<v1::OpResult> r = client_->Spmm(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectF32(*client::FromInline(r->inline_(), "result"), want32);

  req.set_out_dtype(v1::F16);
  r = client_->Spmm(req);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectSixteenBit(*client::FromInline(r->inline_(), "result"), DType::kF16, want32);

  // f32 x f16: f32 unless asked otherwise.
  v1::SpmmRequest mixed = Request(a32, b16);
  mixed.mutable_output()->set_inline_(true);
  r = client_->Spmm(mixed);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectF32(*client::FromInline(r->inline_(), "result"),
            Multiply(a_dense, ValuesAs(DType::kF16, DenseOf(b)), m, k, n));
}

TEST_F(OutDTypeTest, InvalidOutDTypeIsRefusedNamingTheField) {
  std::mt19937 rng(9);
  std::vector<double> a_dense;
  const std::string ia = Upload(RandomCsr(6, 5, rng, &a_dense), DType::kF16);
  const std::string ib = Upload(RandomDense(5, 3, rng), DType::kF16);
  for (int bad : {static_cast<int>(v1::I32), static_cast<int>(v1::I64), 42}) {
    v1::SpmmRequest req = Request(ia, ib);
    req.set_out_dtype(static_cast<v1::DType>(bad));
    absl::StatusOr<v1::OpResult> r = client_->Spmm(req);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("out_dtype = "));
  }
  // The daemon keeps serving.
  absl::StatusOr<v1::OpResult> ok = client_->Spmm(Request(ia, ib));
  EXPECT_TRUE(ok.ok()) << ok.status();
}

}  // namespace
}  // namespace sparsed
