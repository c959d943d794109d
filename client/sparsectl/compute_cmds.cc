// spmm.
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "progress.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

// Results up to this size come back inline (the message limit is 64 MiB).
constexpr int64_t kInlineLimit = 60 * kMiB;

struct SpmmArgs {
  std::string a, b;
  bool transpose_a = false, transpose_b = false;
  std::optional<float> alpha;
  float beta = 0;
  std::string c;
  std::string bias;
  bool relu = false;
  std::optional<float> clamp_max;
  std::string out_dtype;  // "", "f32", "f16" or "bf16"
  std::string output_file;
  std::string name;
  std::map<std::string, std::string> labels;
};

// The proto dtype of --out-dtype (unset: DTYPE_UNSPECIFIED, the API default).
v1::DType OutDType(const std::string& name) {
  if (name == "f32") return v1::F32;
  if (name == "f16") return v1::F16;
  if (name == "bf16") return v1::BF16;
  return v1::DTYPE_UNSPECIFIED;
}

// Bytes of the dense result op(A) * op(B), from the operands' shapes and the
// result dtype (unset: the operands' when both are the same 16-bit type).
absl::StatusOr<int64_t> ResultBytes(Client& client, const SpmmArgs& a) {
  ASSIGN_OR_RETURN(v1::TensorInfo ia, client.GetInfo(RefFromArg(a.a)));
  ASSIGN_OR_RETURN(v1::TensorInfo ib, client.GetInfo(RefFromArg(a.b)));
  auto dim = [](const v1::TensorInfo& t, int i) -> int64_t {
    return i < t.desc().shape_size() ? t.desc().shape(i) : 1;
  };
  const int64_t m = a.transpose_a ? dim(ia, 1) : dim(ia, 0);
  const int64_t n = a.transpose_b ? dim(ib, 0) : dim(ib, 1);
  v1::DType out = OutDType(a.out_dtype);
  if (out == v1::DTYPE_UNSPECIFIED) {
    const v1::DType da = ia.desc().dtype(), db = ib.desc().dtype();
    out = da == db && (da == v1::F16 || da == v1::BF16) ? da : v1::F32;
  }
  return m * n * (out == v1::F32 ? int64_t{4} : int64_t{2});
}

// Downloads a held result into `path`, deleting it from the server either way.
absl::Status FetchAndDelete(Client& client, const v1::TensorInfo& held, const std::string& path) {
  v1::TensorRef ref;
  ref.set_id(held.id());
  absl::StatusOr<std::pair<v1::TensorInfo, Tensor>> result;
  {
    ProgressBar bar("download");
    result = client.Download(ref, bar.Callback());
  }
  absl::Status deleted = client.Delete(ref).status();
  if (!deleted.ok()) {
    std::cerr << "sparsectl: warning: could not delete the result " << held.id() << ": "
              << deleted.message() << std::endl;
  }
  if (!result.ok()) return result.status();
  return WriteTensorFile(result->second, path);
}

absl::Status RunSpmm(Context& ctx, const SpmmArgs& a) {
  if (!a.output_file.empty()) RETURN_IF_ERROR(CheckTensorFileName(a.output_file));
  v1::SpmmRequest req;
  *req.mutable_a()->mutable_ref() = RefFromArg(a.a);
  *req.mutable_b()->mutable_ref() = RefFromArg(a.b);
  req.set_transpose_a(a.transpose_a);
  req.set_transpose_b(a.transpose_b);
  if (a.alpha) req.set_alpha(*a.alpha);
  req.set_beta(a.beta);
  if (!a.c.empty()) *req.mutable_c()->mutable_ref() = RefFromArg(a.c);
  v1::Epilogue* epilogue = req.mutable_epilogue();
  if (!a.bias.empty()) {
    ASSIGN_OR_RETURN(*epilogue->mutable_bias(), OperandFromArg(a.bias));
  }
  epilogue->set_relu(a.relu);
  if (a.clamp_max) epilogue->set_clamp_max(*a.clamp_max);
  req.set_out_dtype(OutDType(a.out_dtype));
  v1::Output* output = req.mutable_output();
  output->set_name(a.name);
  output->mutable_labels()->insert(a.labels.begin(), a.labels.end());

  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  if (a.output_file.empty()) {
    ASSIGN_OR_RETURN(v1::OpResult r, client->Spmm(req));
    PrintHeldResult(r);
    return absl::OkStatus();
  }

  ASSIGN_OR_RETURN(int64_t bytes, ResultBytes(*client, a));
  output->set_inline_(bytes <= kInlineLimit);
  ASSIGN_OR_RETURN(v1::OpResult r, client->Spmm(req));
  std::string summary;
  if (r.has_inline_()) {
    ASSIGN_OR_RETURN(Tensor t, FromInline(r.inline_(), "result"));
    RETURN_IF_ERROR(WriteTensorFile(t, a.output_file));
    v1::TensorInfo info;
    *info.mutable_desc() = r.inline_().desc();
    info.set_bytes(t.bytes());
    summary = Summary(info);
  } else if (r.has_tensor()) {
    RETURN_IF_ERROR(FetchAndDelete(*client, r.tensor(), a.output_file));
    summary = Summary(r.tensor());
  } else {
    return absl::InternalError("spmm: the server returned no result");
  }
  std::cout << "wrote " << a.output_file << ": " << summary
            << absl::StrFormat(" (%.3f ms)", r.elapsed_ms()) << std::endl;
  return absl::OkStatus();
}

}  // namespace

void AddComputeCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SpmmArgs>();
  CLI::App* cmd = app.add_subcommand(
      "spmm", "C = epilogue(alpha * op(A) * op(B) + beta * C) on held tensors (one sparse)");
  cmd->add_option("A", a->a, "Left operand: tensor id or name")->required();
  cmd->add_option("B", a->b, "Right operand: tensor id or name")->required();
  cmd->add_flag("--transpose-a", a->transpose_a, "Use A transposed");
  cmd->add_flag("--transpose-b", a->transpose_b, "Use B transposed");
  cmd->add_option("--alpha", a->alpha, "Scale of op(A) * op(B) (default 1)");
  CLI::Option* beta = cmd->add_option("--beta", a->beta, "Scale of C (needs --c)");
  CLI::Option* c = cmd->add_option("--c", a->c, "C: tensor id or name (needs --beta)");
  beta->needs(c);
  c->needs(beta);
  cmd->add_option("--bias", a->bias,
                  "Per-column bias: a local .npy/.mtx file (sent inline) or a tensor id or name");
  cmd->add_flag("--relu", a->relu, "Apply max(x, 0)");
  cmd->add_option("--clamp", a->clamp_max, "Apply min(x, MAX)")->type_name("MAX");
  cmd->add_option("--out-dtype", a->out_dtype,
                  "Result dtype, rounded to nearest even (default: the operands' when both are "
                  "f16 or both bf16, else f32)")
      ->check(CLI::IsMember({"f32", "f16", "bf16"}));
  CLI::Option* out = cmd->add_option("-o,--output", a->output_file,
                                     "Write the result to a .npy or .mtx file (not held)");
  CLI::Option* name =
      cmd->add_option("--name", a->name, "Hold the result under this name and print its id");
  out->excludes(name);
  name->excludes(out);
  AddLabelOption(cmd, a->labels)->needs(name);
  cmd->footer("Without -o or --name the result is held unnamed and its id printed.");
  SetRun(cmd, ctx, [a](Context& cx) { return RunSpmm(cx, *a); });
}

}  // namespace sparsed::client::cli
