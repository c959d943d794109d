#include "server/request_metrics_interceptor.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string>

#include "server/callback_cq_heartbeat.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// The method label: the gRPC path ("/pkg.Service/Method") when it names a
// method compiled into this binary, else "unknown". A client may send any
// path; labelling each made-up one would grow /metrics and memory without
// bound.
std::string MethodLabel(const char* path) {
  if (path == nullptr || path[0] != '/') return "unknown";
  // gRPC's own health service is not in the protobuf descriptor pool.
  const std::string_view p(path);
  if (p == "/grpc.health.v1.Health/Check" || p == "/grpc.health.v1.Health/Watch") return path;
  std::string full(path + 1);
  const size_t slash = full.find('/');
  if (slash == std::string::npos) return "unknown";
  full[slash] = '.';
  if (google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(full) == nullptr) {
    return "unknown";
  }
  return path;
}

class RequestMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RequestMetricsInterceptor(ServerMetrics* metrics, const char* method,
                            grpc::ServerContextBase* context)
      : metrics_(metrics), method_(MethodLabel(method)), context_(context) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsable_ = true;  // gRPC could not deserialize the request
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      // A request gRPC cannot parse is answered INTERNAL with no message by
      // the generated code (issue 17): say what went wrong, as the client's
      // error it is. Our handlers never send INTERNAL without a message.
      if (status.error_code() == grpc::StatusCode::INTERNAL && status.error_message().empty() &&
          (unparsable_ || method_ != "unknown")) {
        status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              StrCat("the request message of ", method_,
                                     " could not be parsed (malformed protobuf)"));
        methods->ModifySendStatus(status);
      }
      if (IsHeartbeat()) {  // the daemon's own call, not a client's request
        methods->Proceed();
        return;
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      const std::string_view code = api::StatusCodeName(status.error_code());
      metrics_->RecordRequest(method_, code, seconds);
      if (status.ok()) {
        spdlog::debug("{} OK {:.3f} ms", method_, seconds * 1e3);
      } else {
        spdlog::debug("{} {} {:.3f} ms: {}", method_, code, seconds * 1e3, status.error_message());
      }
    }
    methods->Proceed();
  }

 private:
  // CallbackCqHeartbeat's health checks (marked by its metadata; only that
  // method, so a client cannot hide other calls this way).
  bool IsHeartbeat() const {
    if (context_ == nullptr || method_ != "/grpc.health.v1.Health/Check") return false;
    return context_->client_metadata().count(kHeartbeatMetadata) > 0;
  }

  ServerMetrics* metrics_;
  std::string method_;
  grpc::ServerContextBase* context_;
  bool unparsable_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace

grpc::experimental::Interceptor* RequestMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  // gRPC takes ownership of the interceptor (its API requires a raw pointer).
  return std::make_unique<RequestMetricsInterceptor>(metrics_, info->method(),
                                                     info->server_context())
      .release();
}

}  // namespace sparsed::server
