// put, get, ls, info, rm.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "progress.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::client::cli {
namespace {

struct PutArgs {
  std::string file;
  std::string name;
  std::string format;
  std::string dtype;  // "" = the file's (f16 for '<f2' .npy, else f32)
  std::map<std::string, std::string> labels;
  bool quiet = false;
};

absl::Status RunPut(Context& ctx, const PutArgs& a) {
  ASSIGN_OR_RETURN(Tensor t, ReadTensorFile(a.file));
  // Default: CSR for Matrix Market coordinate files, dense for arrays.
  const Format target = a.format.empty() ? (IsSparse(t.format()) ? Format::kCsr : Format::kDense)
                                         : *ParseFormat(a.format);
  ASSIGN_OR_RETURN(t, CanonicalFromFile(std::move(t), "file"));
  if (t.format() != target) {
    ASSIGN_OR_RETURN(t, Convert(t, target));
  }
  if (!a.dtype.empty()) {
    const DType want = a.dtype == "f16"    ? DType::kF16
                       : a.dtype == "bf16" ? DType::kBF16
                                           : DType::kF32;
    if (t.desc().dtype != want) {
      ASSIGN_OR_RETURN(t, CastValues(t, want));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  v1::TensorInfo info;
  {
    ProgressBar bar("upload");
    UploadOptions options;
    options.name = a.name;
    options.labels = a.labels;
    options.progress = bar.Callback();
    ASSIGN_OR_RETURN(info, client->Upload(t, options));
  }
  std::cout << info.id() << std::endl;
  if (!a.quiet) {
    std::cout << "  " << (info.name().empty() ? "" : StrCat("name=", info.name(), " "))
              << Summary(info) << std::endl;
  }
  return absl::OkStatus();
}

absl::Status RunGet(Context& ctx, const std::string& ref, const std::string& out) {
  RETURN_IF_ERROR(CheckTensorFileName(out));
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  std::pair<v1::TensorInfo, Tensor> result;
  {
    ProgressBar bar("download");
    ASSIGN_OR_RETURN(result, client->Download(RefFromArg(ref), bar.Callback()));
  }
  RETURN_IF_ERROR(WriteTensorFile(result.second, out));
  std::cout << "wrote " << out << ": " << IdAndName(result.first) << " " << Summary(result.first)
            << std::endl;
  return absl::OkStatus();
}

// "-" (until deleted), "session s-...", "expires in 42s", or both.
std::string LifetimeString(const v1::TensorInfo& t) {
  std::string out;
  if (!t.session_id().empty()) out = StrCat("session ", t.session_id());
  if (t.expires_unix_ms() > 0) {
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
    const int64_t left_s = std::max<int64_t>(0, (t.expires_unix_ms() - now_ms + 999) / 1000);
    out += StrCat(out.empty() ? "" : ", ", "expires in ", left_s, "s");
  }
  return out.empty() ? "-" : out;
}

absl::Status RunLs(Context& ctx, const std::string& prefix, bool quiet) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::ListResponse list, client->List(prefix));
  if (ctx.json) return PrintJson(list);
  if (quiet) {
    for (const v1::TensorInfo& t : list.tensors()) std::cout << t.id() << "\n";
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "NAME", "FORMAT", "SHAPE", "NNZ", "BYTES", "DEVICE", "LIFETIME"}};
  for (const v1::TensorInfo& t : list.tensors()) {
    const bool sparse = IsSparseDesc(t.desc());
    rows.push_back({t.id(), t.name().empty() ? "-" : t.name(), FormatString(t.desc()),
                    ShapeString(t.desc()), sparse ? StrCat(t.desc().nnz()) : "-",
                    HumanBytes(t.bytes()), t.device(), LifetimeString(t)});
  }
  PrintTable(rows);
  return absl::OkStatus();
}

std::string UtcTime(int64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return absl::StrFormat("%s.%03d UTC", buf, static_cast<int>(unix_ms % 1000));
}

absl::Status RunInfo(Context& ctx, const std::string& ref) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::TensorInfo t, client->GetInfo(RefFromArg(ref)));
  const v1::TensorDesc& d = t.desc();
  const bool sparse = IsSparseDesc(d);
  auto line = [](std::string_view key, const std::string& value) {
    std::cout << absl::StrFormat("%-12s %s\n", absl::string_view(key.data(), key.size()), value);
  };
  line("id:", t.id());
  line("name:", t.name().empty() ? "-" : t.name());
  line("lifetime:", LifetimeString(t));
  const std::string params = FormatParams(d);
  line("format:", params.empty() ? FormatString(d) : StrCat(FormatString(d), " (", params, ")"));
  line("dtype:", DTypeString(d.dtype()));
  if (sparse && d.format() != v1::NM) {
    line("index dtype:",
         DTypeString(d.index_dtype() == v1::DTYPE_UNSPECIFIED ? v1::I32 : d.index_dtype()));
  }
  line("shape:", ShapeString(d));
  if (d.format() == v1::COO || d.format() == v1::CSR || d.format() == v1::CSC) {
    int64_t cells = 1;
    for (int64_t s : d.shape()) cells *= s;
    line("nnz:", cells > 0 ? absl::StrFormat("%d (density %.4g%%)", d.nnz(),
                                             100.0 * static_cast<double>(d.nnz()) / cells)
                           : StrCat(d.nnz()));
  } else if (d.format() == v1::BSR) {
    line("nnz:", StrCat(d.nnz(), " blocks"));
  } else if (d.format() == v1::NM) {
    line("nnz:", StrCat(d.nnz(), " slots"));
  }
  line("bytes:", StrCat(HumanBytes(t.bytes()), " (", t.bytes(), ")"));
  line("device:", t.device());
  line("created:", t.created_unix_ms() > 0 ? UtcTime(t.created_unix_ms()) : "-");
  // Sorted for stable output (the proto map has no order).
  std::map<std::string, std::string> labels(t.labels().begin(), t.labels().end());
  if (labels.empty()) line("labels:", "-");
  bool first = true;
  for (const auto& [k, v] : labels) {
    line(first ? "labels:" : "", StrCat(k, "=", v));
    first = false;
  }
  std::cout.flush();
  return absl::OkStatus();
}

absl::Status RunRm(Context& ctx, const std::vector<std::string>& refs) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  // Deletes what it can; reports each failure.
  for (const std::string& ref : refs) {
    absl::StatusOr<v1::DeleteResponse> r = client->Delete(RefFromArg(ref));
    if (!r.ok()) {
      PrintError(ctx, r.status());
      ctx.exit_code = 1;
      continue;
    }
    std::cout << "deleted " << r->id() << " (freed " << HumanBytes(r->bytes_freed()) << ")"
              << std::endl;
  }
  return absl::OkStatus();
}

}  // namespace

void AddTensorCommands(CLI::App& app, Context& ctx) {
  {
    auto a = std::make_shared<PutArgs>();
    CLI::App* cmd = app.add_subcommand("put", "Upload a .mtx or .npy file as a held tensor");
    cmd->add_option("FILE", a->file,
                    ".mtx (coordinate or array) or .npy file; values are held as float32 (float64, "
                    "integer and bool inputs are converted) or, for a float16 .npy, float16")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--name", a->name, "Unique name for the tensor");
    cmd->add_option("--format", a->format,
                    "Storage format (default: csr for .mtx coordinate files, dense otherwise)")
        ->check(CLI::IsMember({"csr", "coo", "dense"}));
    cmd->add_option("--dtype", a->dtype,
                    "Value type to hold: f32, f16 or bf16 (rounded to nearest even; default: the "
                    "file's)")
        ->check(CLI::IsMember({"f32", "f16", "bf16"}));
    AddLabelOption(cmd, a->labels);
    cmd->add_flag("-q,--quiet", a->quiet, "Print only the new id");
    SetRun(cmd, ctx, [a](Context& c) { return RunPut(c, *a); });
  }
  {
    auto ref = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("get", "Download a held tensor to a .mtx or .npy file");
    cmd->add_option("ID|NAME", *ref, "Tensor id (t-<16 hex>) or name")->required();
    cmd->add_option("-o,--output", *out,
                    "Output file: .npy (sparse tensors are densified; f16 stays f16, bf16 widens "
                    "to f32 exactly: NumPy has no bfloat16) or .mtx (f32)")
        ->required();
    SetRun(cmd, ctx, [ref, out](Context& c) { return RunGet(c, *ref, *out); });
  }
  {
    auto prefix = std::make_shared<std::string>();
    auto quiet = std::make_shared<bool>(false);
    CLI::App* cmd = app.add_subcommand("ls", "List held tensors");
    cmd->add_option("PREFIX", *prefix, "Only tensors whose name starts with PREFIX");
    cmd->add_flag("-q,--quiet", *quiet, "Print only ids");
    SetRun(cmd, ctx, [prefix, quiet](Context& c) { return RunLs(c, *prefix, *quiet); });
  }
  {
    auto ref = std::make_shared<std::string>();
    CLI::App* cmd = app.add_subcommand("info", "Show everything about a held tensor");
    cmd->add_option("ID|NAME", *ref, "Tensor id (t-<16 hex>) or name")->required();
    SetRun(cmd, ctx, [ref](Context& c) { return RunInfo(c, *ref); });
  }
  {
    auto refs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = app.add_subcommand("rm", "Delete held tensors");
    cmd->add_option("ID|NAME", *refs, "Tensor ids (t-<16 hex>) or names")->required();
    SetRun(cmd, ctx, [refs](Context& c) { return RunRm(c, *refs); });
  }
}

}  // namespace sparsed::client::cli
