#include "server/checkpoints.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
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

std::string CheckpointDir(const Config& config, const std::string& tenant) {
  if (tenant.empty()) return CheckpointDir(config);
  return (fs::path(CheckpointDir(config)) / "tenants" / tenant).string();
}

std::vector<std::string> TenantsWithCheckpoints(const Config& config) {
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path dir = fs::path(CheckpointDir(config)) / "tenants";
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string tenant = e.path().filename().string();
    // Only real folders with valid tenant names (never follow a symlink).
    if (e.is_directory(ec) && !e.is_symlink(ec) && CheckTenantName(tenant, "").ok()) {
      out.push_back(tenant);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

absl::StatusOr<std::string> CheckpointPath(const Config& config, const std::string& tenant,
                                           const std::string& name, std::string_view field) {
  RETURN_IF_ERROR(checkpoint::CheckName(name, field));
  return (fs::path(CheckpointDir(config, tenant)) / (name + ".safetensors")).string();
}

namespace {

// Bytes of the checkpoint files (*.safetensors, not symlinks) in `dir`, but
// `except` (the file a save is about to replace).
int64_t CheckpointFileBytes(const std::string& dir, const std::string& except) {
  int64_t total = 0;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".safetensors" || e.path() == fs::path(except)) continue;
    if (e.is_symlink(ec) || !e.is_regular_file(ec)) continue;
    const auto size = e.file_size(ec);
    if (!ec) total += static_cast<int64_t>(size);
  }
  return total;
}

// checkpoint_max_bytes (all tenants) and tenant_max_checkpoint_bytes: a save
// whose file would take the checkpoints past either is refused before it
// writes anything. `estimate`: the bytes of the arrays to save (the header
// is small beside them).
absl::Status CheckCheckpointQuota(ServiceContext& ctx, const std::string& tenant,
                                  const std::string& path, int64_t estimate) {
  const Config& c = ctx.config;
  if (c.checkpoint_max_bytes > 0) {
    int64_t all = CheckpointFileBytes(CheckpointDir(c), path);
    for (const std::string& t : TenantsWithCheckpoints(c)) {
      all += CheckpointFileBytes(CheckpointDir(c, t), path);
    }
    if (all + estimate > c.checkpoint_max_bytes) {
      return absl::ResourceExhaustedError(
          StrCat("checkpoint not saved: checkpoint_max_bytes = ", c.checkpoint_max_bytes,
                 ": the other checkpoints take ", all, " bytes and this one about ", estimate,
                 "; delete some"));
    }
  }
  const int64_t tenant_max = c.tenant_max_checkpoint_bytes;
  if (tenant_max > 0 && !tenant.empty()) {
    const int64_t mine = CheckpointFileBytes(CheckpointDir(c, tenant), path);
    if (mine + estimate > tenant_max) {
      ctx.quotas->CountRefusal(tenant, "tenant_max_checkpoint_bytes");
      return QuotaExceeded(tenant, "tenant_max_checkpoint_bytes", static_cast<double>(tenant_max),
                           StrCat("checkpoint not saved: its other checkpoints take ", mine,
                                  " bytes and this one about ", estimate, "; delete some"));
    }
  }
  return absl::OkStatus();
}

// Writes `tensors` (each once) and then `layers` to checkpoint `name`.
absl::StatusOr<SavedCheckpoint> SaveEntries(ServiceContext& ctx, const std::string& tenant,
                                            const std::string& name,
                                            const std::vector<TensorPtr>& tensors,
                                            const std::vector<ExportedLayer>& layers) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, tenant, name));
  const std::string dir = CheckpointDir(ctx.config, tenant);
  std::vector<checkpoint::EntryRef> refs;
  std::set<std::string> seen;
  for (const TensorPtr& t : tensors) {
    if (!seen.insert(t->id).second) continue;  // the same tensor named twice
    refs.push_back({t->id, t->name, t->labels, &t->tensor});
  }
  const int64_t tensor_count = static_cast<int64_t>(refs.size());
  for (const ExportedLayer& layer : layers) AppendLayerEntries(layer, &refs);
  int64_t estimate = 0;
  for (const checkpoint::EntryRef& r : refs) estimate += r.tensor->bytes();
  std::lock_guard lock(ctx.checkpoint_mu);
  RETURN_IF_ERROR(CheckCheckpointQuota(ctx, tenant, path, estimate));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        StrCat("checkpoint directory '", dir, "' cannot be created: ", ec.message()));
  }
  RETURN_IF_ERROR(checkpoint::Save(path, refs));
  const auto size = fs::file_size(path, ec);
  return SavedCheckpoint{tensor_count, static_cast<int64_t>(layers.size()),
                         ec ? int64_t{0} : static_cast<int64_t>(size)};
}

}  // namespace

absl::StatusOr<SavedCheckpoint> SaveTensors(ServiceContext& ctx, const std::string& tenant,
                                            const std::string& name,
                                            const std::vector<TensorPtr>& tensors) {
  return SaveEntries(ctx, tenant, name, tensors, {});
}

absl::StatusOr<SavedCheckpoint> SaveAll(ServiceContext& ctx, const std::string& tenant,
                                        const std::string& name) {
  RETURN_IF_ERROR(checkpoint::CheckName(name, "name"));
  // A session's tensors end with it, so a checkpoint (from which they could
  // come back without it) leaves them out.
  std::vector<TensorPtr> tensors = ctx.store.List(tenant, "");
  std::erase_if(tensors, [](const TensorPtr& t) { return !t->lifetime.session_id.empty(); });
  std::vector<ExportedLayer> layers;
  for (const LayerPtr& layer : ctx.layers.List(tenant)) {
    absl::StatusOr<ExportedLayer> exported = ExportLayer(*layer);
    if (!exported.ok()) {
      return absl::Status(exported.status().code(),
                          StrCat("checkpoint '", name, "' not saved: layer ", layer->id, ": ",
                                 exported.status().message()));
    }
    layers.push_back(*std::move(exported));
  }
  return SaveEntries(ctx, tenant, name, tensors, layers);
}

absl::StatusOr<SavedCheckpoint> SaveEveryTenant(ServiceContext& ctx, const std::string& name) {
  RETURN_IF_ERROR(checkpoint::CheckName(name, "name"));
  std::set<std::string> tenants = {""};
  for (const TensorPtr& t : ctx.store.ListAll()) tenants.insert(t->tenant);
  for (const LayerPtr& l : ctx.layers.ListAll()) tenants.insert(l->tenant);
  for (const std::string& t : TenantsWithCheckpoints(ctx.config)) {
    std::error_code ec;
    ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, t, name));
    if (fs::exists(path, ec)) tenants.insert(t);
  }
  SavedCheckpoint total;
  absl::Status first_error;
  for (const std::string& tenant : tenants) {
    absl::StatusOr<SavedCheckpoint> saved = SaveAll(ctx, tenant, name);
    if (!saved.ok()) {
      if (first_error.ok()) {
        first_error =
            tenant.empty()
                ? saved.status()
                : absl::Status(saved.status().code(),
                               StrCat("tenant '", tenant, "': ", saved.status().message()));
      }
      continue;
    }
    total.tensors += saved->tensors;
    total.layers += saved->layers;
    total.bytes += saved->bytes;
  }
  if (!first_error.ok()) return first_error;
  return total;
}

namespace {

std::string LayerLabel(const std::string& saved_id, const std::string& name) {
  return name.empty() ? StrCat("layer ", saved_id) : StrCat("layer '", name, "'");
}

}  // namespace

absl::StatusOr<RestoredCheckpoint> RestoreCheckpoint(ServiceContext& ctx, const std::string& tenant,
                                                     const std::string& name) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, tenant, name));
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
    absl::Status free = ctx.store.CheckNameFree(tenant, e.name);
    if (!free.ok()) {
      return absl::AlreadyExistsError(
          StrCat(not_restored, "tensor '", e.name, "': ", free.message()));
    }
  }
  for (const SavedLayer& l : saved_layers) {
    absl::Status free = ctx.layers.CheckNameFree(tenant, l.name);
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
    for (const RestoredTensor& r : out.tensors) (void)ctx.store.EraseById(tenant, r.tensor->id);
    for (const RestoredLayer& r : out.layers) (void)ctx.layers.EraseById(tenant, r.layer->id);
  };
  std::vector<TensorStore::NewTensor> batch;
  batch.reserve(entries.size());
  for (checkpoint::Entry& e : entries) {
    batch.push_back({std::move(e.tensor), e.name, std::move(e.labels), tenant});
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
    absl::StatusOr<LayerPtr> layer = ctx.layers.Insert(tenant, std::move(built[i]), l.name);
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

absl::StatusOr<RestoredCheckpoint> RestoreEveryTenant(ServiceContext& ctx,
                                                      const std::string& name) {
  std::vector<std::string> tenants = {""};
  for (const std::string& t : TenantsWithCheckpoints(ctx.config)) tenants.push_back(t);
  RestoredCheckpoint all;
  bool found = false;
  for (const std::string& tenant : tenants) {
    absl::StatusOr<RestoredCheckpoint> one = RestoreCheckpoint(ctx, tenant, name);
    if (absl::IsNotFound(one.status())) continue;
    if (!one.ok()) {
      if (tenant.empty()) return one.status();
      return absl::Status(one.status().code(),
                          StrCat("tenant '", tenant, "': ", one.status().message()));
    }
    found = true;
    for (RestoredTensor& t : one->tensors) all.tensors.push_back(std::move(t));
    for (RestoredLayer& l : one->layers) all.layers.push_back(std::move(l));
  }
  if (!found) {
    ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, "", name));
    return absl::NotFoundError(
        StrCat("no checkpoint named '", name, "' (", path, ", nor one of any tenant)"));
  }
  return all;
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

absl::Status DeleteCheckpoint(ServiceContext& ctx, const std::string& tenant,
                              const std::string& name) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, tenant, name));
  std::lock_guard lock(ctx.checkpoint_mu);
  std::error_code ec;
  if (!fs::remove(path, ec)) {
    if (ec) return absl::InternalError(StrCat("cannot remove '", path, "': ", ec.message()));
    return absl::NotFoundError(StrCat("no checkpoint named '", name, "'"));
  }
  SyncDir(CheckpointDir(ctx.config, tenant));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<checkpoint::Summary>> ListCheckpoints(const ServiceContext& ctx,
                                                                 const std::string& tenant) {
  const std::string dir = CheckpointDir(ctx.config, tenant);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::vector<checkpoint::Summary>{};
  return checkpoint::List(dir);
}

}  // namespace sparsed::server
