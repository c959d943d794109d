#include "server/shm_transfer.h"

#include <algorithm>
#include <string>
#include <vector>

#include "server/tensor_access.h"
#include "server/upload_reactor.h"
#include "sparsed/api/proto_convert.h"
#include "sparsed/buffer.h"
#include "sparsed/device_memory.h"
#include "sparsed/parallel.h"
#include "sparsed/status.h"
#include "sparsed/str_cat.h"
#include "sparsed/validate.h"

namespace sparsed::server {
namespace {

// Device tensors move through host memory in pieces of this size.
constexpr int64_t kStagingBytes = 16 << 20;

int64_t AlignUp(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

// Host copies of this size or more are split over threads: a fresh
// allocation's page faults (most of a large copy's time) then run in parallel.
constexpr int64_t kParallelPiece = 8 << 20;

// Reads [offset, offset + n) of the region into host memory, in parallel.
absl::Status ReadParallel(const SharedRegion& region, int64_t offset, int64_t n, char* dst) {
  const int64_t pieces = (n + kParallelPiece - 1) / kParallelPiece;
  if (pieces <= 1) return region.Read(offset, n, dst);
  std::vector<absl::Status> status(static_cast<size_t>(pieces));
  ParallelFor(pieces, 1, 0, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t at = i * kParallelPiece, len = std::min(kParallelPiece, n - at);
      status[static_cast<size_t>(i)] = region.Read(offset + at, len, dst + at);
    }
  });
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

// Copies between a region and `n` bytes of component memory on `device`.
absl::Status RegionToMemory(const SharedRegion& region, int64_t offset, int64_t n, void* dst,
                            const Device& device) {
  if (device.is_cpu()) return ReadParallel(region, offset, n, static_cast<char*>(dst));
  ASSIGN_OR_RETURN(Buffer staging, Buffer::Allocate(std::min(n, kStagingBytes), Device::Cpu()));
  for (int64_t done = 0; done < n;) {
    const int64_t piece = std::min(n - done, staging.size());
    RETURN_IF_ERROR(region.Read(offset + done, piece, staging.data()));
    RETURN_IF_ERROR(
        CopyBytes(static_cast<char*>(dst) + done, device, staging.data(), Device::Cpu(), piece));
    done += piece;
  }
  return absl::OkStatus();
}

absl::Status MemoryToRegion(const SharedRegion& region, int64_t offset, int64_t n, const void* src,
                            const Device& device) {
  if (device.is_cpu()) return region.Write(offset, n, src);
  ASSIGN_OR_RETURN(Buffer staging, Buffer::Allocate(std::min(n, kStagingBytes), Device::Cpu()));
  for (int64_t done = 0; done < n;) {
    const int64_t piece = std::min(n - done, staging.size());
    RETURN_IF_ERROR(CopyBytes(staging.data(), Device::Cpu(), static_cast<const char*>(src) + done,
                              device, piece));
    RETURN_IF_ERROR(region.Write(offset + done, piece, staging.data()));
    done += piece;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::TensorInfo> UploadFromRegions(ServiceContext& ctx, const Caller& caller,
                                                 const v1::SharedUploadRequest& req) {
  RETURN_IF_ERROR(CheckNameAndLabels(req.name(), req.labels(), "request"));
  RETURN_IF_ERROR(ctx.store.CheckNameFree(caller.tenant, req.name()));
  RETURN_IF_ERROR(api::CheckDescProto(req.desc(), "desc"));
  const TensorDesc desc = api::FromProto(req.desc());
  RETURN_IF_ERROR(ValidateDesc(desc, "desc"));
  ASSIGN_OR_RETURN(const std::vector<ComponentSpec> specs, ComponentsOf(desc));
  if (req.components_size() != static_cast<int>(specs.size())) {
    std::string names;
    for (const ComponentSpec& c : specs) names += (names.empty() ? "" : ", ") + c.name;
    return absl::InvalidArgumentError(StrCat("components has ", req.components_size(), " slices; ",
                                             FormatName(desc.format), " needs ", specs.size(), " (",
                                             names, ")"));
  }
  std::vector<RegionPtr> regions;
  int64_t total = 0;
  for (size_t k = 0; k < specs.size(); ++k) {
    const v1::RegionSlice& slice = req.components(static_cast<int>(k));
    const std::string field = StrCat("components[", k, "]");
    if (slice.byte_size() != specs[k].bytes()) {
      return absl::InvalidArgumentError(StrCat(field, ".byte_size = ", slice.byte_size(),
                                               " but component '", specs[k].name, "' is ",
                                               specs[k].bytes(), " bytes"));
    }
    ASSIGN_OR_RETURN(RegionPtr r,
                     ctx.regions->Find(caller.tenant, caller.lifetime.session_id, slice.region()));
    RETURN_IF_ERROR(r->CheckSlice(slice.offset(), slice.byte_size(), field));
    regions.push_back(std::move(r));
    total += specs[k].bytes();
  }
  RETURN_IF_ERROR(ctx.store.CheckRoom(caller.tenant, total));
  const Device device = req.sort_and_sum_duplicates() ? Device::Cpu() : ctx.backend->device();
  ASSIGN_OR_RETURN(Tensor t, Tensor::Allocate(desc, device));
  for (size_t k = 0; k < specs.size(); ++k) {
    const v1::RegionSlice& slice = req.components(static_cast<int>(k));
    Buffer* buf = t.component(specs[k].name);
    RETURN_IF_ERROR(
        RegionToMemory(*regions[k], slice.offset(), slice.byte_size(), buf->data(), device));
  }
  ASSIGN_OR_RETURN(const TensorPtr stored,
                   AdmitReceived(ctx, caller, std::move(t), req.sort_and_sum_duplicates(),
                                 req.name(), req.labels(), "upload"));
  return DescribeTensor(*stored);
}

absl::StatusOr<v1::SharedDownloadResponse> DownloadIntoRegion(
    ServiceContext& ctx, const Caller& caller, const v1::SharedDownloadRequest& req) {
  ASSIGN_OR_RETURN(const TensorPtr t, Resolve(ctx.store, caller, req.tensor(), "tensor"));
  ASSIGN_OR_RETURN(
      const RegionPtr region,
      ctx.regions->Find(caller.tenant, caller.lifetime.session_id, req.into().region()));
  RETURN_IF_ERROR(region->CheckSlice(req.into().offset(), req.into().byte_size(), "into"));
  v1::SharedDownloadResponse out;
  int64_t end = 0;
  for (const ComponentSpec& c : t->tensor.specs()) {
    v1::PlacedComponent* placed = out.add_components();
    placed->set_name(c.name);
    placed->set_offset(req.into().offset() + AlignUp(end, 64));
    placed->set_byte_size(c.bytes());
    end = AlignUp(end, 64) + c.bytes();
  }
  if (end > req.into().byte_size()) {
    return absl::ResourceExhaustedError(StrCat("into.byte_size = ", req.into().byte_size(),
                                               " but tensor ", t->id, " needs ", end,
                                               " bytes there (components 64-byte aligned)"));
  }
  for (const v1::PlacedComponent& p : out.components()) {
    const Buffer* buf = t->tensor.component(p.name());
    RETURN_IF_ERROR(
        MemoryToRegion(*region, p.offset(), p.byte_size(), buf->data(), t->tensor.device()));
  }
  *out.mutable_info() = DescribeTensor(*t);
  return out;
}

}  // namespace sparsed::server
