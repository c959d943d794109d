"""sparsed.Client: the blocking client. Its methods are the builders of
sparsed.calls, run over a sync gRPC channel; every daemon error is raised as
the typed sparsed.Error subclass (sparsed.errors).

    import sparsed
    with sparsed.Client("127.0.0.1:50051") as c:
        a = c.upload(scipy_matrix)
        y = c.spmm(a, numpy_array, inline=True)

The raw generated stubs are attributes too (tensors, compute, admin,
checkpoints, training, training_ops, all on `channel`, which carries the
token), for RPCs the methods do not cover; they raise plain grpc errors.
"""

import functools
import inspect

import grpc

from sparsed import calls, channel as channels, errors, lifetimes, scope as scopes, shared
from sparsed.options import Options
from sparsed.proto import (admin_grpc, checkpoint_grpc, compute_grpc, graph_grpc, shm_grpc,
                           tensors_grpc, training_grpc)


def method_signature(builder):
    """The signature of a client method made from a calls builder: the
    builder's without its leading `options`, with `self` in front."""
    sig = inspect.signature(builder)
    params = list(sig.parameters.values())[1:]
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sig.replace(parameters=[self_param] + params)


def _sync_method(builder):
    @functools.wraps(builder)
    def method(self, *args, **kwargs):
        return self._run(builder(self.options, *args, **kwargs))
    method.__signature__ = method_signature(builder)
    return method


class SyncScope(scopes.Scope):
    """A scope of a sync Client (`with client.scope() as s:`)."""

    def __enter__(self):
        return self._enter()

    def __exit__(self, exc_type, exc, tb):
        failures = []
        for o in self._leave():
            try:
                if o.kind == "layer":
                    self._client.delete_layer(o.id)
                else:
                    self._client.delete(o.id)
            except errors.NotFound:
                pass
            except errors.Error as e:
                failures.append((o, e))
        scopes.raise_failures(exc, failures)
        return False


class Client:
    """A connection to the daemon.

    address: "host:port" or "unix:/path". token: bearer token sent with every
    call (default: $SPARSED_TOKEN; "" for none). tls, tls_ca, tls_cert,
    tls_key, tls_server_name: TLS (sparsed.channel.credentials).
    max_message_bytes: the largest message either way (inline operands and
    results). timeout: seconds every call may take (None: no deadline).
    options: a sparsed.Options, or its fields as keywords (dtype,
    canonicalize, sparse, bf16) — how data is sent and returned.
    session: open a session (open_session()) now, so that unnamed results
    and uploads are released when the client closes or its process ends.
    ttl: seconds after which the daemon releases what calls create (None:
    never). Both: sparsed.lifetimes, docs/API.md "Lifetimes"."""

    def __init__(self, address, max_message_bytes=65 << 20, token=None, tls=False, tls_ca=None,
                 tls_cert=None, tls_key=None, tls_server_name=None, *, timeout=None,
                 options=None, session=False, ttl=None, **option_fields):
        self.options = (options or Options()).override(**option_fields)
        self.timeout = timeout
        self.ttl = lifetimes.check_ttl(ttl)
        self.session = None
        self.channel = grpc.intercept_channel(
            channels.make_channel(
                address, token=channels.default_token(token), tls=tls, tls_ca=tls_ca,
                tls_cert=tls_cert, tls_key=tls_key, tls_server_name=tls_server_name,
                options=channels.message_size_options(max_message_bytes)),
            channels.ExtraMetadata(self._lifetime_metadata))
        self.tensors = tensors_grpc.TensorsStub(self.channel)
        self.compute = compute_grpc.ComputeStub(self.channel)
        self.admin = admin_grpc.AdminStub(self.channel)
        self.checkpoints = checkpoint_grpc.CheckpointsStub(self.channel)
        self.training = training_grpc.TrainingStub(self.channel)
        self.training_ops = training_grpc.TrainingOpsStub(self.channel)
        self.shared_memory = shm_grpc.SharedMemoryStub(self.channel)
        self.graphs = graph_grpc.GraphsStub(self.channel)
        if session:
            self.open_session()

    def _lifetime_metadata(self):
        pairs = []
        if self.session is not None:
            pairs.append(("sparsed-session", self.session.id))
        if self.ttl is not None:
            pairs.append(("sparsed-ttl-seconds", str(self.ttl)))
        return pairs

    def open_session(self):
        """Opens a session (sparsed.lifetimes.Session) that this client's
        calls then run in, until it is closed (`with client.open_session():`).
        One at a time per client."""
        if self.session is not None:
            raise RuntimeError("this client already has session %s open" % self.session.id)

        def forget(s):
            if self.session is s:
                self.session = None
        self.session = lifetimes.Session(self.channel, on_close=forget)
        return self.session

    def upload_shared(self, m, name="", labels=None, sort_and_sum_duplicates=False, *,
                      dtype=None, index_dtype=None, canonicalize=None):
        """As upload, through POSIX shared memory (the client must run on the
        daemon's host); returns the TensorInfo. The shared-memory object is
        unregistered and unlinked afterwards, also when the call fails
        (sparsed.shared)."""
        info = self._transfer(shared.upload(self.options, m, name, labels,
                                            sort_and_sum_duplicates, dtype, index_dtype,
                                            canonicalize))
        scopes.track(self, calls._created_tensor(info))
        return info

    def download_shared(self, handle, *, sparse=None, bf16=None, as_torch=None):
        """As download, through POSIX shared memory."""
        return self._transfer(shared.download(self.options, handle, sparse, bf16, as_torch))

    def _transfer(self, steps):
        """Sends the calls of a shared-memory transfer (sparsed.shared) and
        returns its result; grpc errors become sparsed.Error subclasses."""
        t = shared.Transfer(steps)
        for step in t:
            rpc = getattr(getattr(self, step.service), step.method)
            try:
                t.answer(rpc(step.request, timeout=self.timeout))
            except BaseException as e:  # noqa: BLE001 - the transfer cleans up, then re-raises
                t.fail(e)
        return t.result

    def close(self):
        if self.session is not None:
            self.session.close()
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def scope(self):
        """A SyncScope: `with client.scope() as s:` deletes what the block
        creates (sparsed.scope)."""
        return SyncScope(self)

    def _run(self, call):
        """Sends one Call and returns its result; grpc errors become
        sparsed.Error subclasses."""
        rpc = getattr(getattr(self, call.service), call.method)
        try:
            if call.kind == "stream_out":
                acc = call.accumulator()
                for msg in rpc(call.request, timeout=self.timeout):
                    acc.add(msg)
                response = acc
            else:
                response = rpc(call.request, timeout=self.timeout)
        except grpc.RpcError as e:
            raise errors.from_rpc_error(e) from None
        return scopes.complete(self, call, response)


def install_methods(cls, make_method):
    """Gives `cls` one method per calls builder, made by make_method."""
    for builder in calls.METHODS:
        method = make_method(builder)
        method.__qualname__ = "%s.%s" % (cls.__name__, builder.__name__)
        setattr(cls, builder.__name__, method)


install_methods(Client, _sync_method)
