// A gRPC server interceptor that counts every call by method and status code,
// observes its latency, and logs one line per call at debug level.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include "server/metrics.h"

namespace sparsed::server {

class RequestMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RequestMetricsInterceptorFactory(ServerMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  ServerMetrics* metrics_;
};

}  // namespace sparsed::server
