#include "server/admin_service.h"

#include <unistd.h>

#include <fstream>
#include <map>
#include <string>

#include "server/serve.h"
#include "server/status_util.h"
#include "sparsed/buffer.h"
#include "sparsed/device_memory.h"
#include "sparsed/gpu_info.h"
#include "sparsed/status.h"
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

grpc::Status AdminService::GetStatus(grpc::ServerContext* rpc, const v1::StatusRequest*,
                                     v1::StatusResponse* response) {
  return Serve(ctx_, rpc, [&](const Caller& caller) -> absl::Status {
    FillStatus(caller, response);
    return absl::OkStatus();
  });
}

void AdminService::FillStatus(const Caller& caller, v1::StatusResponse* response) const {
  response->set_version(SPARSED_VERSION);
  response->set_backend(std::string(ctx_.backend->name()));
  response->set_tenant(caller.tenant);
  response->set_role(caller.admin() ? "admin" : "user");
  if (caller.admin()) {
    response->set_data_dir(ctx_.config.data_dir);
    response->set_metrics_address(ctx_.metrics_address);
  }
  const Device active = ctx_.backend->device();
  // A user sees the bytes of its own tenant only; an admin the whole daemon's.
  std::map<std::string, int64_t> own_bytes;
  int64_t own_tensors = 0;
  if (!caller.admin()) {
    for (const HeldUsage& u : ctx_.store.Usage(caller.tenant)) {
      own_bytes[u.device] = u.bytes;
      own_tensors += u.tensors;
    }
  }
  auto in_use = [&](const Device& dev) {
    return caller.admin() ? MemoryAccount::For(dev).in_use() : own_bytes[dev.ToString()];
  };

  v1::DeviceInfo* cpu = response->add_devices();
  cpu->set_name("cpu");
  cpu->set_description(StrCat(CpuModel(), ", ", sysconf(_SC_NPROCESSORS_ONLN), " cores"));
  cpu->set_memory_total_bytes(HostMemoryBytes());
  cpu->set_memory_in_use_bytes(in_use(Device::Cpu()));
  cpu->set_active(active.is_cpu());
  const absl::Status health = ctx_.backend->Health();
  if (active.is_cpu() && !health.ok()) cpu->set_fault(std::string(health.message()));
  int64_t total_in_use = cpu->memory_in_use_bytes();

  for (const GpuInfo& g : ListGpus()) {
    v1::DeviceInfo* d = response->add_devices();
    const Device dev = Device::Cuda(g.index);
    d->set_name(dev.ToString());
    d->set_description(StrCat(g.name, ", compute capability ", g.cc_major, ".", g.cc_minor));
    d->set_memory_total_bytes(g.total_bytes);
    d->set_memory_in_use_bytes(in_use(dev));
    d->set_active(active == dev);
    if (active == dev && !health.ok()) d->set_fault(std::string(health.message()));
    if (active == dev && caller.admin()) {
      const DevicePoolStats pool = GetDevicePoolStats(dev.index);
      d->set_pool_reserved_bytes(pool.reserved_bytes);
      d->set_pool_used_bytes(pool.used_bytes);
    }
    total_in_use += d->memory_in_use_bytes();
  }
  response->set_memory_in_use_bytes(total_in_use);
  response->set_tensor_count(caller.admin() ? ctx_.store.size() : own_tensors);
  response->set_uptime_seconds(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx_.started).count());
}

// ---- tune database ----

namespace {

absl::Status NoTuneDb() {
  return absl::FailedPreconditionError("this daemon has no tune database");
}

}  // namespace

grpc::Status AdminService::ListTune(grpc::ServerContext* rpc, const v1::ListTuneRequest*,
                                    v1::ListTuneResponse* response) {
  return ServeAdmin(ctx_, rpc, "ListTune", [&](const Caller&) -> absl::Status {
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
    return absl::OkStatus();
  });
}

grpc::Status AdminService::ExportTune(grpc::ServerContext* rpc, const v1::ExportTuneRequest*,
                                      v1::ExportTuneResponse* response) {
  return ServeAdmin(ctx_, rpc, "ExportTune", [&](const Caller&) -> absl::Status {
    if (ctx_.tune_db == nullptr) return NoTuneDb();
    response->set_json(ctx_.tune_db->ExportJson());
    return absl::OkStatus();
  });
}

grpc::Status AdminService::ImportTune(grpc::ServerContext* rpc,
                                      const v1::ImportTuneRequest* request,
                                      v1::ImportTuneResponse* response) {
  return ServeAdmin(ctx_, rpc, "ImportTune", [&](const Caller&) -> absl::Status {
    if (ctx_.tune_db == nullptr) return NoTuneDb();
    absl::StatusOr<int> n = ctx_.tune_db->ImportJson(request->json());
    if (!n.ok()) {
      if (n.status().code() != absl::StatusCode::kInvalidArgument) return n.status();
      return absl::InvalidArgumentError(
          StrCat("tune database JSON rejected, nothing imported: ", n.status().message()));
    }
    response->set_imported(*n);
    response->set_entries(ctx_.tune_db->size());
    return absl::OkStatus();
  });
}

grpc::Status AdminService::ClearTune(grpc::ServerContext* rpc, const v1::ClearTuneRequest*,
                                     v1::ClearTuneResponse* response) {
  return ServeAdmin(ctx_, rpc, "ClearTune", [&](const Caller&) -> absl::Status {
    if (ctx_.tune_db == nullptr) return NoTuneDb();
    ASSIGN_OR_RETURN(const int n, ctx_.tune_db->Clear());
    response->set_removed(n);
    return absl::OkStatus();
  });
}

}  // namespace sparsed::server
