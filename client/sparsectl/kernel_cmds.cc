// kernels ls, kernels clear, kernels warm: the daemon's JIT kernel cache.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

nlohmann::json ToJson(const v1::ListKernelsResponse& r) {
  nlohmann::json entries = nlohmann::json::array();
  for (const v1::KernelEntry& e : r.entries()) {
    entries.push_back({{"key", e.key()},
                       {"spec", e.spec()},
                       {"arch", e.arch()},
                       {"bytes", e.bytes()},
                       {"last_used_unix_ms", e.last_used_unix_ms()}});
  }
  const v1::KernelCacheStats& s = r.stats();
  return {{"cache_dir", r.cache_dir()},
          {"entries", entries},
          {"stats",
           {{"hits", s.hits()},
            {"misses", s.misses()},
            {"compiles", s.compiles()},
            {"compile_errors", s.compile_errors()},
            {"entries", s.entries()},
            {"bytes_on_disk", s.bytes_on_disk()},
            {"max_bytes", s.max_bytes()}}}};
}

void PrintText(const v1::ListKernelsResponse& r) {
  if (r.entries().empty()) {
    std::cout << "(no kernels)\n";
  } else {
    std::vector<std::vector<std::string>> rows = {{"KEY", "SPEC", "ARCH", "SIZE", "LAST_USED"}};
    for (const v1::KernelEntry& e : r.entries()) {
      rows.push_back(
          {e.key(), e.spec(), e.arch(), HumanBytes(e.bytes()), UtcTime(e.last_used_unix_ms())});
    }
    PrintTable(rows);
  }
  const v1::KernelCacheStats& s = r.stats();
  if (r.cache_dir().empty()) {
    std::cout << "\ncache: none (this backend compiles no kernels at run time)\n";
  } else {
    std::cout << absl::StrFormat(
        "\ncache: %s  entries: %d  on disk: %s of %s\n", r.cache_dir(), s.entries(),
        HumanBytes(s.bytes_on_disk()),
        s.max_bytes() == 0 ? std::string("no cap") : HumanBytes(s.max_bytes()));
  }
  std::cout << absl::StrFormat("hits: %d  misses: %d  compiles: %d  compile errors: %d\n", s.hits(),
                               s.misses(), s.compiles(), s.compile_errors());
  std::cout.flush();
}

absl::Status RunLs(Context& ctx, bool json) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::ListKernelsResponse r, client->ListKernels());
  if (json) {
    std::cout << ToJson(r).dump(2) << std::endl;
  } else {
    PrintText(r);
  }
  return absl::OkStatus();
}

absl::Status RunClear(Context& ctx) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(int64_t removed, client->ClearKernels());
  std::cout << "removed " << removed << " kernels" << std::endl;
  return absl::OkStatus();
}

absl::Status RunWarm(Context& ctx, const std::string& file) {
  ASSIGN_OR_RETURN(std::string json, ReadTextFile(file));
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  const std::string source = file == "-" ? std::string("stdin") : file;
  absl::StatusOr<v1::WarmKernelsResponse> r = client->WarmKernels(json);
  if (!r.ok()) return absl::Status(r.status().code(), StrCat(source, ": ", r.status().message()));
  std::cout << "compiled " << r->compiled() << " of " << r->requested() << " kernels from "
            << source << " (" << r->requested() - r->compiled() << " already cached)" << std::endl;
  return absl::OkStatus();
}

}  // namespace

void AddKernelCommands(CLI::App& app, Context& ctx) {
  CLI::App* kernels = app.add_subcommand(
      "kernels", "Inspect and manage the daemon's JIT kernel cache (kernels compiled at run time)");
  kernels->require_subcommand(1);
  kernels->fallthrough();
  {
    auto json = std::make_shared<bool>(false);
    CLI::App* cmd = kernels->add_subcommand(
        "ls", "List compiled kernels (key, spec, arch, size, last use) and the cache counters");
    cmd->add_flag("--json", *json, "Print the entries and counters as JSON");
    SetRun(cmd, ctx, [json](Context& c) { return RunLs(c, *json); });
  }
  {
    CLI::App* cmd = kernels->add_subcommand(
        "clear", "Remove every compiled kernel, in memory and on disk (recompiled on next use)");
    SetRun(cmd, ctx, RunClear);
  }
  {
    auto file = std::make_shared<std::string>();
    CLI::App* cmd =
        kernels->add_subcommand("warm",
                                "Compile ahead of time the kernels a JSON spec list names "
                                "({\"kernels\": [{\"kernel\": NAME, \"params\": {...}}]})");
    cmd->add_option("FILE", *file, "Spec list ('-': stdin)")->required();
    SetRun(cmd, ctx, [file](Context& c) { return RunWarm(c, *file); });
  }
}

}  // namespace sparsed::client::cli
