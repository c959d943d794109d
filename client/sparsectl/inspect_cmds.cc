// inspect: statistics of a held tensor, its spy plot as a PNG or in the terminal.
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "png_writer.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "spy_render.h"

namespace sparsed::client::cli {
namespace {

// Grid sizes asked of the daemon: one PNG pixel per cell, one terminal
// character per cell.
constexpr int32_t kPngCells = 512;
constexpr int32_t kAsciiRows = 32;
constexpr int32_t kAsciiCols = 64;

struct InspectArgs {
  std::string ref;
  std::string spy_file;
  bool ascii = false;
  bool json = false;
};

int64_t Rows(const v1::TensorDesc& d) { return d.shape().empty() ? 0 : d.shape(0); }
int64_t Cols(const v1::TensorDesc& d) { return d.shape_size() < 2 ? 1 : d.shape(1); }

std::string IndexDTypeString(const v1::TensorDesc& d) {
  return DTypeString(d.index_dtype() == v1::DTYPE_UNSPECIFIED ? v1::I32 : d.index_dtype());
}

// Index arrays exist for COO, CSR, CSC and BSR (N:M stores positions as i32 meta).
bool HasIndexArrays(const v1::TensorDesc& d) { return IsSparseDesc(d) && d.format() != v1::NM; }

void PrintText(const v1::InspectResponse& r) {
  const v1::TensorInfo& t = r.info();
  const v1::TensorDesc& d = t.desc();
  auto line = [](std::string_view key, const std::string& value) {
    std::cout << absl::StrFormat("%-13s %s\n", absl::string_view(key.data(), key.size()), value);
  };
  line("id:", t.id());
  line("name:", t.name().empty() ? "-" : t.name());
  const std::string params = FormatParams(d);
  line("format:", params.empty() ? FormatString(d) : StrCat(FormatString(d), " (", params, ")"));
  if (d.format() == v1::BSR && d.block_size() == 2) {
    line("block:", StrCat(d.block(0), " x ", d.block(1)));
  }
  if (d.format() == v1::NM) line("n:m:", StrCat(d.n(), ":", d.m()));
  line("dtype:", DTypeString(d.dtype()));
  line("index dtype:", HasIndexArrays(d) ? IndexDTypeString(d) : "-");
  line("shape:", ShapeString(d));
  line("nnz:", StrCat(d.nnz()));
  line("stored:", StrCat(r.stored()));
  line("nonzeros:", StrCat(r.nonzeros()));
  line("density:", absl::StrFormat("%.6g", r.density()));
  line("bytes:", StrCat(r.bytes(), " (", HumanBytes(r.bytes()), ")"));
  line("device:", t.device());
  const v1::RowLengthStats& rl = r.row_lengths();
  line("row length:", absl::StrFormat("min %d  max %d  mean %.6g  std %.6g", rl.min(), rl.max(),
                                      rl.mean(), rl.std()));
  // Bucket i is [edges[i], edges[i+1]).
  const int buckets = std::min(rl.counts_size(), rl.edges_size() - 1);
  std::vector<std::string> ranges;
  size_t width = 0;
  for (int i = 0; i < buckets; ++i) {
    ranges.push_back(absl::StrFormat("[%d, %d)", rl.edges(i), rl.edges(i + 1)));
    width = std::max(width, ranges.back().size());
  }
  for (int i = 0; i < buckets; ++i) {
    line(i == 0 ? "histogram:" : "",
         absl::StrFormat("%-*s  %d", static_cast<int>(width), ranges[i], rl.counts(i)));
  }
  std::cout.flush();
}

nlohmann::json ToJson(const v1::InspectResponse& r) {
  const v1::TensorInfo& t = r.info();
  const v1::TensorDesc& d = t.desc();
  nlohmann::json j;
  j["id"] = t.id();
  j["name"] = t.name();
  j["format"] = FormatString(d);
  j["dtype"] = DTypeString(d.dtype());
  j["index_dtype"] = HasIndexArrays(d) ? nlohmann::json(IndexDTypeString(d)) : nlohmann::json();
  j["shape"] = std::vector<int64_t>(d.shape().begin(), d.shape().end());
  j["nnz"] = d.nnz();
  if (d.format() == v1::BSR) j["block"] = std::vector<int64_t>(d.block().begin(), d.block().end());
  if (d.format() == v1::NM) {
    j["n"] = d.n();
    j["m"] = d.m();
  }
  j["stored"] = r.stored();
  j["nonzeros"] = r.nonzeros();
  j["density"] = r.density();
  j["bytes"] = r.bytes();
  j["device"] = t.device();
  const v1::RowLengthStats& rl = r.row_lengths();
  j["row_lengths"] = {{"min", rl.min()},
                      {"max", rl.max()},
                      {"mean", rl.mean()},
                      {"std", rl.std()},
                      {"edges", std::vector<int64_t>(rl.edges().begin(), rl.edges().end())},
                      {"counts", std::vector<int64_t>(rl.counts().begin(), rl.counts().end())}};
  return j;
}

nlohmann::json GridJson(const v1::SpyGrid& g) {
  return {{"height", g.height()},
          {"width", g.width()},
          {"cell_rows", g.cell_rows()},
          {"cell_cols", g.cell_cols()}};
}

absl::StatusOr<v1::InspectResponse> Ask(Client& client, const std::string& ref, int32_t height,
                                        int32_t width) {
  v1::InspectRequest req;
  *req.mutable_tensor() = RefFromArg(ref);
  req.set_spy_height(height);
  req.set_spy_width(width);
  return client.Inspect(req);
}

absl::Status WriteSpyPng(const v1::InspectResponse& r, const std::string& path) {
  const v1::SpyGrid& g = r.spy();
  if (g.height() < 1 || g.width() < 1) {
    return absl::FailedPreconditionError(StrCat("the tensor is ", ShapeString(r.info().desc()),
                                                ": no spy image to draw into ", path));
  }
  return WriteGrayPng(path, g.width(), g.height(),
                      SpyPixels(g, Rows(r.info().desc()), Cols(r.info().desc())));
}

void PrintAscii(const v1::InspectResponse& r) {
  const v1::SpyGrid& g = r.spy();
  std::cout << absl::StrFormat(
      "spy:          %dx%d cells of %dx%d entries (\"%s\": empty to full)\n", g.height(), g.width(),
      g.cell_rows(), g.cell_cols(), kSpyShades);
  const std::string edge = StrCat("+", std::string(static_cast<size_t>(g.width()), '-'), "+");
  std::cout << edge << "\n";
  for (const std::string& row : SpyAscii(g, Rows(r.info().desc()), Cols(r.info().desc()))) {
    std::cout << "|" << row << "|\n";
  }
  std::cout << edge << std::endl;
}

absl::Status RunInspect(Context& ctx, const InspectArgs& a) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  // The statistics come with the first grid asked for.
  const bool png = !a.spy_file.empty();
  ASSIGN_OR_RETURN(const v1::InspectResponse stats,
                   Ask(*client, a.ref, png ? kPngCells : (a.ascii ? kAsciiRows : 0),
                       png ? kPngCells : (a.ascii ? kAsciiCols : 0)));
  if (png) RETURN_IF_ERROR(WriteSpyPng(stats, a.spy_file));
  if (a.json) {
    nlohmann::json j = ToJson(stats);
    if (png) {
      j["spy"] = GridJson(stats.spy());
      j["spy"]["file"] = a.spy_file;
    }
    std::cout << j.dump(2) << std::endl;
    return absl::OkStatus();
  }
  PrintText(stats);
  if (png) {
    const v1::SpyGrid& g = stats.spy();
    std::cout << absl::StrFormat("spy image:    %s (%dx%d pixels, a cell of %dx%d entries each)\n",
                                 a.spy_file, g.width(), g.height(), g.cell_rows(), g.cell_cols());
  }
  if (a.ascii) {
    if (png) {
      ASSIGN_OR_RETURN(const v1::InspectResponse small,
                       Ask(*client, a.ref, kAsciiRows, kAsciiCols));
      PrintAscii(small);
    } else {
      PrintAscii(stats);
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AddInspectCommand(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* cmd = app.add_subcommand(
      "inspect", "Statistics of a held tensor: sizes, density, non-zeros per row, spy plot");
  cmd->add_option("ID|NAME", a->ref, "Tensor id (t-<16 hex>) or name")->required();
  cmd->add_option("--spy", a->spy_file,
                  "Write the pattern as a grayscale PNG (at most 512x512, one pixel per cell; "
                  "white = empty, darker = denser)")
      ->type_name("FILE.png");
  CLI::Option* ascii = cmd->add_flag(
      "--ascii", a->ascii, "Draw the pattern in the terminal (at most 32 rows x 64 columns)");
  CLI::Option* json = cmd->add_flag("--json", a->json, "Print the statistics as JSON");
  json->excludes(ascii);
  SetRun(cmd, ctx, [a](Context& c) { return RunInspect(c, *a); });
}

}  // namespace sparsed::client::cli
