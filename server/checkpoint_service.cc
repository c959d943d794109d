#include "server/checkpoint_service.h"

#include <spdlog/spdlog.h>

#include <string>
#include <vector>

#include "server/checkpoints.h"
#include "server/serve.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

std::string TenantNote(const Caller& caller) {
  return caller.tenant.empty() ? "" : StrCat(" of tenant '", caller.tenant, "'");
}

}  // namespace

grpc::Status CheckpointService::SaveCheckpoint(grpc::ServerContext* rpc,
                                               const v1::SaveCheckpointRequest* request,
                                               v1::SaveCheckpointResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(checkpoint::CheckName(request->name(), "name"));
    SavedCheckpoint saved;
    if (request->tensors().empty()) {
      ASSIGN_OR_RETURN(saved, SaveAll(ctx_, caller.tenant, request->name()));
    } else {
      std::vector<TensorPtr> tensors;
      for (int i = 0; i < request->tensors_size(); ++i) {
        ASSIGN_OR_RETURN(TensorPtr t, Resolve(ctx_.store, caller, request->tensors(i),
                                              StrCat("tensors[", i, "]")));
        tensors.push_back(std::move(t));
      }
      ASSIGN_OR_RETURN(saved, SaveTensors(ctx_, caller.tenant, request->name(), tensors));
    }
    response->set_name(request->name());
    response->set_tensors(saved.tensors);
    response->set_bytes(saved.bytes);
    response->set_layers(saved.layers);
    spdlog::info("checkpoint '{}'{} saved: {} tensors, {} layers, {} bytes", request->name(),
                 TenantNote(caller), saved.tensors, saved.layers, saved.bytes);
    return absl::OkStatus();
  });
}

grpc::Status CheckpointService::RestoreCheckpoint(grpc::ServerContext* rpc,
                                                  const v1::RestoreCheckpointRequest* request,
                                                  v1::RestoreCheckpointResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const RestoredCheckpoint restored,
                     server::RestoreCheckpoint(ctx_, caller.tenant, request->name()));
    for (const RestoredTensor& r : restored.tensors) {
      *response->add_restored() = DescribeTensor(*r.tensor);
      (*response->mutable_id_map())[r.saved_id] = r.tensor->id;
    }
    for (const RestoredLayer& r : restored.layers) {
      (*response->mutable_id_map())[r.saved_id] = r.layer->id;
    }
    response->set_layers(static_cast<int64_t>(restored.layers.size()));
    spdlog::info("checkpoint '{}'{} restored: {} tensors, {} layers", request->name(),
                 TenantNote(caller), restored.tensors.size(), restored.layers.size());
    return absl::OkStatus();
  });
}

grpc::Status CheckpointService::ListCheckpoints(grpc::ServerContext* rpc,
                                                const v1::ListCheckpointsRequest*,
                                                v1::ListCheckpointsResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    ASSIGN_OR_RETURN(const std::vector<checkpoint::Summary> list,
                     server::ListCheckpoints(ctx_, caller.tenant));
    for (const checkpoint::Summary& s : list) {
      v1::CheckpointInfo* info = response->add_checkpoints();
      info->set_name(s.name);
      info->set_tensors(s.tensors);
      info->set_bytes(s.bytes);
      info->set_modified_unix_ms(s.modified_unix_ms);
    }
    return absl::OkStatus();
  });
}

grpc::Status CheckpointService::DeleteCheckpoint(grpc::ServerContext* rpc,
                                                 const v1::DeleteCheckpointRequest* request,
                                                 v1::DeleteCheckpointResponse*) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    RETURN_IF_ERROR(server::DeleteCheckpoint(ctx_, caller.tenant, request->name()));
    spdlog::info("checkpoint '{}'{} deleted", request->name(), TenantNote(caller));
    return absl::OkStatus();
  });
}

}  // namespace sparsed::server
