// Tensors in and out of registered shared-memory regions (SharedMemory.Upload
// and .Download): the bytes go between the region's object and the tensor's
// memory with pread/pwrite, straight into host tensors, through a bounded
// host staging buffer for device ones.
#pragma once

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/service_context.h"
#include "sparsed/v1/shared_memory.pb.h"

namespace sparsed::server {

// Validates the whole request (description, one slice per component of
// exactly its size, each inside a region of the caller) before allocating,
// then reads, validates the tensor as an upload is, and stores it.
absl::StatusOr<v1::TensorInfo> UploadFromRegions(ServiceContext& ctx, const Caller& caller,
                                                 const v1::SharedUploadRequest& req);

// Writes the caller's tensor's components one after another (each at a
// multiple of 64 bytes from `into.offset`) into the region. RESOURCE_EXHAUSTED
// naming the bytes needed when the slice is too small; nothing is written then.
absl::StatusOr<v1::SharedDownloadResponse> DownloadIntoRegion(ServiceContext& ctx,
                                                              const Caller& caller,
                                                              const v1::SharedDownloadRequest& req);

}  // namespace sparsed::server
