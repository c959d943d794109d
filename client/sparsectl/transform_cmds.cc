// convert, transpose, prune: new held tensors made from a held source.
#include <charconv>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "common.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// "R,C" or "R" (R x R). The daemon checks the values; this only checks the shape.
std::vector<int64_t> ParseBlockArg(const std::string& text) {
  std::vector<int64_t> block;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::optional<int64_t> v = ParseInt(std::string_view(text).substr(
        start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!v) break;
    block.push_back(*v);
    if (comma == std::string::npos) {
      if (block.size() <= 2) return block;
      break;
    }
    start = comma + 1;
  }
  throw CLI::ValidationError("--block", StrCat("'", text, "' is not R,C or R (integers)"));
}

// Where the result goes: a new held tensor, optionally named and labelled.
struct OutputArgs {
  std::string name;
  std::map<std::string, std::string> labels;

  void AddTo(CLI::App* cmd) {
    cmd->add_option("--name", name, "Hold the result under this unique name");
    AddLabelOption(cmd, labels);
  }
  v1::Output ToProto() const {
    v1::Output out;
    out.set_name(name);
    out.mutable_labels()->insert(labels.begin(), labels.end());
    return out;
  }
};

struct ConvertArgs {
  std::string source;
  std::string to;
  std::string block;
  std::string nm;
  std::string index;
  OutputArgs output;
};

absl::Status RunConvert(Context& ctx, const ConvertArgs& a) {
  v1::ConvertRequest req;
  *req.mutable_source()->mutable_ref() = RefFromArg(a.source);
  const std::optional<Format> to = ParseFormat(a.to);
  if (!to) {
    throw CLI::ValidationError(
        "--to", StrCat("'", a.to, "' is not a format (dense, coo, csr, csc, bsr, nm)"));
  }
  req.set_to(static_cast<v1::Format>(*to));
  if (!a.block.empty()) {
    for (int64_t v : ParseBlockArg(a.block)) req.add_block(v);
  }
  if (!a.nm.empty()) {
    const auto [n, m] = ParseNmArg(a.nm);
    req.set_n(n);
    req.set_m(m);
  }
  if (!a.index.empty()) req.set_index_dtype(a.index == "i64" ? v1::I64 : v1::I32);
  *req.mutable_output() = a.output.ToProto();
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::OpResult r, client->Convert(req));
  PrintHeldResult(r);
  return absl::OkStatus();
}

absl::Status RunTranspose(Context& ctx, const std::string& source, const OutputArgs& output) {
  v1::TransposeRequest req;
  *req.mutable_source()->mutable_ref() = RefFromArg(source);
  *req.mutable_output() = output.ToProto();
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::OpResult r, client->Transpose(req));
  PrintHeldResult(r);
  return absl::OkStatus();
}

struct PruneArgs {
  std::string source;
  std::optional<double> sparsity;
  bool per_row = false;
  std::string nm;
  std::string block;
  OutputArgs output;
};

absl::Status RunPrune(Context& ctx, const PruneArgs& a) {
  v1::PruneRequest req;
  *req.mutable_source()->mutable_ref() = RefFromArg(a.source);
  if (!a.nm.empty()) {
    const auto [n, m] = ParseNmArg(a.nm);
    req.mutable_nm()->set_n(n);
    req.mutable_nm()->set_m(m);
  } else if (!a.block.empty()) {
    for (int64_t v : ParseBlockArg(a.block)) req.mutable_block()->add_block(v);
    req.mutable_block()->set_sparsity(*a.sparsity);  // --block needs --sparsity
  } else if (a.sparsity) {
    req.mutable_magnitude()->set_sparsity(*a.sparsity);
    req.mutable_magnitude()->set_per_row(a.per_row);
  } else {
    throw CLI::ValidationError("prune",
                               "give --sparsity S [--per-row], --nm N:M or --block R[,C] "
                               "--sparsity S");
  }
  *req.mutable_output() = a.output.ToProto();
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::OpResult r, client->Prune(req));
  PrintHeldResult(r);
  return absl::OkStatus();
}

}  // namespace

void AddTransformCommands(CLI::App& app, Context& ctx) {
  {
    auto a = std::make_shared<ConvertArgs>();
    CLI::App* cmd = app.add_subcommand(
        "convert", "Hold a copy of a tensor in another format (the source stays)");
    cmd->add_option("ID|NAME", a->source, "Source tensor id (t-<16 hex>) or name")->required();
    cmd->add_option("--to", a->to, "Target format: dense, coo, csr, csc, bsr, nm")
        ->required()
        ->type_name("FORMAT");
    cmd->add_option("--block", a->block, "BSR block R,C (or R for R x R); required for bsr")
        ->type_name("R[,C]");
    cmd->add_option("--nm", a->nm,
                    "N:M pattern (e.g. 2:4); required for nm. The source must already have at "
                    "most N non-zeros in every group of M (else: sparsectl prune --nm)")
        ->type_name("N:M");
    cmd->add_option("--index", a->index, "Index dtype of the result (default: narrowest)")
        ->check(CLI::IsMember({"i32", "i64"}));
    a->output.AddTo(cmd);
    cmd->footer("Prints the new tensor's id.");
    SetRun(cmd, ctx, [a](Context& c) { return RunConvert(c, *a); });
  }
  {
    auto source = std::make_shared<std::string>();
    auto output = std::make_shared<OutputArgs>();
    CLI::App* cmd =
        app.add_subcommand("transpose", "Hold the transpose of a tensor, in the same format");
    cmd->add_option("ID|NAME", *source, "Source tensor id (t-<16 hex>) or name")->required();
    output->AddTo(cmd);
    SetRun(cmd, ctx, [source, output](Context& c) { return RunTranspose(c, *source, *output); });
  }
  {
    auto a = std::make_shared<PruneArgs>();
    CLI::App* cmd = app.add_subcommand(
        "prune", "Hold a pruned copy of a tensor: magnitude (csr), n:m (nm) or block (bsr)");
    cmd->add_option("ID|NAME", a->source, "Source tensor id (t-<16 hex>) or name")->required();
    CLI::Option* sparsity =
        cmd->add_option("--sparsity", a->sparsity,
                        "Fraction of positions (with --block: of blocks) left zero, in [0, 1]");
    CLI::Option* per_row =
        cmd->add_flag("--per-row", a->per_row, "Apply --sparsity to every row separately");
    CLI::Option* nm = cmd->add_option("--nm", a->nm, "Keep the N largest of every M along rows")
                          ->type_name("N:M");
    CLI::Option* block =
        cmd->add_option("--block", a->block, "Keep the blocks of largest norm (needs --sparsity)")
            ->type_name("R[,C]");
    per_row->needs(sparsity);
    nm->excludes(sparsity)->excludes(block)->excludes(per_row);
    block->needs(sparsity)->excludes(per_row);
    a->output.AddTo(cmd);
    cmd->footer("Modes: --sparsity S [--per-row] | --nm N:M | --block R[,C] --sparsity S");
    SetRun(cmd, ctx, [a](Context& c) { return RunPrune(c, *a); });
  }
}

}  // namespace sparsed::client::cli
