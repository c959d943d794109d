// Tensors.Inspect: statistics and spy grid of a held tensor.
#include "server/compute_slot.h"
#include "server/op_requests.h"
#include "server/request_cost.h"
#include "server/serve.h"
#include "server/status_util.h"
#include "server/tensor_access.h"
#include "server/tensors_service.h"
#include "sparsed/inspect.h"
#include "sparsed/status.h"

namespace sparsed::server {
namespace {

void FillRowLengths(const RowLengthStats& stats, v1::RowLengthStats* out) {
  out->set_min(stats.min);
  out->set_max(stats.max);
  out->set_mean(stats.mean);
  out->set_std(stats.std);
  out->mutable_edges()->Add(stats.edges.begin(), stats.edges.end());
  out->mutable_counts()->Add(stats.histogram.begin(), stats.histogram.end());
}

void FillSpy(const sparsed::SpyGrid& grid, v1::SpyGrid* out) {
  out->set_height(grid.height);
  out->set_width(grid.width);
  out->set_cell_rows(grid.cell_rows);
  out->set_cell_cols(grid.cell_cols);
  out->mutable_counts()->Add(grid.counts.begin(), grid.counts.end());
}

absl::Status DoInspect(ServiceContext& ctx, const Caller& caller, const v1::InspectRequest& req,
                       v1::InspectResponse* response) {
  RETURN_IF_ERROR(CheckSpyRequest(req));
  ASSIGN_OR_RETURN(const TensorPtr held, Resolve(ctx.store, caller, req.tensor(), "tensor"));
  RETURN_IF_ERROR(
      CheckWork(UnaryWork(held->tensor.desc(), double(req.spy_height()) * double(req.spy_width())),
                ctx.max_request_work, "Inspect"));
  // The statistics read every entry: admitted like a compute call.
  ComputeSlot slot(ctx, caller);
  RETURN_IF_ERROR(slot.status());
  // They are computed on the host; a device tensor is copied there for the
  // duration of the call.
  Tensor copy;
  const Tensor* host = &held->tensor;
  if (!host->device().is_cpu()) {
    ASSIGN_OR_RETURN(copy, held->tensor.CopyTo(Device::Cpu()));
    host = &copy;
  }
  ASSIGN_OR_RETURN(const TensorStats stats, sparsed::Inspect(*host));
  *response->mutable_info() = DescribeTensor(*held);
  response->set_stored(stats.stored);
  response->set_nonzeros(stats.nonzeros);
  response->set_density(stats.density);
  response->set_bytes(stats.bytes);
  FillRowLengths(stats.rows, response->mutable_row_lengths());
  if (req.spy_height() > 0) {
    ASSIGN_OR_RETURN(const sparsed::SpyGrid grid,
                     sparsed::Spy(*host, req.spy_height(), req.spy_width()));
    FillSpy(grid, response->mutable_spy());
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status TensorsService::Inspect(grpc::ServerContext* rpc, const v1::InspectRequest* request,
                                     v1::InspectResponse* response) {
  return Serve(ctx_, rpc,
               [&](const Caller& caller) { return DoInspect(ctx_, caller, *request, response); });
}

}  // namespace sparsed::server
