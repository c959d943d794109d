// layer create|ls|info|rm|forward|step (training layers held in the daemon)
// and sddmm.
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

struct CreateArgs {
  std::string name;
  int64_t in = 0, out = 0;
  std::optional<double> sparsity;  // default 0.9; an N:M layer's follows from n:m
  std::string nm;                  // "N:M": an N:M layer
  std::string init = "dense-prune";
  bool no_bias = false, relu = false;
  uint64_t seed = 0;
  int64_t max_pending = 0;
  std::string optimizer = "sgd";
  float lr = 0.01f, momentum = 0, weight_decay = 0;
  bool nesterov = false;
  std::optional<double> prune_to;
  double prune_from = 0;
  int64_t prune_start = 0, prune_interval = 100, prune_count = 10;
  std::optional<double> rigl_alpha;
  int64_t rigl_interval = 100, rigl_end = 1000;
};

struct OutputArgs {
  std::string file;  // -o: written locally, not held
  std::string name;  // --name: held under this name
};

// An inline result for -o, else a held one (named with --name).
void SetOutput(const OutputArgs& o, v1::Output* output) {
  output->set_inline_(!o.file.empty());
  output->set_name(o.name);
}

// Writes an inline result to -o or prints the held result's id.
absl::Status Finish(const OutputArgs& o, const v1::OpResult& r) {
  if (o.file.empty()) {
    PrintHeldResult(r);
    return absl::OkStatus();
  }
  if (!r.has_inline_()) return absl::InternalError("the server returned no inline result");
  ASSIGN_OR_RETURN(Tensor t, FromInline(r.inline_(), "result"));
  RETURN_IF_ERROR(WriteTensorFile(t, o.file));
  v1::TensorInfo info;
  *info.mutable_desc() = r.inline_().desc();
  info.set_bytes(t.bytes());
  std::cout << "wrote " << o.file << ": " << Summary(info)
            << absl::StrFormat(" (%.3f ms)", r.elapsed_ms()) << std::endl;
  return absl::OkStatus();
}

void AddOutputOptions(CLI::App* cmd, OutputArgs& o) {
  CLI::Option* out =
      cmd->add_option("-o,--output", o.file, "Write the result to a .npy or .mtx file (not held)");
  CLI::Option* name =
      cmd->add_option("--name", o.name, "Hold the result under this name and print its id");
  out->excludes(name);
  name->excludes(out);
}

absl::StatusOr<v1::Optimizer> ParseOptimizer(const std::string& s) {
  if (s == "sgd") return v1::SGD;
  if (s == "adam") return v1::ADAM;
  if (s == "adamw") return v1::ADAMW;
  return absl::InvalidArgumentError(
      StrCat("--optimizer = '", s, "' is not an optimizer (sgd, adam, adamw)"));
}

std::string Percent(double fraction) { return absl::StrFormat("%.1f%%", 100.0 * fraction); }

void PrintInfo(const v1::LayerInfo& l) {
  std::cout << "id:          " << l.id() << "\n"
            << "name:        " << (l.name().empty() ? "-" : l.name()) << "\n"
            << "shape:       " << l.in_features() << " -> " << l.out_features()
            << (l.bias() ? ", bias" : "") << (l.relu() ? ", relu" : "") << "\n"
            << "nnz:         " << l.nnz() << " (sparsity " << Percent(l.sparsity()) << ")\n"
            << "step:        " << l.step() << "\n"
            << "pending:     " << l.pending_calls() << "\n"
            << "device:      " << l.device() << "\n"
            << "config:      " << l.config_json() << std::endl;
}

absl::Status RunCreate(Context& ctx, const CreateArgs& a) {
  v1::CreateLayerRequest req;
  req.set_name(a.name);
  req.set_in_features(a.in);
  req.set_out_features(a.out);
  req.set_format(v1::CSR);
  req.set_sparsity(a.sparsity.value_or(a.nm.empty() ? 0.9 : 0.0));
  if (!a.nm.empty()) {
    const auto [n, m] = ParseNmArg(a.nm);
    req.set_format(v1::NM);
    req.set_nm_n(n);
    req.set_nm_m(m);
  }
  if (a.init == "dense-prune") {
    req.set_init(v1::DENSE_PRUNE);
  } else if (a.init == "random-pattern") {
    req.set_init(v1::RANDOM_PATTERN);
  } else {
    return absl::InvalidArgumentError(
        StrCat("--init = '", a.init, "' is not dense-prune or random-pattern"));
  }
  req.set_bias(!a.no_bias);
  req.set_relu(a.relu);
  req.set_seed(a.seed);
  req.set_max_pending(a.max_pending);
  v1::OptimizerConfig* opt = req.mutable_optimizer();
  ASSIGN_OR_RETURN(const v1::Optimizer kind, ParseOptimizer(a.optimizer));
  opt->set_kind(kind);
  opt->set_lr(a.lr);
  opt->set_momentum(a.momentum);
  opt->set_nesterov(a.nesterov);
  opt->set_weight_decay(a.weight_decay);
  if (a.prune_to) {
    v1::GradualPruning* p = req.mutable_pruning();
    p->set_initial_sparsity(a.prune_from);
    p->set_final_sparsity(*a.prune_to);
    p->set_start_step(a.prune_start);
    p->set_interval(a.prune_interval);
    p->set_count(a.prune_count);
  }
  if (a.rigl_alpha) {
    v1::Rigl* r = req.mutable_rigl();
    r->set_alpha(*a.rigl_alpha);
    r->set_interval(a.rigl_interval);
    r->set_end_step(a.rigl_end);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::LayerInfo l, client->CreateLayer(req));
  std::cout << l.id() << "\n  " << (l.name().empty() ? "" : StrCat("name=", l.name(), " "))
            << l.in_features() << " -> " << l.out_features() << " nnz=" << l.nnz()
            << " sparsity=" << Percent(l.sparsity()) << " on " << l.device() << std::endl;
  return absl::OkStatus();
}

absl::Status RunLs(Context& ctx) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::ListLayersResponse r, client->ListLayers());
  if (ctx.json) return PrintJson(r);
  if (r.layers().empty()) {
    std::cout << "(no layers)" << std::endl;
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "IN", "OUT", "NNZ", "SPARSITY", "STEP", "PENDING", "DEVICE"}};
  for (const v1::LayerInfo& l : r.layers()) {
    rows.push_back({l.id(), l.name().empty() ? "-" : l.name(), StrCat(l.in_features()),
                    StrCat(l.out_features()), StrCat(l.nnz()), Percent(l.sparsity()),
                    StrCat(l.step()), StrCat(l.pending_calls()), l.device()});
  }
  PrintTable(rows);
  std::cout.flush();
  return absl::OkStatus();
}

absl::Status RunInfo(Context& ctx, const std::string& layer) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::LayerInfo l, client->GetLayer(LayerRefFromArg(layer)));
  PrintInfo(l);
  return absl::OkStatus();
}

absl::Status RunRm(Context& ctx, const std::vector<std::string>& layers) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  for (const std::string& l : layers) {
    RETURN_IF_ERROR(client->DeleteLayer(LayerRefFromArg(l)));
    std::cout << "removed layer " << l << std::endl;
  }
  return absl::OkStatus();
}

absl::Status RunForward(Context& ctx, const std::string& layer, const std::string& x,
                        const OutputArgs& o) {
  if (!o.file.empty()) RETURN_IF_ERROR(CheckTensorFileName(o.file));
  v1::ForwardRequest req;
  *req.mutable_layer() = LayerRefFromArg(layer);
  ASSIGN_OR_RETURN(*req.mutable_x(), OperandFromArg(x));
  SetOutput(o, req.mutable_output());
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::ForwardResponse r, client->Forward(req));
  return Finish(o, r.y());
}

absl::Status RunStep(Context& ctx, const std::string& layer, float grad_scale) {
  v1::StepRequest req;
  *req.mutable_layer() = LayerRefFromArg(layer);
  req.set_grad_scale(grad_scale);
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::StepResponse r, client->Step(req));
  std::cout << "step " << r.step() << ": nnz=" << r.nnz() << " sparsity=" << Percent(r.sparsity())
            << (r.pruned() ? " pruned" : "")
            << (r.dropped() || r.grown()
                    ? StrCat(" rigl dropped=", r.dropped(), " grown=", r.grown())
                    : "")
            << std::endl;
  return absl::OkStatus();
}

struct SddmmArgs {
  std::string a, b, pattern;
  bool transpose_a = false, transpose_b = false;
  std::optional<float> alpha;
  OutputArgs out;
};

absl::Status RunSddmm(Context& ctx, const SddmmArgs& a) {
  if (!a.out.file.empty()) RETURN_IF_ERROR(CheckTensorFileName(a.out.file));
  v1::SddmmRequest req;
  ASSIGN_OR_RETURN(*req.mutable_a(), OperandFromArg(a.a));
  ASSIGN_OR_RETURN(*req.mutable_b(), OperandFromArg(a.b));
  *req.mutable_pattern()->mutable_ref() = RefFromArg(a.pattern);
  req.set_transpose_a(a.transpose_a);
  req.set_transpose_b(a.transpose_b);
  if (a.alpha) req.set_alpha(*a.alpha);
  SetOutput(a.out, req.mutable_output());
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::OpResult r, client->Sddmm(req));
  return Finish(a.out, r);
}

}  // namespace

void AddLayerCommands(CLI::App& app, Context& ctx) {
  CLI::App* group = app.add_subcommand(
      "layer", "Sparse training layers held in the daemon: create, list, inspect, run, step");
  group->require_subcommand(1);
  group->fallthrough();
  {
    auto a = std::make_shared<CreateArgs>();
    CLI::App* cmd = group->add_subcommand(
        "create", "Create a sparse linear layer Y = X * W^T + b (W CSR [out, in]); prints its id");
    cmd->add_option("--in", a->in, "Input features")->required();
    cmd->add_option("--out", a->out, "Output features")->required();
    cmd->add_option("--name", a->name, "Unique name of the layer");
    cmd->add_option("--sparsity", a->sparsity,
                    "Initial fraction of zero weights, in [0, 1) (default 0.9)");
    cmd->add_option("--nm", a->nm,
                    "An N:M layer: N of every M consecutive weights of a row kept (e.g. 2:4), "
                    "the pattern fixed; sparsity 1 - N/M")
        ->type_name("N:M");
    cmd->add_option("--init", a->init, "dense-prune or random-pattern");
    cmd->add_flag("--no-bias", a->no_bias, "No bias term");
    cmd->add_flag("--relu", a->relu, "Apply max(y, 0)");
    cmd->add_option("--seed", a->seed, "Seed of the initialisation");
    cmd->add_option("--max-pending", a->max_pending,
                    "Forward calls kept for backward at once (0: 64)");
    cmd->add_option("--optimizer", a->optimizer, "sgd, adam or adamw");
    cmd->add_option("--lr", a->lr, "Learning rate");
    cmd->add_option("--momentum", a->momentum, "SGD momentum");
    cmd->add_flag("--nesterov", a->nesterov, "Nesterov momentum (SGD)");
    cmd->add_option("--weight-decay", a->weight_decay, "Weight decay");
    cmd->add_option("--prune-to", a->prune_to,
                    "Gradual magnitude pruning to this final sparsity (enables pruning)");
    cmd->add_option("--prune-from", a->prune_from, "Initial sparsity of the pruning schedule");
    cmd->add_option("--prune-start", a->prune_start, "First pruning step");
    cmd->add_option("--prune-interval", a->prune_interval, "Steps between prunings");
    cmd->add_option("--prune-count", a->prune_count, "Number of pruning intervals");
    cmd->add_option("--rigl-alpha", a->rigl_alpha, "RigL drop fraction (enables RigL)");
    cmd->add_option("--rigl-interval", a->rigl_interval, "Steps between RigL updates");
    cmd->add_option("--rigl-end", a->rigl_end, "Last RigL step");
    SetRun(cmd, ctx, [a](Context& c) { return RunCreate(c, *a); });
  }
  {
    CLI::App* cmd = group->add_subcommand("ls", "List layers");
    SetRun(cmd, ctx, RunLs);
  }
  {
    auto layer = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("info", "Show a layer and its configuration");
    cmd->add_option("LAYER", *layer, "Layer id or name")->required();
    SetRun(cmd, ctx, [layer](Context& c) { return RunInfo(c, *layer); });
  }
  {
    auto layers = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = group->add_subcommand("rm", "Delete layers");
    cmd->add_option("LAYERS", *layers, "Layer ids or names")->required();
    SetRun(cmd, ctx, [layers](Context& c) { return RunRm(c, *layers); });
  }
  {
    auto layer = std::make_shared<std::string>();
    auto x = std::make_shared<std::string>();
    auto out = std::make_shared<OutputArgs>();
    CLI::App* cmd = group->add_subcommand("forward", "Y = layer(X), inference only (nothing kept)");
    cmd->add_option("LAYER", *layer, "Layer id or name")->required();
    cmd->add_option("X", *x,
                    "Input [batch, in]: a local .npy/.mtx file (sent inline) or a tensor id or "
                    "name")
        ->required();
    AddOutputOptions(cmd, *out);
    cmd->footer("Without -o or --name the result is held unnamed and its id printed.");
    SetRun(cmd, ctx, [layer, x, out](Context& c) { return RunForward(c, *layer, *x, *out); });
  }
  {
    auto layer = std::make_shared<std::string>();
    auto grad_scale = std::make_shared<float>(1.0f);
    CLI::App* cmd = group->add_subcommand(
        "step", "Apply the optimizer to the accumulated gradients, then pruning/RigL where due");
    cmd->add_option("LAYER", *layer, "Layer id or name")->required();
    cmd->add_option("--grad-scale", *grad_scale, "Multiply the gradients by this first");
    SetRun(cmd, ctx, [layer, grad_scale](Context& c) { return RunStep(c, *layer, *grad_scale); });
  }
  {
    auto a = std::make_shared<SddmmArgs>();
    CLI::App* cmd = app.add_subcommand(
        "sddmm", "alpha * (op(A) * op(B)) at the stored positions of the CSR tensor PATTERN");
    cmd->add_option("A", a->a, "Dense A: a local .npy file or a tensor id or name")->required();
    cmd->add_option("B", a->b, "Dense B: a local .npy file or a tensor id or name")->required();
    cmd->add_option("PATTERN", a->pattern, "CSR pattern: tensor id or name")->required();
    cmd->add_flag("--transpose-a", a->transpose_a, "Use A transposed");
    cmd->add_flag("--transpose-b", a->transpose_b, "Use B transposed");
    cmd->add_option("--alpha", a->alpha, "Scale (default 1)");
    AddOutputOptions(cmd, a->out);
    SetRun(cmd, ctx, [a](Context& c) { return RunSddmm(c, *a); });
  }
}

}  // namespace sparsed::client::cli
