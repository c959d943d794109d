#include "server/admin_service.h"

#include <unistd.h>

#include <fstream>
#include <string>

#include "server/status_util.h"
#include "sparsed/buffer.h"
#include "sparsed/device_memory.h"
#include "sparsed/gpu_info.h"
#include "sparsed/str_cat.h"

namespace sparsed::server {
namespace {

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

}  // namespace

grpc::Status AdminService::GetStatus(grpc::ServerContext*, const v1::StatusRequest*,
                                     v1::StatusResponse* response) {
  response->set_version(SPARSED_VERSION);
  response->set_backend(std::string(ctx_.backend->name()));
  const Device active = ctx_.backend->device();

  v1::DeviceInfo* cpu = response->add_devices();
  cpu->set_name("cpu");
  cpu->set_description(StrCat(CpuModel(), ", ", sysconf(_SC_NPROCESSORS_ONLN), " cores"));
  cpu->set_memory_total_bytes(HostMemoryBytes());
  cpu->set_memory_in_use_bytes(MemoryAccount::For(Device::Cpu()).in_use());
  cpu->set_active(active.is_cpu());
  int64_t total_in_use = cpu->memory_in_use_bytes();

  for (const GpuInfo& g : ListGpus()) {
    v1::DeviceInfo* d = response->add_devices();
    const Device dev = Device::Cuda(g.index);
    d->set_name(dev.ToString());
    d->set_description(StrCat(g.name, ", compute capability ", g.cc_major, ".", g.cc_minor));
    d->set_memory_total_bytes(g.total_bytes);
    d->set_memory_in_use_bytes(MemoryAccount::For(dev).in_use());
    d->set_active(active == dev);
    if (active == dev) {
      const DevicePoolStats pool = GetDevicePoolStats(dev.index);
      d->set_pool_reserved_bytes(pool.reserved_bytes);
      d->set_pool_used_bytes(pool.used_bytes);
    }
    total_in_use += d->memory_in_use_bytes();
  }
  response->set_memory_in_use_bytes(total_in_use);
  response->set_tensor_count(ctx_.store.size());
  response->set_uptime_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx_.started).count());
  return grpc::Status::OK;
}

// ---- tune database ----

namespace {

grpc::Status NoTuneDb() {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this daemon has no tune database");
}

}  // namespace

grpc::Status AdminService::ListTune(grpc::ServerContext*, const v1::ListTuneRequest*,
                                    v1::ListTuneResponse* response) {
  TuneDb* db = ctx_.tune_db.get();
  if (db == nullptr) return NoTuneDb();
  for (const TuneEntry& e : db->List()) {
    v1::TuneEntry* out = response->add_entries();
    out->set_key(e.key);
    out->set_variant(e.variant);
    out->mutable_timings_ms()->insert(e.timings_ms.begin(), e.timings_ms.end());
    out->set_created_unix_ms(e.created_unix_ms);
  }
  response->set_db_path(db->path());
  response->set_hits(db->hits());
  response->set_misses(db->misses());
  response->set_trials(db->trials());
  response->set_warning(db->warning());
  return grpc::Status::OK;
}

grpc::Status AdminService::ExportTune(grpc::ServerContext*, const v1::ExportTuneRequest*,
                                      v1::ExportTuneResponse* response) {
  if (ctx_.tune_db == nullptr) return NoTuneDb();
  response->set_json(ctx_.tune_db->ExportJson());
  return grpc::Status::OK;
}

grpc::Status AdminService::ImportTune(grpc::ServerContext*, const v1::ImportTuneRequest* request,
                                      v1::ImportTuneResponse* response) {
  if (ctx_.tune_db == nullptr) return NoTuneDb();
  absl::StatusOr<int> n = ctx_.tune_db->ImportJson(request->json());
  if (!n.ok()) {
    if (n.status().code() != absl::StatusCode::kInvalidArgument) return ToGrpc(n.status());
    return ToGrpc(absl::InvalidArgumentError(
        StrCat("tune database JSON rejected, nothing imported: ", n.status().message())));
  }
  response->set_imported(*n);
  response->set_entries(ctx_.tune_db->size());
  return grpc::Status::OK;
}

grpc::Status AdminService::ClearTune(grpc::ServerContext*, const v1::ClearTuneRequest*,
                                     v1::ClearTuneResponse* response) {
  if (ctx_.tune_db == nullptr) return NoTuneDb();
  absl::StatusOr<int> n = ctx_.tune_db->Clear();
  if (!n.ok()) return ToGrpc(n.status());
  response->set_removed(*n);
  return grpc::Status::OK;
}

}  // namespace sparsed::server
