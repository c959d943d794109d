// C++ port of client/python/train_digits.py, so that the daemon's training
// path can be timed where no Python gRPC or scikit-learn exists (the GPU
// machines). Trains a 64→256→10 MLP on scikit-learn's digits three ways and
// prints one line per run, the Python script's line plus the time per step:
//
//   dense: test accuracy 97.2% (0.4 s); 0.21 ms/step over 900 steps
//   static: ...   first layer in sparsed, 90% sparse, fixed pattern
//   rigl: ...     the same with RigL
//
// The first layer (64→256, ReLU fused) lives in the daemon (Forward with a
// call_id, Backward without dX, Step with grad_scale 1/batch); the output
// layer (256→10, softmax cross-entropy, Adam) and the dense baseline are
// plain float math here, as the NumPy code does them. The data split, the
// output layer's and the dense baseline's initial weights and every epoch's
// batch order come from scripts/export_digits.py, i.e. from the Python
// script's own code and seeds; the daemon draws the sparse layer from the
// same seed. Hyper-parameters and their defaults are the Python script's.
//
//   /usr/bin/python3 scripts/export_digits.py /tmp/digits
//   train_digits_bench --server 127.0.0.1:50051 --data /tmp/digits
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sparsed/client/client.h"
#include "sparsed/io/npy.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::bench {
namespace {

constexpr int64_t kIn = 64, kHidden = 256, kOut = 10;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

struct Options {
  std::string server;
  std::string data;
  std::string runs = "dense,static,rigl";
  int64_t epochs = 20;
  int64_t batch = 32;
  double lr = 3e-3;
  double sparsity = 0.9;
  std::string init = "random_pattern";
  double rigl_alpha = 0.3;
  int64_t rigl_interval = 25;
  double rigl_end = 0.75;
  int64_t seed = 1;
};

// ---------------------------------------------------------------- data

// A .npy file's values (the reader converts every dtype to f32) after checking
// its shape.
absl::StatusOr<std::vector<float>> LoadArray(const std::string& dir, const std::string& name,
                                             const std::vector<int64_t>& shape) {
  const std::string path = dir + "/" + name + ".npy";
  ASSIGN_OR_RETURN(Tensor t, io::ReadNpy(path));
  if (t.desc().shape != shape) {
    return absl::InvalidArgumentError(
        StrCat(path, ": shape ", ShapeString(t.desc().shape), ", expected ", ShapeString(shape)));
  }
  std::span<const float> v = t.data<float>("values");
  return std::vector<float>(v.begin(), v.end());
}

std::vector<int64_t> ToInts(const std::vector<float>& v) {
  return std::vector<int64_t>(v.begin(), v.end());
}

struct Data {
  int64_t n_train = 1437, n_test = 360;
  std::vector<float> x_train, x_test;  // [n, 64]
  std::vector<int64_t> y_train, y_test;
  std::vector<float> out_w;                 // [10, 256]
  std::vector<float> dense_w, dense_b;      // [256, 64], [256]
  std::vector<std::vector<int64_t>> order;  // per epoch, a permutation of [0, n_train)
};

absl::StatusOr<Data> LoadData(const std::string& dir, const Options& opt) {
  Data d;
  ASSIGN_OR_RETURN(std::vector<float> config, LoadArray(dir, "config", {2}));
  if (config[0] != static_cast<float>(opt.seed) || config[1] < static_cast<float>(opt.epochs)) {
    return absl::InvalidArgumentError(
        StrCat(dir, " was exported for --seed ", config[0], " and ", config[1],
               " epochs; this run needs --seed ", opt.seed, " and ", opt.epochs,
               " epochs: run scripts/export_digits.py with --seed/--epochs"));
  }
  const auto epochs = static_cast<int64_t>(config[1]);
  ASSIGN_OR_RETURN(d.x_train, LoadArray(dir, "x_train", {d.n_train, kIn}));
  ASSIGN_OR_RETURN(std::vector<float> y_train, LoadArray(dir, "y_train", {d.n_train}));
  ASSIGN_OR_RETURN(d.x_test, LoadArray(dir, "x_test", {d.n_test, kIn}));
  ASSIGN_OR_RETURN(std::vector<float> y_test, LoadArray(dir, "y_test", {d.n_test}));
  ASSIGN_OR_RETURN(d.out_w, LoadArray(dir, "out_w", {kOut, kHidden}));
  ASSIGN_OR_RETURN(d.dense_w, LoadArray(dir, "dense_w", {kHidden, kIn}));
  ASSIGN_OR_RETURN(d.dense_b, LoadArray(dir, "dense_b", {kHidden}));
  ASSIGN_OR_RETURN(std::vector<float> order, LoadArray(dir, "order", {epochs, d.n_train}));
  d.y_train = ToInts(y_train);
  d.y_test = ToInts(y_test);
  for (int64_t e = 0; e < opt.epochs; ++e) {
    d.order.emplace_back(order.begin() + e * d.n_train, order.begin() + (e + 1) * d.n_train);
    std::vector<int64_t> sorted = d.order.back();
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < d.n_train; ++i) {
      if (sorted[i] != i) {
        return absl::InvalidArgumentError(
            StrCat(dir, "/order.npy: row ", e, " is not a permutation of 0..", d.n_train - 1));
      }
    }
  }
  for (const auto* y : {&d.y_train, &d.y_test}) {
    for (int64_t label : *y) {
      if (label < 0 || label >= kOut) {
        return absl::InvalidArgumentError(StrCat(dir, ": label ", label, " outside 0..9"));
      }
    }
  }
  return d;
}

// ---------------------------------------------------------------- float math

// C[m, n] = A[m, k] · B[n, k]ᵀ (+ bias[n]); double accumulation, f32 result.
void MatmulNT(const float* a, const float* b, const float* bias, int64_t m, int64_t n, int64_t k,
              float* c) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t l = 0; l < k; ++l) s += double{a[i * k + l]} * b[j * k + l];
      c[i * n + j] = static_cast<float>(s) + (bias ? bias[j] : 0.0f);
    }
  }
}

// C[k, n] = A[m, k]ᵀ · B[m, n].
void MatmulTN(const float* a, const float* b, int64_t m, int64_t k, int64_t n, float* c) {
  std::vector<double> acc(k * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t p = 0; p < k; ++p) {
      const double ap = a[i * k + p];
      if (ap == 0) continue;
      for (int64_t j = 0; j < n; ++j) acc[p * n + j] += ap * b[i * n + j];
    }
  }
  for (int64_t i = 0; i < k * n; ++i) c[i] = static_cast<float>(acc[i]);
}

// C[m, n] = A[m, k] · B[k, n].
void MatmulNN(const float* a, const float* b, int64_t m, int64_t k, int64_t n, float* c) {
  for (int64_t i = 0; i < m; ++i) {
    std::vector<double> acc(n, 0.0);
    for (int64_t p = 0; p < k; ++p) {
      const double ap = a[i * k + p];
      for (int64_t j = 0; j < n; ++j) acc[j] += ap * b[p * n + j];
    }
    for (int64_t j = 0; j < n; ++j) c[i * n + j] = static_cast<float>(acc[j]);
  }
}

// Column sums of A[m, n].
std::vector<float> ColumnSums(const float* a, int64_t m, int64_t n) {
  std::vector<double> acc(n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) acc[j] += a[i * n + j];
  }
  return std::vector<float>(acc.begin(), acc.end());
}

// Adam, bias-corrected, on a list of f32 arrays; f32 arithmetic as NumPy
// does it on f32 arrays with Python float scalars.
class Adam {
 public:
  Adam(std::vector<std::vector<float>*> params, double lr, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8)
      : params_(std::move(params)), lr_(lr), b1_(beta1), b2_(beta2), eps_(eps) {
    for (const auto* p : params_) {
      m_.emplace_back(p->size(), 0.0f);
      v_.emplace_back(p->size(), 0.0f);
    }
  }

  // grads[i] matches params[i] in size.
  void Step(const std::vector<std::vector<float>>& grads) {
    ++t_;
    const auto c1 = static_cast<float>(1 - std::pow(b1_, t_));
    const auto c2 = static_cast<float>(1 - std::pow(b2_, t_));
    const auto b1 = static_cast<float>(b1_), b2 = static_cast<float>(b2_);
    const auto one_b1 = static_cast<float>(1 - b1_), one_b2 = static_cast<float>(1 - b2_);
    const auto lr = static_cast<float>(lr_), eps = static_cast<float>(eps_);
    for (size_t k = 0; k < params_.size(); ++k) {
      std::vector<float>& p = *params_[k];
      std::vector<float>& m = m_[k];
      std::vector<float>& v = v_[k];
      const std::vector<float>& g = grads[k];
      for (size_t i = 0; i < p.size(); ++i) {
        m[i] = b1 * m[i] + one_b1 * g[i];
        v[i] = b2 * v[i] + one_b2 * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + eps);
      }
    }
  }

 private:
  std::vector<std::vector<float>*> params_;
  double lr_, b1_, b2_, eps_;
  std::vector<std::vector<float>> m_, v_;
  int t_ = 0;
};

// 256→10 logits with its own Adam.
class OutputLayer {
 public:
  OutputLayer(std::vector<float> w, double lr)
      : w_(std::move(w)), b_(kOut, 0.0f), opt_({&w_, &b_}, lr) {}

  std::vector<float> Forward(const std::vector<float>& h, int64_t rows) const {
    std::vector<float> logits(rows * kOut);
    MatmulNT(h.data(), w_.data(), b_.data(), rows, kOut, kHidden, logits.data());
    return logits;
  }

  // Returns dH, then applies the update for the batch's summed gradient × scale.
  std::vector<float> BackwardStep(const std::vector<float>& h, const std::vector<float>& dlogits,
                                  int64_t rows, float scale) {
    std::vector<float> dh(rows * kHidden);
    MatmulNN(dlogits.data(), w_.data(), rows, kOut, kHidden, dh.data());
    std::vector<float> gw(kOut * kHidden);
    MatmulTN(dlogits.data(), h.data(), rows, kOut, kHidden, gw.data());
    std::vector<float> gb = ColumnSums(dlogits.data(), rows, kOut);
    for (float& g : gw) g *= scale;
    for (float& g : gb) g *= scale;
    opt_.Step({std::move(gw), std::move(gb)});
    return dh;
  }

 private:
  std::vector<float> w_, b_;
  Adam opt_;
};

// ---------------------------------------------------------------- first layer

class Hidden {
 public:
  virtual ~Hidden() = default;
  // ReLU(X · Wᵀ + b) for X [rows, 64]; with a call_id, kept for Backward.
  virtual absl::StatusOr<std::vector<float>> Forward(const float* x, int64_t rows,
                                                     const std::string& call_id) = 0;
  // Accumulates the gradients from dH [rows, 256] (before the ReLU's mask).
  virtual absl::Status Backward(const std::vector<float>& dh, int64_t rows,
                                const std::string& call_id) = 0;
  virtual absl::Status Step(float scale) = 0;
  virtual int64_t grown() const { return 0; }
};

// The dense baseline: NumpyHidden with sparsity 0 (every mask entry set).
class DenseHidden : public Hidden {
 public:
  DenseHidden(std::vector<float> w, std::vector<float> b, double lr)
      : w_(std::move(w)), b_(std::move(b)), opt_({&w_, &b_}, lr) {}

  absl::StatusOr<std::vector<float>> Forward(const float* x, int64_t rows,
                                             const std::string& call_id) override {
    std::vector<float> h(rows * kHidden);
    MatmulNT(x, w_.data(), b_.data(), rows, kHidden, kIn, h.data());
    for (float& v : h) v = std::max(v, 0.0f);
    if (!call_id.empty()) pending_[call_id] = {std::vector<float>(x, x + rows * kIn), h};
    return h;
  }

  absl::Status Backward(const std::vector<float>& dh, int64_t rows,
                        const std::string& call_id) override {
    auto it = pending_.find(call_id);
    if (it == pending_.end()) return absl::NotFoundError(StrCat("call_id ", call_id));
    auto [x, h] = std::move(it->second);
    pending_.erase(it);
    std::vector<float> dz(rows * kHidden);
    for (size_t i = 0; i < dz.size(); ++i) dz[i] = h[i] > 0 ? dh[i] : 0.0f;
    gw_.assign(kHidden * kIn, 0.0f);
    MatmulTN(dz.data(), x.data(), rows, kHidden, kIn, gw_.data());
    gb_ = ColumnSums(dz.data(), rows, kHidden);
    return absl::OkStatus();
  }

  absl::Status Step(float scale) override {
    for (float& g : gw_) g *= scale;
    for (float& g : gb_) g *= scale;
    opt_.Step({gw_, gb_});
    return absl::OkStatus();
  }

 private:
  std::vector<float> w_, b_;
  Adam opt_;
  std::map<std::string, std::pair<std::vector<float>, std::vector<float>>> pending_;
  std::vector<float> gw_, gb_;
};

v1::InlineTensor DenseInline(const float* values, int64_t rows, int64_t cols) {
  TensorDesc desc;
  desc.format = Format::kDense;
  desc.dtype = DType::kF32;
  desc.shape = {rows, cols};
  v1::InlineTensor t;
  *t.mutable_desc() = client::ToProto(desc);
  v1::Component* c = t.add_components();
  c->set_name("values");
  c->set_data(reinterpret_cast<const char*>(values), rows * cols * sizeof(float));
  return t;
}

// 64→256 + ReLU held in sparsed: forward / backward / step through RPCs.
class DaemonHidden : public Hidden {
 public:
  static absl::StatusOr<std::unique_ptr<DaemonHidden>> Create(client::Client& c,
                                                              const std::string& name,
                                                              const Options& opt, bool rigl,
                                                              int64_t steps) {
    v1::CreateLayerRequest req;
    req.set_name(name);
    req.set_in_features(kIn);
    req.set_out_features(kHidden);
    req.set_format(v1::CSR);
    req.set_sparsity(opt.sparsity);
    req.set_init(opt.init == "dense_prune" ? v1::DENSE_PRUNE : v1::RANDOM_PATTERN);
    req.set_bias(true);
    req.set_relu(true);
    req.set_seed(static_cast<uint64_t>(opt.seed));
    req.mutable_optimizer()->set_kind(v1::ADAM);
    req.mutable_optimizer()->set_lr(static_cast<float>(opt.lr));
    if (rigl) {
      req.mutable_rigl()->set_alpha(opt.rigl_alpha);
      req.mutable_rigl()->set_interval(opt.rigl_interval);
      req.mutable_rigl()->set_end_step(static_cast<int64_t>(opt.rigl_end * steps));
    }
    ASSIGN_OR_RETURN(v1::LayerInfo info, c.CreateLayer(req));
    auto h = std::unique_ptr<DaemonHidden>(new DaemonHidden(c));
    h->layer_.set_id(info.id());
    return h;
  }

  ~DaemonHidden() override {
    absl::Status s = c_.DeleteLayer(layer_);
    if (!s.ok()) std::fprintf(stderr, "DeleteLayer: %s\n", s.ToString().c_str());
  }

  absl::StatusOr<std::vector<float>> Forward(const float* x, int64_t rows,
                                             const std::string& call_id) override {
    v1::ForwardRequest req;
    *req.mutable_layer() = layer_;
    *req.mutable_x()->mutable_inline_() = DenseInline(x, rows, kIn);
    req.set_call_id(call_id);
    req.mutable_output()->set_inline_(true);
    ASSIGN_OR_RETURN(v1::ForwardResponse r, c_.Forward(req));
    ASSIGN_OR_RETURN(Tensor y, client::FromInline(r.y().inline_(), "y.inline"));
    if (y.format() != Format::kDense || y.desc().dtype != DType::kF32 ||
        y.desc().shape != std::vector<int64_t>{rows, kHidden}) {
      return absl::InternalError(StrCat("Forward returned shape ", ShapeString(y.desc().shape),
                                        ", expected ", ShapeString({rows, kHidden}), " dense f32"));
    }
    std::span<const float> v = y.data<float>("values");
    return std::vector<float>(v.begin(), v.end());
  }

  absl::Status Backward(const std::vector<float>& dh, int64_t rows,
                        const std::string& call_id) override {
    v1::BackwardRequest req;
    *req.mutable_layer() = layer_;
    *req.mutable_dy()->mutable_inline_() = DenseInline(dh.data(), rows, kHidden);
    req.set_call_id(call_id);
    req.set_want_dx(false);
    return c_.Backward(req).status();
  }

  absl::Status Step(float scale) override {
    v1::StepRequest req;
    *req.mutable_layer() = layer_;
    req.set_grad_scale(scale);
    ASSIGN_OR_RETURN(v1::StepResponse r, c_.Step(req));
    dropped_ += r.dropped();
    grown_ += r.grown();
    return absl::OkStatus();
  }

  int64_t grown() const override { return grown_; }

 private:
  explicit DaemonHidden(client::Client& c) : c_(c) {}

  client::Client& c_;
  v1::LayerRef layer_;
  int64_t dropped_ = 0, grown_ = 0;
};

// ---------------------------------------------------------------- training

struct TrainResult {
  double accuracy = 0;  // percent
  double train_seconds = 0;
  int64_t steps = 0;
};

// Minibatch training as train_digits.py's train(); the batch order is the
// exported one.
absl::StatusOr<TrainResult> Train(Hidden& hidden, OutputLayer& out, const Data& d,
                                  const Options& opt) {
  TrainResult r;
  const Clock::time_point start = Clock::now();
  std::vector<float> x;
  std::vector<int64_t> y;
  for (int64_t epoch = 0; epoch < opt.epochs; ++epoch) {
    const std::vector<int64_t>& order = d.order[epoch];
    for (int64_t i = 0, begin = 0; begin < d.n_train; ++i, begin += opt.batch) {
      const int64_t rows = std::min(opt.batch, d.n_train - begin);
      x.resize(rows * kIn);
      y.resize(rows);
      for (int64_t k = 0; k < rows; ++k) {
        const int64_t src = order[begin + k];
        std::memcpy(&x[k * kIn], &d.x_train[src * kIn], kIn * sizeof(float));
        y[k] = d.y_train[src];
      }
      const std::string call_id = StrCat("e", epoch, "-b", i);
      ASSIGN_OR_RETURN(std::vector<float> h, hidden.Forward(x.data(), rows, call_id));
      std::vector<float> p = out.Forward(h, rows);
      // Softmax, then d(summed cross-entropy)/d(logits) = p - onehot(y).
      for (int64_t k = 0; k < rows; ++k) {
        float* row = &p[k * kOut];
        const float mx = *std::max_element(row, row + kOut);
        float sum = 0;
        for (int64_t j = 0; j < kOut; ++j) sum += row[j] = std::exp(row[j] - mx);
        for (int64_t j = 0; j < kOut; ++j) row[j] /= sum;
        row[y[k]] -= 1;
      }
      const auto scale = static_cast<float>(1.0 / static_cast<double>(rows));
      std::vector<float> dh = out.BackwardStep(h, p, rows, scale);
      RETURN_IF_ERROR(hidden.Backward(dh, rows, call_id));
      RETURN_IF_ERROR(hidden.Step(scale));
      ++r.steps;
    }
  }
  r.train_seconds = Seconds(start);
  ASSIGN_OR_RETURN(std::vector<float> h, hidden.Forward(d.x_test.data(), d.n_test, ""));
  const std::vector<float> logits = out.Forward(h, d.n_test);
  int64_t correct = 0;
  for (int64_t k = 0; k < d.n_test; ++k) {
    const float* row = &logits[k * kOut];
    correct += (std::max_element(row, row + kOut) - row) == d.y_test[k];
  }
  r.accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(d.n_test);
  return r;
}

absl::Status Run(const Options& opt) {
  if (opt.epochs < 1 || opt.batch < 1) {
    return absl::InvalidArgumentError(
        StrCat("--epochs ", opt.epochs, " and --batch ", opt.batch, " must be >= 1"));
  }
  if (opt.init != "random_pattern" && opt.init != "dense_prune") {
    return absl::InvalidArgumentError(
        StrCat("--init ", opt.init, ": expected random_pattern or dense_prune"));
  }
  std::vector<std::string> runs;
  for (size_t pos = 0; pos <= opt.runs.size();) {
    size_t comma = opt.runs.find(',', pos);
    if (comma == std::string::npos) comma = opt.runs.size();
    std::string run = opt.runs.substr(pos, comma - pos);
    pos = comma + 1;
    if (run.empty()) continue;
    if (run != "dense" && run != "static" && run != "rigl") {
      return absl::InvalidArgumentError(
          StrCat("--runs: unknown run ", run, " (expected dense, static, rigl)"));
    }
    runs.push_back(run);
  }
  ASSIGN_OR_RETURN(Data d, LoadData(opt.data, opt));
  const int64_t steps = opt.epochs * ((d.n_train + opt.batch - 1) / opt.batch);

  std::unique_ptr<client::Client> client;
  if (std::any_of(runs.begin(), runs.end(), [](const std::string& r) { return r != "dense"; })) {
    client::ConnectOptions co;
    co.connect_timeout_seconds = 10;
    ASSIGN_OR_RETURN(client, client::Client::Connect(opt.server, co));
  }

  for (const std::string& run : runs) {
    const Clock::time_point start = Clock::now();
    TrainResult r;
    int64_t grown = 0;
    {
      std::unique_ptr<Hidden> hidden;
      if (run == "dense") {
        hidden = std::make_unique<DenseHidden>(d.dense_w, d.dense_b, opt.lr);
      } else {
        ASSIGN_OR_RETURN(
            hidden, DaemonHidden::Create(*client, StrCat("train_digits-", run, "-", getpid()), opt,
                                         run == "rigl", steps));
      }
      OutputLayer out(d.out_w, opt.lr);
      ASSIGN_OR_RETURN(r, Train(*hidden, out, d, opt));
      grown = hidden->grown();
    }  // deletes the daemon's layer, inside the timed span as in the Python script
    const double elapsed = Seconds(start);
    const std::string extra = run == "rigl" ? StrCat(", RigL moved ", grown, " weights") : "";
    std::printf("%s: test accuracy %.1f%% (%.1f s%s); %.3f ms/step over %lld steps\n", run.c_str(),
                r.accuracy, elapsed, extra.c_str(),
                1e3 * r.train_seconds / static_cast<double>(r.steps),
                static_cast<long long>(r.steps));
    std::fflush(stdout);
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace sparsed::bench

int main(int argc, char** argv) {
  sparsed::bench::Options opt;
  const char* env = std::getenv("SPARSED_ADDR");
  opt.server = env && *env ? env : "127.0.0.1:50051";
  CLI::App app{
      "Trains a 64→256→10 MLP on the digits data three ways (C++ port of "
      "client/python/train_digits.py; data from scripts/export_digits.py)"};
  app.add_option("--server", opt.server, "the daemon's gRPC address (default: $SPARSED_ADDR)")
      ->capture_default_str();
  app.add_option("--data", opt.data, "directory written by scripts/export_digits.py")->required();
  app.add_option("--runs", opt.runs, "comma-separated subset of dense,static,rigl")
      ->capture_default_str();
  app.add_option("--epochs", opt.epochs)->capture_default_str();
  app.add_option("--batch", opt.batch)->capture_default_str();
  app.add_option("--lr", opt.lr, "Adam's learning rate")->capture_default_str();
  app.add_option("--sparsity", opt.sparsity, "of the first layer")->capture_default_str();
  app.add_option("--init", opt.init, "random_pattern or dense_prune")->capture_default_str();
  app.add_option("--rigl-alpha", opt.rigl_alpha)->capture_default_str();
  app.add_option("--rigl-interval", opt.rigl_interval, "steps between RigL updates")
      ->capture_default_str();
  app.add_option("--rigl-end", opt.rigl_end, "RigL stops after this fraction of the training steps")
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "must match the export's --seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  absl::Status s = sparsed::bench::Run(opt);
  if (!s.ok()) {
    std::fprintf(stderr, "train_digits_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
