// sparsectl checkpoint save|restore|ls|rm: the daemon's checkpoints.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "commands.h"
#include "common.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::client::cli {
namespace {

absl::Status RunSave(Context& ctx, const std::string& name, const std::vector<std::string>& refs) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  std::vector<v1::TensorRef> tensors;
  for (const std::string& r : refs) tensors.push_back(RefFromArg(r));
  ASSIGN_OR_RETURN(v1::SaveCheckpointResponse r, client->SaveCheckpoint(name, tensors));
  std::cout << "saved checkpoint " << r.name() << ": " << r.tensors() << " tensors, "
            << (r.layers() > 0 ? StrCat(r.layers(), " layers, ") : "") << HumanBytes(r.bytes())
            << std::endl;
  return absl::OkStatus();
}

absl::Status RunRestore(Context& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::RestoreCheckpointResponse r, client->RestoreCheckpoint(name));
  std::cout << "restored checkpoint " << name << ": " << r.restored_size() << " tensors"
            << (r.layers() > 0 ? StrCat(", ", r.layers(), " layers") : "") << "\n";
  if (r.restored_size() > 0) {
    std::vector<std::vector<std::string>> rows = {{"ID", "NAME", "SAVED_ID", "TENSOR"}};
    for (const v1::TensorInfo& t : r.restored()) {
      std::string saved = "-";
      for (const auto& [old_id, new_id] : r.id_map()) {
        if (new_id == t.id()) saved = old_id;
      }
      rows.push_back({t.id(), t.name().empty() ? "-" : t.name(), saved, Summary(t)});
    }
    PrintTable(rows);
  }
  std::cout.flush();
  return absl::OkStatus();
}

absl::Status RunLs(Context& ctx) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  ASSIGN_OR_RETURN(v1::ListCheckpointsResponse r, client->ListCheckpoints());
  if (r.checkpoints().empty()) {
    std::cout << "(no checkpoints)" << std::endl;
    return absl::OkStatus();
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "TENSORS", "SIZE", "MODIFIED"}};
  for (const v1::CheckpointInfo& c : r.checkpoints()) {
    rows.push_back(
        {c.name(), StrCat(c.tensors()), HumanBytes(c.bytes()), UtcTime(c.modified_unix_ms())});
  }
  PrintTable(rows);
  std::cout.flush();
  return absl::OkStatus();
}

absl::Status RunRm(Context& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(std::unique_ptr<Client> client, ctx.Connect());
  RETURN_IF_ERROR(client->DeleteCheckpoint(name));
  std::cout << "removed checkpoint " << name << std::endl;
  return absl::OkStatus();
}

}  // namespace

void AddCheckpointCommands(CLI::App& app, Context& ctx) {
  CLI::App* group = app.add_subcommand(
      "checkpoint", "Save the daemon's tensors to checkpoints on its disk, restore, list, remove");
  group->require_subcommand(1);
  group->fallthrough();
  {
    auto name = std::make_shared<std::string>();
    auto refs = std::make_shared<std::vector<std::string>>();
    CLI::App* cmd = group->add_subcommand(
        "save",
        "Save tensors (all held tensors and layers when none are given) as checkpoint NAME, "
        "replacing it atomically");
    cmd->add_option("NAME", *name, "Checkpoint name ([A-Za-z0-9._-], 1-128 characters)")
        ->required();
    cmd->add_option("TENSORS", *refs, "Ids or names of the tensors to save (default: all)");
    SetRun(cmd, ctx, [name, refs](Context& c) { return RunSave(c, *name, *refs); });
  }
  {
    auto name = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand(
        "restore",
        "Add the tensors of checkpoint NAME under new ids (names and labels kept); "
        "all or nothing");
    cmd->add_option("NAME", *name, "Checkpoint name")->required();
    SetRun(cmd, ctx, [name](Context& c) { return RunRestore(c, *name); });
  }
  {
    CLI::App* cmd = group->add_subcommand("ls", "List checkpoints: tensors, file size, time");
    SetRun(cmd, ctx, RunLs);
  }
  {
    auto name = std::make_shared<std::string>();
    CLI::App* cmd = group->add_subcommand("rm", "Remove checkpoint NAME");
    cmd->add_option("NAME", *name, "Checkpoint name")->required();
    SetRun(cmd, ctx, [name](Context& c) { return RunRm(c, *name); });
  }
}

}  // namespace sparsed::client::cli
