"""sparsed.aio.AsyncClient: the asyncio client on grpc.aio, with the same
methods as sparsed.Client (each a coroutine), built from the same
sparsed.calls builders, raising the same sparsed.Error subclasses.

    import asyncio, sparsed.aio

    async def main():
        async with sparsed.aio.AsyncClient("127.0.0.1:50051") as c:
            async with c.scope():
                a = await c.upload(m)
                y = await c.spmm(a, b, inline=True)

    asyncio.run(main())

Create the client inside the running event loop that uses it (grpc.aio
binds a channel to its loop).
"""

import asyncio
import functools

import grpc

from sparsed import calls, lifetimes, channel as channels, errors, scope as scopes, shared
from sparsed.client import install_methods, method_signature
from sparsed.options import Options
from sparsed.proto import (admin_grpc, checkpoint_grpc, compute_grpc, graph_grpc, sessions_grpc,
                           sessions_pb, shm_grpc, tensors_grpc, training_grpc)


def _async_method(builder):
    @functools.wraps(builder)
    async def method(self, *args, **kwargs):
        return await self._run(builder(self.options, *args, **kwargs))
    method.__signature__ = method_signature(builder)
    return method


class AsyncScope(scopes.Scope):
    """A scope of an AsyncClient (`async with client.scope() as s:`)."""

    async def __aenter__(self):
        return self._enter()

    async def __aexit__(self, exc_type, exc, tb):
        failures = []
        for o in self._leave():
            try:
                if o.kind == "layer":
                    await self._client.delete_layer(o.id)
                else:
                    await self._client.delete(o.id)
            except errors.NotFound:
                pass
            except errors.Error as e:
                failures.append((o, e))
        scopes.raise_failures(exc, failures)
        return False


class AsyncSession:
    """A session of an AsyncClient (sparsed.lifetimes): a Sessions.Open
    stream pinged by an asyncio task every third of the lease."""

    def __init__(self, client):
        self._client = client
        self._queue = asyncio.Queue()
        self.id, self.lease_ms = None, None
        self._pinger = None

    async def _open(self):
        async def pings():
            while (item := await self._queue.get()) is not None:
                yield item
        self._call = sessions_grpc.SessionsStub(self._client.channel).Open(
            pings(), metadata=self._client.metadata)
        try:
            first = await self._call.read()
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        self.id, self.lease_ms = first.session_id, first.lease_ms
        self._pinger = asyncio.ensure_future(self._ping())

    async def _ping(self):
        while True:
            await asyncio.sleep(self.lease_ms / 3000.0)
            await self._queue.put(sessions_pb.SessionPing())

    async def close(self):
        """Ends the session (idempotent): the daemon releases its tensors."""
        if self._pinger is None:
            return
        self._pinger.cancel()
        self._pinger = None
        await self._queue.put(None)
        try:
            while await asyncio.wait_for(self._call.read(), timeout=10) is not grpc.aio.EOF:
                pass
        except (grpc.RpcError, asyncio.TimeoutError):
            pass
        if self._client.session is self:
            self._client.session = None

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
        return False


class AsyncClient:
    """A grpc.aio connection to the daemon; arguments as for sparsed.Client.
    The bearer token is sent as metadata of every call; the raw stubs
    (tensors, compute, admin, checkpoints, training, training_ops,
    shared_memory, graphs) do not add it by themselves — pass
    metadata=client.metadata to them."""

    def __init__(self, address, max_message_bytes=65 << 20, token=None, tls=False, tls_ca=None,
                 tls_cert=None, tls_key=None, tls_server_name=None, *, timeout=None,
                 options=None, ttl=None, **option_fields):
        self.options = (options or Options()).override(**option_fields)
        self.timeout = timeout
        self.ttl = lifetimes.check_ttl(ttl)
        self.session = None
        self._token_metadata = channels.token_metadata(channels.default_token(token))
        self.channel = channels.make_aio_channel(
            address, tls=tls, tls_ca=tls_ca, tls_cert=tls_cert, tls_key=tls_key,
            tls_server_name=tls_server_name,
            options=channels.message_size_options(max_message_bytes))
        self.tensors = tensors_grpc.TensorsStub(self.channel)
        self.compute = compute_grpc.ComputeStub(self.channel)
        self.admin = admin_grpc.AdminStub(self.channel)
        self.checkpoints = checkpoint_grpc.CheckpointsStub(self.channel)
        self.training = training_grpc.TrainingStub(self.channel)
        self.training_ops = training_grpc.TrainingOpsStub(self.channel)
        self.shared_memory = shm_grpc.SharedMemoryStub(self.channel)
        self.graphs = graph_grpc.GraphsStub(self.channel)

    @property
    def metadata(self):
        """What every call sends: the token, the open session, the TTL."""
        pairs = list(self._token_metadata)
        if self.session is not None:
            pairs.append(("sparsed-session", self.session.id))
        if self.ttl is not None:
            pairs.append(("sparsed-ttl-seconds", str(self.ttl)))
        return tuple(pairs) or None

    async def open_session(self):
        """Opens a session (AsyncSession) that this client's calls run in
        until it is closed (`async with await client.open_session():`)."""
        if self.session is not None:
            raise RuntimeError("this client already has session %s open" % self.session.id)
        session = AsyncSession(self)
        await session._open()
        self.session = session
        return session

    async def upload_shared(self, m, name="", labels=None, sort_and_sum_duplicates=False, *,
                            dtype=None, index_dtype=None, canonicalize=None):
        """As upload, through POSIX shared memory (the client must run on the
        daemon's host); returns the TensorInfo. The shared-memory object is
        unregistered and unlinked afterwards, also when the call fails or is
        cancelled (sparsed.shared)."""
        info = await self._transfer(shared.upload(self.options, m, name, labels,
                                                  sort_and_sum_duplicates, dtype, index_dtype,
                                                  canonicalize))
        scopes.track(self, calls._created_tensor(info))
        return info

    async def download_shared(self, handle, *, sparse=None, bf16=None, as_torch=None):
        """As download, through POSIX shared memory."""
        return await self._transfer(shared.download(self.options, handle, sparse, bf16,
                                                    as_torch))

    async def _transfer(self, steps):
        """Sends the calls of a shared-memory transfer (sparsed.shared) and
        returns its result; grpc errors become sparsed.Error subclasses. A
        cancellation is passed to the transfer, which cleans up and then
        lets it go on."""
        t = shared.Transfer(steps)
        for step in t:
            try:
                t.answer(await self._shared_rpc(step))
            except BaseException as e:  # noqa: BLE001 - the transfer cleans up, then re-raises
                t.fail(e)
        return t.result

    async def _shared_rpc(self, step):
        rpc = getattr(getattr(self, step.service), step.method)
        call = rpc(step.request, timeout=self.timeout, metadata=self.metadata)
        if not step.settle:
            return await call
        # Cancelled meanwhile, a settling call still finishes (so that the
        # cleanup knows what the daemon did) before the cancellation goes on;
        # a second cancellation stops the wait, not the call.
        task = asyncio.ensure_future(call)
        task.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                await asyncio.wait([task])
            raise

    async def close(self):
        if self.session is not None:
            await self.session.close()
        await self.channel.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def scope(self):
        """An AsyncScope: `async with client.scope() as s:` deletes what the
        block creates (sparsed.scope)."""
        return AsyncScope(self)

    async def _run(self, call):
        """Sends one Call and returns its result; grpc errors become
        sparsed.Error subclasses."""
        rpc = getattr(getattr(self, call.service), call.method)
        try:
            if call.kind == "stream_out":
                acc = call.accumulator()
                async for msg in rpc(call.request, timeout=self.timeout, metadata=self.metadata):
                    acc.add(msg)
                response = acc
            else:
                response = await rpc(call.request, timeout=self.timeout, metadata=self.metadata)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        return scopes.complete(self, call, response)


install_methods(AsyncClient, _async_method)
