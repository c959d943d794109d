// run: an op graph (Graphs.Run) from a JSON file.
//
// The file is a RunRequest in protobuf's JSON mapping (docs/API.md,
// "Graphs"), where any operand may also be a local file:
//   {"file": "x.npy"}                        dense, the file's dtype
//   {"file": "w.mtx", "format": "csr", "dtype": "bf16"}
// .mtx coordinate files become CSR unless "format" says otherwise (duplicates
// summed), .npy files dense; "dtype" casts the values (f32, f16, bf16).
// Relative paths are taken from the JSON file's folder. sparsectl reads each
// file and sends it inline.
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "sparsed/cast.h"
#include "sparsed/convert.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::client::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct RunArgs {
  std::string graph;
  std::string out_dir;
  bool timings = false;
};

absl::StatusOr<DType> DTypeFromName(const std::string& name, const std::string& where) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  return absl::InvalidArgumentError(
      StrCat(where, ".dtype = '", name, "' is not one of f32, f16, bf16"));
}

// The tensor a {"file": ...} operand names, as it is sent.
absl::StatusOr<Tensor> ReadOperandFile(const json& spec, const fs::path& base,
                                       const std::string& where) {
  for (const auto& [key, value] : spec.items()) {
    if ((key != "file" && key != "format" && key != "dtype") || !value.is_string()) {
      return absl::InvalidArgumentError(StrCat(where,
                                               ": a file operand has the string keys file, "
                                               "format and dtype only (found '",
                                               key, "')"));
    }
  }
  fs::path path = spec["file"].get<std::string>();
  if (path.is_relative()) path = base / path;
  absl::StatusOr<Tensor> read = ReadTensorFile(path.string());
  if (!read.ok()) {
    return absl::Status(read.status().code(), StrCat(where, ": ", read.status().message()));
  }
  ASSIGN_OR_RETURN(Tensor t, CanonicalFromFile(*std::move(read), path.string()));
  Format format = IsSparse(t.format()) ? Format::kCsr : Format::kDense;
  if (spec.contains("format")) {
    const std::string name = spec["format"].get<std::string>();
    const std::optional<Format> f = ParseFormat(name);
    if (!f || *f == Format::kBsr || *f == Format::kNm) {
      return absl::InvalidArgumentError(
          StrCat(where, ".format = '", name, "' is not one of dense, coo, csr, csc"));
    }
    format = *f;
  }
  if (t.format() != format) {
    ASSIGN_OR_RETURN(t, Convert(t, format));
  }
  if (spec.contains("dtype")) {
    ASSIGN_OR_RETURN(const DType dtype, DTypeFromName(spec["dtype"].get<std::string>(), where));
    if (t.desc().dtype != dtype) {
      ASSIGN_OR_RETURN(t, CastValues(t, dtype));
    }
  }
  return t;
}

// Replaces every {"file": ...} object under `node` by {"inline": InlineTensor}.
absl::Status InlineFiles(json& node, const fs::path& base, const std::string& where) {
  if (node.is_object()) {
    if (node.contains("file")) {
      ASSIGN_OR_RETURN(const Tensor t, ReadOperandFile(node, base, where));
      ASSIGN_OR_RETURN(const v1::InlineTensor msg, ToInline(t));
      std::string text;
      const auto s = google::protobuf::util::MessageToJsonString(msg, &text);
      if (!s.ok()) return absl::InternalError(StrCat(where, ": ", s.ToString()));
      node = json{{"inline", json::parse(text)}};
      return absl::OkStatus();
    }
    for (auto& [key, value] : node.items()) {
      RETURN_IF_ERROR(InlineFiles(value, base, where.empty() ? key : StrCat(where, ".", key)));
    }
  } else if (node.is_array()) {
    for (size_t i = 0; i < node.size(); ++i) {
      RETURN_IF_ERROR(InlineFiles(node[i], base, StrCat(where, "[", i, "]")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::RunRequest> ReadGraph(const std::string& file) {
  ASSIGN_OR_RETURN(const std::string text, ReadTextFile(file));
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError(StrCat(file, ": not a JSON object"));
  }
  const fs::path base = file == "-" ? fs::current_path() : fs::path(file).parent_path();
  if (absl::Status s = InlineFiles(doc, base, ""); !s.ok()) {
    return absl::Status(s.code(), StrCat(file == "-" ? "stdin" : file, ": ", s.message()));
  }
  v1::RunRequest request;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto s = google::protobuf::util::JsonStringToMessage(doc.dump(), &request, options);
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        StrCat(file, ": not a RunRequest: ", std::string(s.message())));
  }
  return request;
}

// A file name for an output: its name with anything but [A-Za-z0-9._-] as '_'.
std::string FileStem(const std::string& output) {
  std::string s = output;
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  }
  return s.empty() || s[0] == '.' ? "_" + s : s;
}

absl::Status RunGraph(Context& ctx, const RunArgs& a) {
  ASSIGN_OR_RETURN(const v1::RunRequest request, ReadGraph(a.graph));
  if (!a.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(a.out_dir, ec);
    if (ec) {
      return absl::PermissionDeniedError(
          StrCat("cannot create the folder '", a.out_dir, "': ", ec.message()));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::RunResponse response, client->Run(request));

  std::vector<std::vector<std::string>> rows{{"OUTPUT", "RESULT", "TENSOR"}};
  for (v1::GraphResult& r : *response.mutable_results()) {
    if (r.has_tensor()) {
      rows.push_back({r.output(), IdAndName(r.tensor()), Summary(r.tensor())});
      continue;
    }
    ASSIGN_OR_RETURN(const Tensor t, FromInline(r.inline_(), StrCat("results.", r.output())));
    v1::TensorInfo info;
    *info.mutable_desc() = r.inline_().desc();
    info.set_bytes(t.bytes());
    std::string where = "inline";
    if (!a.out_dir.empty()) {
      const std::string ext = IsSparse(t.format()) ? ".mtx" : ".npy";
      const std::string path = (fs::path(a.out_dir) / (FileStem(r.output()) + ext)).string();
      RETURN_IF_ERROR(WriteTensorFile(t, path));
      where = path;
    }
    rows.push_back({r.output(), where, Summary(info)});
    // The data is in the file (or was not asked for); keep --json readable.
    for (v1::Component& c : *r.mutable_inline_()->mutable_components()) c.clear_data();
  }
  if (ctx.json) return PrintJson(response);
  PrintTable(rows);
  if (a.timings) {
    std::vector<std::vector<std::string>> ops{{"OP", "KIND", "MS"}};
    for (const v1::OpTiming& t : response.ops()) {
      ops.push_back({t.op(), t.kind(), absl::StrFormat("%.3f", t.elapsed_ms())});
    }
    PrintTable(ops);
  }
  std::cout << absl::StrFormat("ran %d ops: %.3f ms compute, %.3f ms in the server",
                               response.ops_size(), response.compute_ms(), response.elapsed_ms())
            << std::endl;
  return absl::OkStatus();
}

}  // namespace

void AddGraphCommands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Run an op graph (Graphs.Run) from a JSON file");
  cmd->add_option("GRAPH", a->graph,
                  "RunRequest as JSON ('-': stdin); operands may be "
                  "{\"file\": \"x.npy\"} (sent inline)")
      ->required();
  cmd->add_option("-o,--output-dir", a->out_dir,
                  "Write the inline results to DIR/OUTPUT.npy (dense) or .mtx (sparse)")
      ->type_name("DIR");
  cmd->add_flag("--timings", a->timings, "Also print each op's time");
  cmd->footer("See docs/API.md, \"Graphs\", and bench/dnn_graph/make_dnn.py for an example.");
  SetRun(cmd, ctx, [a](Context& cx) { return RunGraph(cx, *a); });
}

}  // namespace sparsed::client::cli
