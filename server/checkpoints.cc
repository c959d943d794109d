#include "server/checkpoints.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <system_error>

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

absl::StatusOr<SavedCheckpoint> SaveTensors(ServiceContext& ctx, const std::string& name,
                                            const std::vector<TensorPtr>& tensors) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, name));
  std::vector<checkpoint::EntryRef> refs;
  std::set<std::string> seen;
  for (const TensorPtr& t : tensors) {
    if (!seen.insert(t->id).second) continue;  // the same tensor named twice
    refs.push_back({t->id, t->name, t->labels, &t->tensor});
  }
  std::lock_guard lock(ctx.checkpoint_mu);
  std::error_code ec;
  fs::create_directories(CheckpointDir(ctx.config), ec);
  if (ec) {
    return absl::FailedPreconditionError(StrCat("checkpoint directory '", CheckpointDir(ctx.config),
                                                "' cannot be created: ", ec.message()));
  }
  RETURN_IF_ERROR(checkpoint::Save(path, refs));
  const auto size = fs::file_size(path, ec);
  return SavedCheckpoint{static_cast<int64_t>(refs.size()),
                         ec ? int64_t{0} : static_cast<int64_t>(size)};
}

absl::StatusOr<SavedCheckpoint> SaveAll(ServiceContext& ctx, const std::string& name) {
  return SaveTensors(ctx, name, ctx.store.List(""));
}

absl::StatusOr<std::vector<RestoredTensor>> RestoreCheckpoint(ServiceContext& ctx,
                                                              const std::string& name) {
  ASSIGN_OR_RETURN(const std::string path, CheckpointPath(ctx.config, name));
  std::lock_guard lock(ctx.restore_mu);
  // Load verifies the whole file before returning anything.
  absl::StatusOr<std::vector<checkpoint::Entry>> loaded = checkpoint::Load(path);
  if (absl::IsNotFound(loaded.status())) {
    return absl::NotFoundError(StrCat("no checkpoint named '", name, "' (", path, ")"));
  }
  if (!loaded.ok()) return loaded.status();
  std::vector<checkpoint::Entry> entries = *std::move(loaded);
  for (const checkpoint::Entry& e : entries) {
    absl::Status free = ctx.store.CheckNameFree(e.name);
    if (!free.ok()) {
      return absl::AlreadyExistsError(StrCat("checkpoint '", name,
                                             "' not restored, nothing added: ", "tensor '", e.name,
                                             "': ", free.message()));
    }
  }
  // Everything on the device first, so that running out of memory adds nothing.
  for (checkpoint::Entry& e : entries) {
    ASSIGN_OR_RETURN(e.tensor, MoveToDevice(std::move(e.tensor), ctx.backend->device()));
  }
  std::vector<TensorStore::NewTensor> batch;
  batch.reserve(entries.size());
  for (checkpoint::Entry& e : entries) {
    batch.push_back({std::move(e.tensor), e.name, std::move(e.labels)});
  }
  // All or nothing, atomically: a name taken since the check above adds none.
  absl::StatusOr<std::vector<TensorPtr>> held = ctx.store.InsertAll(std::move(batch));
  if (!held.ok()) {
    return absl::Status(
        held.status().code(),
        StrCat("checkpoint '", name, "' not restored, nothing added: ", held.status().message()));
  }
  std::vector<RestoredTensor> out;
  out.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) out.push_back({entries[i].id, (*held)[i]});
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
