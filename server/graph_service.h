// sparsed.v1.Graphs: a whole op graph in one call (docs/API.md, "Graphs").
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/graph.grpc.pb.h"

namespace sparsed::server {

class GraphService final : public v1::Graphs::Service {
 public:
  explicit GraphService(ServiceContext& ctx) : ctx_(ctx) {}

  // Takes one compute slot for the whole graph, validates it
  // (graph_validate.h), runs it (graph_run.h), then delivers the outputs:
  // the inline ones first, then the held ones, all or none (an insert that
  // fails removes those inserted before it), each with the call's lifetime.
  grpc::Status Run(grpc::ServerContext* context, const v1::RunRequest* request,
                   v1::RunResponse* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
