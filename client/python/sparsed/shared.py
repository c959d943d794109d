"""Uploads and downloads through POSIX shared memory (the daemon's
SharedMemory service, docs/API.md): for a client on the daemon's host, the
bytes go through a shared-memory object instead of gRPC messages.

Each transfer creates an object (multiprocessing.shared_memory), registers
it, moves the tensor, unregisters and unlinks it; the daemon keeps no
mapping of it. Refused with sparsed.FailedPrecondition when the daemon has
shared memory off (the default with authentication).

This module never sends anything itself, so that the blocking and the
asyncio client share every part of a transfer but the waiting: `upload` and
`download` are generators of the RPCs (Rpc) a transfer makes, each sent with
the answer (or thrown the typed error) of the one before, returning the
transfer's result; a client runs them with `Transfer`:

    t = Transfer(upload(options, m))
    for step in t:
        try:
            t.answer(send(step))          # or: await ...
        except BaseException as e:        # errors, also cancellation
            t.fail(e)
    return t.result

Whatever ends a transfer (its result, an error, KeyboardInterrupt, an
asyncio cancellation), the object is unlinked and then the region
unregistered: thrown into the generator, the exception passes its cleanup,
which asks for the Unregister before it goes on.
"""

import secrets
from multiprocessing import shared_memory
from typing import NamedTuple

import grpc
import numpy as np

from sparsed import calls, errors, interop
from sparsed.proto import pb, shm_pb

ALIGN = 64          # the daemon places each downloaded component at a multiple of this
MAX_COMPONENTS = 8  # more than any format has


def _align(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


class Rpc(NamedTuple):
    """One call of a transfer. service: the client attribute holding the stub
    ("shared_memory" or "tensors"); method: the stub's method; request: its
    message. settle: a short call whose outcome the cleanup depends on (the
    Register and Unregister): an asyncio client lets it finish even when the
    caller is cancelled meanwhile, and only then goes on with the
    cancellation (a second cancellation stops waiting)."""
    service: str
    method: str
    request: object
    settle: bool = False


class Region:
    """A fresh shared-memory object of `size` bytes (at least 1) for one
    transfer, and the name it is registered under. release() closes and
    unlinks it (idempotent)."""

    def __init__(self, size):
        self.name = "py-" + secrets.token_hex(8)
        self.shm = shared_memory.SharedMemory(create=True, size=max(int(size), 1))
        self.size = self.shm.size
        self.key = "/" + self.shm.name  # what the daemon shm_opens

    @property
    def buf(self):
        return self.shm.buf

    def register_request(self):
        return shm_pb.RegisterRegionRequest(name=self.name, key=self.key, byte_size=self.size)

    def unregister_request(self):
        return shm_pb.RegionRef(name=self.name)

    def slice(self, offset, byte_size):
        return shm_pb.RegionSlice(region=self.name, offset=offset, byte_size=byte_size)

    def release(self):
        if self.shm is None:
            return
        shm, self.shm = self.shm, None
        try:
            shm.close()
        finally:
            try:
                shm.unlink()
            except FileNotFoundError:
                pass


def _in_region(size, transfer):
    """The steps of transfer(region), a generator of Rpc steps, with a fresh
    region of `size` bytes registered around them. However they end, the
    object is unlinked first (nothing to send, so a second cancellation
    cannot stop it), then the region is unregistered, any error of that
    ignored. A Register that was cut short (cancelled, past its deadline) may
    have been done by the daemon and is unregistered too; one the daemon
    refused is not."""
    region = Region(size)
    registered = abandoned = False
    try:
        registered = True
        try:
            yield Rpc("shared_memory", "Register", region.register_request(), settle=True)
        except (errors.DeadlineExceeded, errors.Cancelled):
            raise
        except errors.Error:
            registered = False
            raise
        return (yield from transfer(region))
    except GeneratorExit:  # closed unfinished: no more calls can be sent
        abandoned = True
        raise
    finally:
        try:
            region.release()
        finally:
            if registered and not abandoned:
                try:
                    yield Rpc("shared_memory", "Unregister", region.unregister_request(),
                              settle=True)
                except Exception:  # noqa: BLE001 - the session or daemon may be gone
                    pass


def layout(arrays):
    """([offset of each array], bytes in all) of arrays placed one after
    another, each at a multiple of ALIGN."""
    offsets, end = [], 0
    for a in arrays:
        offsets.append(end)
        end = _align(end + a.nbytes)
    return offsets, end


def upload(options, m, name="", labels=None, sort_and_sum_duplicates=False, dtype=None,
           index_dtype=None, canonicalize=None):
    """The steps of a SharedMemory.Upload of data `m` (anything Client.upload
    takes, with the same arguments); the result is its TensorInfo."""
    o = options.override(dtype=dtype, canonicalize=canonicalize)
    enc = interop.to_components(m, dtype=o.dtype, index_dtype=index_dtype,
                                canonicalize=o.canonicalize)
    arrays = [np.ascontiguousarray(a) for _, a in enc.parts]
    offsets, end = layout(arrays)

    def transfer(region):
        for a, off in zip(arrays, offsets):
            region.buf[off:off + a.nbytes] = memoryview(a).cast("B")
        return (yield Rpc("shared_memory", "Upload", shm_pb.SharedUploadRequest(
            desc=enc.desc, name=name, labels=labels or {},
            sort_and_sum_duplicates=bool(sort_and_sum_duplicates or
                                         enc.sort_and_sum_duplicates),
            components=[region.slice(off, a.nbytes) for a, off in zip(arrays, offsets)])))

    return (yield from _in_region(end, transfer))


def download_region_bytes(info):
    """The size of the region a download of the tensor `info` (TensorInfo)
    uses: its bytes, with room for each component's alignment."""
    return info.bytes + MAX_COMPONENTS * ALIGN


def download(options, handle, sparse=None, bf16=None, as_torch=None):
    """The steps of reading a held tensor through shared memory (arguments as
    for Client.download); the result is the data, decoded as Client.download
    decodes it."""
    o = options.override(sparse=sparse, bf16=bf16)
    device = interop.torch_target(as_torch, ())
    info = yield Rpc("tensors", "GetInfo", calls.ref(handle))

    def transfer(region):
        placed = yield Rpc("shared_memory", "Download", shm_pb.SharedDownloadRequest(
            tensor=pb.TensorRef(id=info.id), into=region.slice(0, region.size)))
        for p in placed.components:
            if p.offset < 0 or p.byte_size < 0 or p.offset + p.byte_size > region.size:
                raise errors.DataLoss("the daemon placed component %s of %s at [%d, %d), "
                                      "outside the %d-byte region" % (
                                          p.name, info.id, p.offset, p.offset + p.byte_size,
                                          region.size))
        parts = {p.name: bytes(region.buf[p.offset:p.offset + p.byte_size])
                 for p in placed.components}
        return placed.info.desc, parts

    desc, parts = yield from _in_region(download_region_bytes(info), transfer)
    return interop.decode(desc, parts, o, device)


class Transfer:
    """Runs the steps of `upload` or `download` for a client: iterating gives
    each Rpc to send; answer(response) or fail(exception) reports how it
    went (a grpc.RpcError becomes its sparsed.Error); after the loop,
    `result` is the transfer's result. An exception of the transfer — its
    own, or one passed to fail() after the cleanup ran — is raised by the
    iteration."""

    def __init__(self, steps):
        self._steps = steps
        self._response = self._error = None
        self.result = None

    def __iter__(self):
        return self

    def __next__(self):
        response, error = self._response, self._error
        self._response = self._error = None
        try:
            if error is not None:
                return self._steps.throw(error)
            return self._steps.send(response)
        except StopIteration as stop:
            self.result = stop.value
            raise StopIteration from None

    def answer(self, response):
        self._response = response

    def fail(self, exc):
        self._error = errors.from_rpc_error(exc) if isinstance(exc, grpc.RpcError) else exc
