// tune ls, tune export, tune import, tune clear: the daemon's tune database.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

// The winner's time, or the fastest candidate's when the winner was not timed.
std::string BestMs(const v1::TuneEntry& e) {
  const auto& t = e.timings_ms();
  if (auto it = t.find(e.variant()); it != t.end()) return absl::StrFormat("%.4g", it->second);
  if (t.empty()) return "-";
  double best = t.begin()->second;
  for (const auto& [name, ms] : t) best = std::min(best, ms);
  return absl::StrFormat("%.4g", best);
}

absl::Status RunLs(Context& ctx) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::ListTuneResponse r, client->ListTune());
  if (r.entries().empty()) {
    std::cout << "(no entries)\n";
  } else {
    std::vector<std::vector<std::string>> rows = {{"KEY", "VARIANT", "BEST_MS", "CANDIDATES"}};
    for (const v1::TuneEntry& e : r.entries()) {
      rows.push_back({e.key(), e.variant(), BestMs(e), StrCat(e.timings_ms().size())});
    }
    PrintTable(rows);
  }
  std::cout << absl::StrFormat("\ndb: %s  entries: %d  hits: %d  misses: %d  trials: %d\n",
                               r.db_path().empty() ? "(in memory)" : r.db_path(), r.entries_size(),
                               r.hits(), r.misses(), r.trials());
  if (!r.warning().empty()) std::cout << "warning: " << r.warning() << "\n";
  std::cout.flush();
  return absl::OkStatus();
}

absl::Status RunExport(Context& ctx, const std::string& file) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(std::string json, client->ExportTune());
  if (file == "-") {
    std::cout << json << std::flush;
    return std::cout ? absl::OkStatus() : absl::DataLossError("cannot write to stdout");
  }
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (out) out << json;
  out.close();
  if (!out) {
    return absl::PermissionDeniedError(StrCat("cannot write '", file, "': ", std::strerror(errno)));
  }
  std::cout << "wrote " << file << " (" << json.size() << " bytes)" << std::endl;
  return absl::OkStatus();
}

absl::Status RunImport(Context& ctx, const std::string& file) {
  ASSIGN_OR_RETURN(std::string json, ReadTextFile(file));
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  absl::StatusOr<v1::ImportTuneResponse> r = client->ImportTune(json);
  if (!r.ok()) {
    return absl::Status(r.status().code(), StrCat(file, ": ", r.status().message()));
  }
  std::cout << "imported " << r->imported() << " entries from "
            << (file == "-" ? std::string("stdin") : file) << " (database now has " << r->entries()
            << ")" << std::endl;
  return absl::OkStatus();
}

absl::Status RunClear(Context& ctx) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(int64_t removed, client->ClearTune());
  std::cout << "removed " << removed << " entries" << std::endl;
  return absl::OkStatus();
}

}  // namespace

void AddTuneCommands(CLI::App& app, Context& ctx) {
  CLI::App* tune = app.add_subcommand(
      "tune", "Inspect and manage the daemon's tune database (autotuned SpMM kernel variants)");
  tune->require_subcommand(1);
  tune->fallthrough();
  {
    CLI::App* cmd = tune->add_subcommand(
        "ls", "List tuned keys: winning variant, its time and how many candidates were timed");
    SetRun(cmd, ctx, RunLs);
  }
  {
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = tune->add_subcommand("export", "Write the tune database as JSON");
    cmd->add_option("FILE", *file, "Output file ('-': stdout)")->required();
    SetRun(cmd, ctx, [file](Context& c) { return RunExport(c, *file); });
  }
  {
    auto file = std::make_shared<std::string>();
    CLI::App* cmd = tune->add_subcommand(
        "import",
        "Merge entries from a JSON file made by 'tune export' (same key: the file wins); "
        "a malformed file imports nothing");
    cmd->add_option("FILE", *file, "Input file ('-': stdin)")->required();
    SetRun(cmd, ctx, [file](Context& c) { return RunImport(c, *file); });
  }
  {
    CLI::App* cmd =
        tune->add_subcommand("clear", "Remove every entry (kernels are tuned again on next use)");
    SetRun(cmd, ctx, RunClear);
  }
}

}  // namespace sparsed::client::cli
