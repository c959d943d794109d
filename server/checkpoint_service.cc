#include "server/checkpoint_service.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "server/checkpoints.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {

grpc::Status CheckpointService::SaveCheckpoint(grpc::ServerContext*,
                                               const v1::SaveCheckpointRequest* request,
                                               v1::SaveCheckpointResponse* response) {
  if (absl::Status s = checkpoint::CheckName(request->name(), "name"); !s.ok()) return ToGrpc(s);
  absl::StatusOr<SavedCheckpoint> saved;
  if (request->tensors().empty()) {
    saved = SaveAll(ctx_, request->name());
  } else {
    std::vector<TensorPtr> tensors;
    for (int i = 0; i < request->tensors_size(); ++i) {
      absl::StatusOr<TensorPtr> t =
          Resolve(ctx_.store, request->tensors(i), StrCat("tensors[", i, "]"));
      if (!t.ok()) return ToGrpc(t.status());
      tensors.push_back(*std::move(t));
    }
    saved = SaveTensors(ctx_, request->name(), tensors);
  }
  if (!saved.ok()) return ToGrpc(saved.status());
  response->set_name(request->name());
  response->set_tensors(saved->tensors);
  response->set_bytes(saved->bytes);
  response->set_layers(saved->layers);
  spdlog::info("checkpoint '{}' saved: {} tensors, {} layers, {} bytes", request->name(),
               saved->tensors, saved->layers, saved->bytes);
  return grpc::Status::OK;
}

grpc::Status CheckpointService::RestoreCheckpoint(grpc::ServerContext*,
                                                  const v1::RestoreCheckpointRequest* request,
                                                  v1::RestoreCheckpointResponse* response) {
  absl::StatusOr<RestoredCheckpoint> restored = server::RestoreCheckpoint(ctx_, request->name());
  if (!restored.ok()) return ToGrpc(restored.status());
  for (const RestoredTensor& r : restored->tensors) {
    *response->add_restored() = DescribeTensor(*r.tensor);
    (*response->mutable_id_map())[r.saved_id] = r.tensor->id;
  }
  for (const RestoredLayer& r : restored->layers) {
    (*response->mutable_id_map())[r.saved_id] = r.layer->id;
  }
  response->set_layers(static_cast<int64_t>(restored->layers.size()));
  spdlog::info("checkpoint '{}' restored: {} tensors, {} layers", request->name(),
               restored->tensors.size(), restored->layers.size());
  return grpc::Status::OK;
}

grpc::Status CheckpointService::ListCheckpoints(grpc::ServerContext*,
                                                const v1::ListCheckpointsRequest*,
                                                v1::ListCheckpointsResponse* response) {
  absl::StatusOr<std::vector<checkpoint::Summary>> list = server::ListCheckpoints(ctx_);
  if (!list.ok()) return ToGrpc(list.status());
  for (const checkpoint::Summary& s : *list) {
    v1::CheckpointInfo* info = response->add_checkpoints();
    info->set_name(s.name);
    info->set_tensors(s.tensors);
    info->set_bytes(s.bytes);
    info->set_modified_unix_ms(s.modified_unix_ms);
  }
  return grpc::Status::OK;
}

grpc::Status CheckpointService::DeleteCheckpoint(grpc::ServerContext*,
                                                 const v1::DeleteCheckpointRequest* request,
                                                 v1::DeleteCheckpointResponse*) {
  if (absl::Status s = server::DeleteCheckpoint(ctx_, request->name()); !s.ok()) return ToGrpc(s);
  spdlog::info("checkpoint '{}' deleted", request->name());
  return grpc::Status::OK;
}

}  // namespace sparsed::server
