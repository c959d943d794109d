#include "server/checkpoints.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <system_error>

#include "server/layer_checkpoint.h"
#include "server/tensor_access.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace fs = std::filesystem;

std::string CheckpointDir(const Config& config) {
  return (fs::path(config.data_dir) / "checkpoints").string();
}

absl::StatusOr<std::string> CheckpointPath(const Config& config, const std::string& name,
                                           std::string_view field) {
  RETURN_IF_ERROR(checkpoint::CheckName(name, field));
  return (fs::path(CheckpointDir(config)) / (name + ".safetensors")).string();
}

namespace {

// Writes `tensors` (each once) and then `layers` to checkpoint `name`.
absl::StatusOr<SavedCheckpoint> SaveEntries(ServiceContext& ctx, const std::string& name,
                                            const std::vector<TensorPtr>& tensors,
                                            const std::vector<ExportedLayer>& layers) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, name));
  std::vector<checkpoint::EntryRef> refs;
  std::set<std::string> seen;
  for (const TensorPtr& t : tensors) {
    if (!seen.insert(t->id).second) continue;  // the same tensor named twice
    refs.push_back({t->id, t->name, t->labels, &t->tensor});
  }
  const int64_t tensor_count = static_cast<int64_t>(refs.size());
  for (const ExportedLayer& layer : layers) AppendLayerEntries(layer, &refs);
  std::lock_guard lock(ctx.checkpoint_mu);
  std::error_code ec;
  fs::create_directories(CheckpointDir(ctx.config), ec);
  if (ec) {
    return absl::FailedPreconditionError(StrCat("checkpoint directory '", CheckpointDir(ctx.config),
                                                "' cannot be created: ", ec.message()));
  }
  RETURN_IF_ERROR(checkpoint::Save(path, refs));
  const auto size = fs::file_size(path, ec);
  return SavedCheckpoint{tensor_count, static_cast<int64_t>(layers.size()),
                         ec ? int64_t{0} : static_cast<int64_t>(size)};
}

}  // namespace

absl::StatusOr<SavedCheckpoint> SaveTensors(ServiceContext& ctx, const std::string& name,
                                            const std::vector<TensorPtr>& tensors) {
  return SaveEntries(ctx, name, tensors, {});
}

absl::StatusOr<SavedCheckpoint> SaveAll(ServiceContext& ctx, const std::string& name) {
  RETURN_IF_ERROR(checkpoint::CheckName(name, "name"));
  const std::vector<TensorPtr> tensors = ctx.store.List("");
  std::vector<ExportedLayer> layers;
  for (const LayerPtr& layer : ctx.layers.List()) {
    absl::StatusOr<ExportedLayer> exported = ExportLayer(*layer);
    if (!exported.ok()) {
      return absl::Status(exported.status().code(),
                          StrCat("checkpoint '", name, "' not saved: layer ", layer->id, ": ",
                                 exported.status().message()));
    }
    layers.push_back(*std::move(exported));
  }
  return SaveEntries(ctx, name, tensors, layers);
}

namespace {

std::string LayerLabel(const std::string& saved_id, const std::string& name) {
  return name.empty() ? StrCat("layer ", saved_id) : StrCat("layer '", name, "'");
}

}  // namespace

absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(ServiceContext& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, name));
  std::lock_guard lock(ctx.restore_mu);
  // Load verifies the whole file before returning anything.
  absl::StatusOr<std::vector<checkpoint::Entry>> loaded = checkpoint::Load(path);
  if (absl::IsNotFound(loaded.status())) {
    return absl::NotFoundError(StrCat("no checkpoint named '", name, "' (", path, ")"));
  }
  if (!loaded.ok()) return loaded.status();
  std::vector<checkpoint::Entry> entries = *std::move(loaded);
  const std::string not_restored = StrCat("checkpoint '", name, "' not restored, nothing added: ");
  absl::StatusOr<std::vector<SavedLayer>> taken = TakeLayers(entries, path);
  if (!taken.ok()) {
    return absl::Status(taken.status().code(), StrCat(not_restored, taken.status().message()));
  }
  std::vector<SavedLayer> saved_layers = *std::move(taken);
  for (const checkpoint::Entry& e : entries) {
    absl::Status free = ctx.store.CheckNameFree(e.name);
    if (!free.ok()) {
      return absl::AlreadyExistsError(
          StrCat(not_restored, "tensor '", e.name, "': ", free.message()));
    }
  }
  for (const SavedLayer& l : saved_layers) {
    absl::Status free = ctx.layers.CheckNameFree(l.name);
    if (!free.ok()) {
      return absl::AlreadyExistsError(
          StrCat(not_restored, LayerLabel(l.saved_id, l.name), ": ", free.message()));
    }
  }
  // Everything on the device first, so that running out of memory adds nothing.
  for (checkpoint::Entry& e : entries) {
    ASSIGN_OR_RETURN(e.tensor, MoveToDevice(std::move(e.tensor), ctx.backend->device()));
  }
  std::vector<train::SparseLinear> built;
  built.reserve(saved_layers.size());
  for (SavedLayer& l : saved_layers) {
    absl::StatusOr<train::SparseLinear> layer =
        train::SparseLinear::FromState(*ctx.backend, std::move(l.state));
    if (!layer.ok()) {
      return absl::Status(
          layer.status().code(),
          StrCat(not_restored, LayerLabel(l.saved_id, l.name), ": ", layer.status().message()));
    }
    built.push_back(*std::move(layer));
  }
  RestoredCheckpoint out;
  out.tensors.reserve(entries.size());
  // A layer name taken since the checks above: undo, so that it is all or nothing.
  auto undo = [&] {
    for (const RestoredTensor& r : out.tensors) (void)ctx.store.EraseById(r.tensor->id);
    for (const RestoredLayer& r : out.layers) (void)ctx.layers.EraseById(r.layer->id);
  };
  std::vector<TensorStore::NewTensor> batch;
  batch.reserve(entries.size());
  for (checkpoint::Entry& e : entries) {
    batch.push_back({std::move(e.tensor), e.name, std::move(e.labels)});
  }
  // The tensors all at once under the store's lock: a name taken since the
  // checks above adds none.
  absl::StatusOr<std::vector<TensorPtr>> held = ctx.store.InsertAll(std::move(batch));
  if (!held.ok()) {
    return absl::Status(held.status().code(), StrCat(not_restored, held.status().message()));
  }
  for (size_t i = 0; i < entries.size(); ++i) out.tensors.push_back({entries[i].id, (*held)[i]});
  for (size_t i = 0; i < built.size(); ++i) {
    const SavedLayer& l = saved_layers[i];
    absl::StatusOr<LayerPtr> layer = ctx.layers.Insert(std::move(built[i]), l.name);
    if (!layer.ok()) {
      undo();
      return absl::Status(
          layer.status().code(),
          StrCat(not_restored, LayerLabel(l.saved_id, l.name), ": ", layer.status().message()));
    }
    out.layers.push_back({l.saved_id, *std::move(layer)});
  }
  return out;
}

namespace {

// Makes a removal durable (best effort: an error only logs).
void SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) != 0) spdlog::warn("fsync of '{}' failed", dir);
  ::close(fd);
}

}  // namespace

absl::Status DeleteCheckpoint(ServiceContext& ctx, const std::string& name) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, name));
  std::lock_guard lock(ctx.checkpoint_mu);
  std::error_code ec;
  if (!fs::remove(path, ec)) {
    if (ec) return absl::InternalError(StrCat("cannot remove '", path, "': ", ec.message()));
    return absl::NotFoundError(StrCat("no checkpoint named '", name, "'"));
  }
  SyncDir(CheckpointDir(ctx.config));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<checkpoint::Summary>> ListCheckpoints(const ServiceContext& ctx) {
  const std::string dir = CheckpointDir(ctx.config);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::vector<checkpoint::Summary>{};
  return checkpoint::List(dir);
}

}  // namespace sparsed::server
