// Admin.ListKernels, ClearKernels, WarmKernels: the backend's JIT kernel cache.
#include <algorithm>
#include <tuple>
#include <vector>

#include "server/admin_service.h"
#include "server/serve.h"
#include "server/status_util.h"
#include "sparsed/kernel_cache.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

void ToProto(const KernelCacheStats& s, v1::KernelCacheStats* out) {
  out->set_hits(s.hits);
  out->set_misses(s.misses);
  out->set_compiles(s.compiles);
  out->set_compile_errors(s.compile_errors);
  out->set_entries(s.entries);
  out->set_bytes_on_disk(s.bytes_on_disk);
  out->set_max_bytes(s.max_bytes);
}

absl::StatusOr<int64_t> Warm(Backend& backend, const std::string& json, int64_t* requested) {
  absl::StatusOr<std::vector<KernelSpec>> specs = ParseKernelSpecs(json);
  if (!specs.ok()) {
    return absl::Status(specs.status().code(),
                        StrCat(specs.status().message(), "; nothing compiled"));
  }
  *requested = static_cast<int64_t>(specs->size());
  // Errors of the backend (unknown generator, compiler failure, no JIT on
  // this backend) keep their codes and messages.
  return backend.WarmKernels(*specs);
}

}  // namespace

grpc::Status AdminService::ListKernels(grpc::ServerContext* rpc, const v1::ListKernelsRequest*,
                                       v1::ListKernelsResponse* response) {
  return ServeAdmin(ctx_, rpc, "ListKernels", [&](const Caller&) -> absl::Status {
    std::vector<KernelCacheEntry> entries = ctx_.backend->ListKernels();
    std::sort(entries.begin(), entries.end(),
              [](const KernelCacheEntry& x, const KernelCacheEntry& y) {
                return std::tie(x.spec, x.arch, x.key) < std::tie(y.spec, y.arch, y.key);
              });
    for (const KernelCacheEntry& e : entries) {
      v1::KernelEntry* out = response->add_entries();
      out->set_key(e.key);
      out->set_spec(e.spec);
      out->set_arch(e.arch);
      out->set_bytes(e.bytes);
      out->set_last_used_unix_ms(e.last_used_unix_ms);
    }
    ToProto(ctx_.backend->KernelCacheStatistics(), response->mutable_stats());
    response->set_cache_dir(ctx_.kernel_cache_dir);
    return absl::OkStatus();
  });
}

grpc::Status AdminService::ClearKernels(grpc::ServerContext* rpc, const v1::ClearKernelsRequest*,
                                        v1::ClearKernelsResponse* response) {
  return ServeAdmin(ctx_, rpc, "ClearKernels", [&](const Caller&) -> absl::Status {
    ASSIGN_OR_RETURN(const int removed, ctx_.backend->ClearKernels());
    response->set_removed(removed);
    return absl::OkStatus();
  });
}

grpc::Status AdminService::WarmKernels(grpc::ServerContext* rpc,
                                       const v1::WarmKernelsRequest* request,
                                       v1::WarmKernelsResponse* response) {
  return ServeAdmin(ctx_, rpc, "WarmKernels", [&](const Caller&) -> absl::Status {
    int64_t requested = 0;
    ASSIGN_OR_RETURN(const int64_t compiled, Warm(*ctx_.backend, request->json(), &requested));
    response->set_requested(requested);
    response->set_compiled(compiled);
    return absl::OkStatus();
  });
}

}  // namespace sparsed::server
