// The JIT kernel cache and the tune database across a daemon restart, on a
// GPU: a first daemon serves BSR SpMMs (bf16 and f16, with an epilogue),
// compiling tensor-core kernels and tuning; a second daemon on the same data
// dir serves the same calls with 0 compiles and 0 tuning trials, and both
// results equal a float64 reference. Needs SPARSED_TEST_DEVICE=cuda:N (skipped
// otherwise: the CPU backend compiles and tunes nothing).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>

#include <cmath>
#include <random>
#include <regex>

#include "daemon_process.h"
#include "sparsed/cast.h"
#include "sparsed/client/client.h"
#include "sparsed/str_cat.h"

namespace sparsed {
namespace {

using client::Client;
using testing::DaemonProcess;

// A random BSR [m, k] with r × r blocks (about half present) and its dense
// doubles after rounding to `dtype`.
Tensor RandomBsr(int64_t m, int64_t k, int64_t r, DType dtype, std::mt19937& rng,
                 std::vector<double>* dense) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::bernoulli_distribution keep(0.5);
  const int64_t br = m / r, bc = k / r;
  std::vector<int32_t> ptr{0}, col;
  for (int64_t i = 0; i < br; ++i) {
    for (int64_t j = 0; j < bc; ++j) {
      if (keep(rng)) col.push_back(static_cast<int32_t>(j));
    }
    ptr.push_back(static_cast<int32_t>(col.size()));
  }
  TensorDesc d{Format::kBsr, DType::kF32, DType::kI32, {m, k}, static_cast<int64_t>(col.size())};
  d.block_rows = d.block_cols = r;
  Tensor t = *Tensor::Allocate(d);
  std::copy(ptr.begin(), ptr.end(), t.data<int32_t>("block_row_ptr").begin());
  std::copy(col.begin(), col.end(), t.data<int32_t>("block_col_idx").begin());
  for (float& x : t.data<float>("values")) x = u(rng);
  Tensor cast = *CastValues(t, dtype);
  const Tensor back = *CastValues(cast, DType::kF32);
  dense->assign(m * k, 0.0);
  std::span<const float> v = back.data<float>("values");
  for (int64_t i = 0; i < br; ++i) {
    for (int32_t e = ptr[i]; e < ptr[i + 1]; ++e) {
      for (int64_t a = 0; a < r; ++a) {
        for (int64_t b = 0; b < r; ++b)
          (*dense)[(i * r + a) * k + col[e] * r + b] = v[(e * r + a) * r + b];
      }
    }
  }
  return cast;
}

Tensor RandomDense(int64_t rows, int64_t cols, DType dtype, std::mt19937& rng,
                   std::vector<double>* dense) {
  std::uniform_real_distribution<float> u(-1, 1);
  Tensor t = *Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {rows, cols}, 0});
  for (float& x : t.data<float>("values")) x = u(rng);
  Tensor cast = *CastValues(t, dtype);
  const Tensor back = *CastValues(cast, DType::kF32);
  dense->assign(back.data<float>("values").begin(), back.data<float>("values").end());
  return cast;
}

// The value of an unlabelled counter in the daemon's /metrics.
double Metric(const DaemonProcess& d, const std::string& name) {
  const std::string& addr = d.metrics_address();
  httplib::Client http(addr.substr(0, addr.rfind(':')),
                       std::stoi(addr.substr(addr.rfind(':') + 1)));
  auto res = http.Get("/metrics");
  EXPECT_TRUE(res && res->status == 200) << "GET /metrics failed";
  if (!res) return -1;
  std::smatch m;
  const std::regex re("\n" + name + " ([0-9.e+]+)\n");
  EXPECT_TRUE(std::regex_search(res->body, m, re)) << name << " missing";
  return m.empty() ? -1 : std::stod(m[1]);
}

struct Problem {
  DType dtype;
  int64_t r;
  Tensor a, b, bias;
  std::vector<double> want;  // relu(A·B + bias), row-major [m, n]
};

Problem MakeProblem(DType dtype, int64_t r, std::mt19937& rng) {
  const int64_t m = 256, k = 192, n = 64;
  Problem p{dtype, r};
  std::vector<double> a, b, bias;
  p.a = RandomBsr(m, k, r, dtype, rng, &a);
  p.b = RandomDense(k, n, dtype, rng, &b);
  RandomDense(1, n, DType::kF32, rng, &bias);
  p.bias = *Tensor::Allocate({Format::kDense, DType::kF32, DType::kI32, {n}, 0});
  for (int64_t j = 0; j < n; ++j) p.bias.data<float>("values")[j] = static_cast<float>(bias[j]);
  p.want.assign(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = bias[j];
      for (int64_t q = 0; q < k; ++q) s += a[i * k + q] * b[q * n + j];
      p.want[i * n + j] = std::max(s, 0.0);
    }
  }
  return p;
}

// Uploads the operands, runs relu(A·B + bias) with an f32 result inline and
// checks it against the reference.
void RunAndCheck(Client& c, const Problem& p) {
  SCOPED_TRACE(StrCat(DTypeName(p.dtype), " block ", p.r));
  auto ia = c.Upload(p.a), ib = c.Upload(p.b), ibias = c.Upload(p.bias);
  ASSERT_TRUE(ia.ok() && ib.ok() && ibias.ok());
  v1::SpmmRequest req;
  req.mutable_a()->mutable_ref()->set_id(ia->id());
  req.mutable_b()->mutable_ref()->set_id(ib->id());
  req.mutable_epilogue()->mutable_bias()->mutable_ref()->set_id(ibias->id());
  req.mutable_epilogue()->set_relu(true);
  req.set_out_dtype(v1::F32);
  req.mutable_output()->set_inline_(true);
  absl::StatusOr<v1::OpResult> r = c.Spmm(req);
  ASSERT_TRUE(r.ok()) << r.status();
  auto got = client::FromInline(r->inline_(), "result");
  ASSERT_TRUE(got.ok()) << got.status();
  std::span<const float> x = got->data<float>("values");
  ASSERT_EQ(x.size(), p.want.size());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_NEAR(x[i], p.want[i], 2e-3 * (1 + std::abs(p.want[i]))) << "at " << i;
  }
}

TEST(GpuRestart, SecondDaemonCompilesAndTunesNothing) {
  if (testing::TestDevice().rfind("cuda", 0) != 0) {
    GTEST_SKIP() << "needs SPARSED_TEST_DEVICE=cuda:N (is " << testing::TestDevice() << ")";
  }
  std::mt19937 rng(std::random_device{}());
  std::vector<Problem> problems;
  problems.push_back(MakeProblem(DType::kBF16, 64, rng));
  problems.push_back(MakeProblem(DType::kF16, 32, rng));
  const std::vector<std::string> args = {"--bsr-tensor-cores"};

  std::string data_dir;
  {
    auto d = DaemonProcess::Start(args);
    ASSERT_TRUE(d.ok()) << d.status();
    data_dir = d->data_dir();
    auto c = Client::Connect(d->grpc_address(), {.connect_timeout_seconds = 10});
    ASSERT_TRUE(c.ok()) << c.status();
    for (const Problem& p : problems) RunAndCheck(**c, p);
    EXPECT_GE(Metric(*d, "sparsed_kernel_compiles_total"), 2) << "tensor-core kernels compiled";
    EXPECT_GE(Metric(*d, "sparsed_tune_trials_total"), 2) << "variants timed";
    auto st = d->Stop(SIGTERM);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << *st;
  }
  auto d = DaemonProcess::Start(args, data_dir);
  ASSERT_TRUE(d.ok()) << d.status();
  auto c = Client::Connect(d->grpc_address(), {.connect_timeout_seconds = 10});
  ASSERT_TRUE(c.ok()) << c.status();
  for (const Problem& p : problems) RunAndCheck(**c, p);
  EXPECT_EQ(Metric(*d, "sparsed_kernel_compiles_total"), 0);
  EXPECT_EQ(Metric(*d, "sparsed_tune_trials_total"), 0);
  EXPECT_GE(Metric(*d, "sparsed_kernel_cache_hits_total"), 1);
  auto st = d->Stop(SIGTERM);
  ASSERT_TRUE(st.ok()) << st.status();
}

}  // namespace
}  // namespace sparsed
