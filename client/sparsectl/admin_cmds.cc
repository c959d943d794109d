// status.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

std::string Duration(double seconds) {
  int64_t s = static_cast<int64_t>(seconds);
  const int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60;
  s %= 60;
  if (d > 0) return absl::StrFormat("%dd %dh %dm", d, h, m);
  if (h > 0) return absl::StrFormat("%dh %dm %ds", h, m, s);
  if (m > 0) return absl::StrFormat("%dm %ds", m, s);
  return absl::StrFormat("%.1fs", seconds);
}

absl::Status RunStatus(Context& ctx) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::StatusResponse st, client->GetStatus());
  // A failed device makes the command fail (after printing), so that a
  // health check built on it (the images' HEALTHCHECK) sees the fault.
  auto fault = [&st]() -> absl::Status {
    for (const v1::DeviceInfo& d : st.devices()) {
      if (!d.fault().empty()) {
        return absl::UnavailableError(StrCat("device ", d.name(), " has failed: ", d.fault()));
      }
    }
    return absl::OkStatus();
  };
  if (ctx.json) {
    RETURN_IF_ERROR(PrintJson(st));
    return fault();
  }
  std::cout << absl::StrFormat("%-10s %s\n", "server:", ctx.server)
            << absl::StrFormat("%-10s %s\n", "version:", st.version())
            << absl::StrFormat("%-10s %s\n", "backend:", st.backend())
            << absl::StrFormat("%-10s %s\n", "uptime:", Duration(st.uptime_seconds()))
            << absl::StrFormat("%-10s %d (%s)\n", "tensors:", st.tensor_count(),
                               HumanBytes(st.memory_in_use_bytes()));
  if (!st.tenant().empty()) {
    std::cout << absl::StrFormat("%-10s %s (%s)\n", "tenant:", st.tenant(), st.role());
  }
  if (!st.data_dir().empty())
    std::cout << absl::StrFormat("%-10s %s\n", "data dir:", st.data_dir());
  if (!st.metrics_address().empty()) {
    std::cout << absl::StrFormat("%-10s http://%s/metrics\n", "metrics:", st.metrics_address());
  }
  std::cout << "devices:\n";
  for (const v1::DeviceInfo& d : st.devices()) {
    std::cout << absl::StrFormat(
        "  %-8s %-40s %s / %s in use%s\n", d.name(), d.description(),
        HumanBytes(d.memory_in_use_bytes()),
        d.memory_total_bytes() > 0 ? HumanBytes(d.memory_total_bytes()) : std::string("?"),
        d.active() ? "  [active]" : "");
    if (d.pool_reserved_bytes() > 0) {
      std::cout << absl::StrFormat("  %-8s memory pool: %s reserved, %s used\n", "",
                                   HumanBytes(d.pool_reserved_bytes()),
                                   HumanBytes(d.pool_used_bytes()));
    }
    if (!d.fault().empty()) std::cout << absl::StrFormat("  %-8s FAILED: %s\n", "", d.fault());
  }
  std::cout.flush();
  return fault();
}

}  // namespace

void AddAdminCommands(CLI::App& app, Context& ctx) {
  CLI::App* cmd = app.add_subcommand("status", "Show the daemon's version, backend and memory");
  SetRun(cmd, ctx, RunStatus);
}

}  // namespace sparsed::client::cli
