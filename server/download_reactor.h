// Tensors.Download on gRPC's callback API: a reactor per call writes the
// header and then one chunk at a time as the client takes them, holding no
// thread while a slow or stalled client keeps flow control shut (issue 17).
// A download whose client takes nothing for upload_idle_timeout_seconds is
// cancelled, as a stalled upload is.
#pragma once

#include <grpcpp/grpcpp.h>

#include "server/service_context.h"
#include "sparsed/v1/tensors.grpc.pb.h"

namespace sparsed::server {

// Starts the reactor of one Download call (gRPC owns it until OnDone).
grpc::ServerWriteReactor<v1::DownloadResponse>* StartDownload(ServiceContext& ctx,
                                                              grpc::CallbackServerContext* rpc,
                                                              const v1::DownloadRequest* request);

}  // namespace sparsed::server
