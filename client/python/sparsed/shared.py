"""Uploads and downloads through POSIX shared memory (the daemon's
SharedMemory service, docs/API.md): for a client on the daemon's host, the
bytes go through a shared-memory object instead of gRPC messages.

Each transfer creates an object (multiprocessing.shared_memory), registers
it, moves the tensor, unregisters and unlinks it; the daemon keeps no
mapping of it. Refused with sparsed.FailedPrecondition when the daemon has
shared memory off (the default with authentication).
"""

import secrets
from multiprocessing import shared_memory

import numpy as np

from sparsed import interop
from sparsed.proto import shm_pb

ALIGN = 64


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


class _Region:
    """A fresh shared-memory object registered with the daemon for one
    transfer; unregistered and unlinked on exit."""

    def __init__(self, stub, size, metadata):
        self.stub, self.metadata = stub, metadata
        self.name = "py-" + secrets.token_hex(8)
        self.shm = shared_memory.SharedMemory(create=True, size=max(size, 1))
        try:
            self.stub.Register(shm_pb.RegisterRegionRequest(
                name=self.name, key="/" + self.shm.name, byte_size=self.shm.size),
                metadata=metadata)
        except BaseException:
            self._release()
            raise

    def _release(self):
        self.shm.close()
        self.shm.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.stub.Unregister(shm_pb.RegionRef(name=self.name), metadata=self.metadata)
        except Exception:  # noqa: BLE001 - the session or daemon may be gone; unlink anyway
            pass
        self._release()
        return False


def upload(stub, metadata, options, m, name="", labels=None, sort_and_sum_duplicates=False,
           dtype=None, index_dtype=None, canonicalize=None):
    """SharedMemory.Upload of data `m` (anything Client.upload takes);
    returns its TensorInfo."""
    o = options.override(dtype=dtype, canonicalize=canonicalize)
    enc = interop.to_components(m, dtype=o.dtype, index_dtype=index_dtype,
                                canonicalize=o.canonicalize)
    arrays = [np.ascontiguousarray(a) for _, a in enc.parts]
    offsets, end = [], 0
    for a in arrays:
        offsets.append(end)
        end = _align(end + a.nbytes)
    with _Region(stub, end, metadata) as region:
        for a, off in zip(arrays, offsets):
            region.shm.buf[off:off + a.nbytes] = memoryview(a).cast("B")
        return stub.Upload(shm_pb.SharedUploadRequest(
            desc=enc.desc, name=name, labels=labels or {},
            sort_and_sum_duplicates=bool(sort_and_sum_duplicates or
                                         enc.sort_and_sum_duplicates),
            components=[shm_pb.RegionSlice(region=region.name, offset=off, byte_size=a.nbytes)
                        for a, off in zip(arrays, offsets)]), metadata=metadata)


def download(stub, tensors_stub, metadata, options, handle, ref, sparse=None, bf16=None,
             as_torch=None):
    """A held tensor read through shared memory, decoded as Client.download
    decodes it."""
    o = options.override(sparse=sparse, bf16=bf16)
    info = tensors_stub.GetInfo(ref(handle), metadata=metadata)
    # Room for every component with its 64-byte alignment (at most 8 of them).
    with _Region(stub, info.bytes + 8 * ALIGN, metadata) as region:
        placed = stub.Download(shm_pb.SharedDownloadRequest(
            tensor=ref(handle), into=shm_pb.RegionSlice(region=region.name,
                                                        byte_size=region.shm.size)),
            metadata=metadata)
        parts = {p.name: bytes(region.shm.buf[p.offset:p.offset + p.byte_size])
                 for p in placed.components}
    return interop.decode(placed.info.desc, parts, o, interop.torch_target(as_torch, ()))

