// sparsed.v1.Training (sparse layers held in the daemon: forward, backward,
// optimizer steps, pruning, RigL) and sparsed.v1.TrainingOps (SDDMM and
// dense matmul tiles on tensors).
#pragma once

#include "server/service_context.h"
#include "sparsed/v1/training.grpc.pb.h"

namespace sparsed::server {

class TrainingService final : public v1::Training::Service {
 public:
  explicit TrainingService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status CreateLayer(grpc::ServerContext* context, const v1::CreateLayerRequest* request,
                           v1::LayerInfo* response) override;
  grpc::Status GetLayer(grpc::ServerContext* context, const v1::LayerRef* request,
                        v1::LayerInfo* response) override;
  grpc::Status ListLayers(grpc::ServerContext* context, const v1::ListLayersRequest* request,
                          v1::ListLayersResponse* response) override;
  grpc::Status DeleteLayer(grpc::ServerContext* context, const v1::LayerRef* request,
                           v1::DeleteLayerResponse* response) override;
  grpc::Status Forward(grpc::ServerContext* context, const v1::ForwardRequest* request,
                       v1::ForwardResponse* response) override;
  grpc::Status Backward(grpc::ServerContext* context, const v1::BackwardRequest* request,
                        v1::BackwardResponse* response) override;
  grpc::Status ForgetCall(grpc::ServerContext* context, const v1::ForgetCallRequest* request,
                          v1::ForgetCallResponse* response) override;
  grpc::Status Step(grpc::ServerContext* context, const v1::StepRequest* request,
                    v1::StepResponse* response) override;
  grpc::Status DenseGradient(grpc::ServerContext* context, const v1::DenseGradientRequest* request,
                             v1::OpResult* response) override;
  grpc::Status GetParameter(grpc::ServerContext* context, const v1::GetParameterRequest* request,
                            v1::OpResult* response) override;

 private:
  ServiceContext& ctx_;
};

class TrainingOpsService final : public v1::TrainingOps::Service {
 public:
  explicit TrainingOpsService(ServiceContext& ctx) : ctx_(ctx) {}

  grpc::Status Sddmm(grpc::ServerContext* context, const v1::SddmmRequest* request,
                     v1::OpResult* response) override;
  grpc::Status DenseMatmul(grpc::ServerContext* context, const v1::DenseMatmulRequest* request,
                           v1::OpResult* response) override;

 private:
  ServiceContext& ctx_;
};

}  // namespace sparsed::server
