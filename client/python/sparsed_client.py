"""A small Python client for sparsed, generated from proto/sparsed/v1 at import.

Needs Debian's python3-grpcio, python3-grpc-tools, python3-numpy and
python3-scipy (run it with /usr/bin/python3). The stubs are generated with
grpc_tools.protoc into a cache directory keyed by the .proto contents, so the
client always matches the checkout it comes from.

    import sparsed_client as sc
    c = sc.Client("127.0.0.1:50051")   # TLS: sc.Client(addr, tls_ca="ca.pem", token=...)
    a = c.upload(scipy.sparse.random(100, 50, 0.1, format="csr", dtype="f4"), name="A")
    y = c.spmm(a, np.ones((50, 8), "f4"), inline=True)    # -> numpy array
    layer = c.create_layer(64, 256, sparsity=0.9, relu=True, optimizer={"kind": "adam", "lr": 1e-3})
    h = c.layer_forward(layer, x, call_id="b0")          # keeps what backward needs
    c.layer_backward(layer, dh, "b0"); c.layer_step(layer, grad_scale=1 / len(x))
"""

import collections
import hashlib
import importlib
import os
import re
import sys
import tempfile

import grpc
import numpy as np
import scipy.sparse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto")
PROTO_FILES = ["tensor", "tensors", "compute", "admin", "checkpoint", "training"]
CHUNK_BYTES = 1 << 20


def generate_stubs(proto_dir=PROTO_DIR, names=PROTO_FILES, package="sparsed/v1"):
    """Generates Python stubs for proto_dir/package/NAME.proto into a cache dir
    and puts it on sys.path. Returns the directory."""
    paths = [os.path.join(proto_dir, package, n + ".proto") for n in names]
    digest = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            digest.update(f.read())
    out = os.path.join(tempfile.gettempdir(), "sparsed-pystubs-" + digest.hexdigest()[:16])
    if not os.path.exists(os.path.join(out, ".done")):
        from grpc_tools import protoc  # Debian: python3-grpc-tools
        os.makedirs(out, exist_ok=True)
        rc = protoc.main(["protoc", "-I" + proto_dir, "--python_out=" + out,
                          "--grpc_python_out=" + out] + paths)
        if rc != 0:
            raise RuntimeError("protoc failed on %s" % paths)
        for d, _, _ in os.walk(out):
            open(os.path.join(d, "__init__.py"), "a").close()
        open(os.path.join(out, ".done"), "w").close()
    if out not in sys.path:
        sys.path.insert(0, out)
    return out


generate_stubs()
pb = importlib.import_module("sparsed.v1.tensor_pb2")
tensors_pb = importlib.import_module("sparsed.v1.tensors_pb2")
tensors_grpc = importlib.import_module("sparsed.v1.tensors_pb2_grpc")
compute_pb = importlib.import_module("sparsed.v1.compute_pb2")
compute_grpc = importlib.import_module("sparsed.v1.compute_pb2_grpc")
admin_pb = importlib.import_module("sparsed.v1.admin_pb2")
admin_grpc = importlib.import_module("sparsed.v1.admin_pb2_grpc")
checkpoint_pb = importlib.import_module("sparsed.v1.checkpoint_pb2")
checkpoint_grpc = importlib.import_module("sparsed.v1.checkpoint_pb2_grpc")
training_pb = importlib.import_module("sparsed.v1.training_pb2")
training_grpc = importlib.import_module("sparsed.v1.training_pb2_grpc")

_INDEX = {pb.I32: np.int32, pb.I64: np.int64, pb.DTYPE_UNSPECIFIED: np.int32}
VALUE_DTYPES = {"f32": pb.F32, "f16": pb.F16, "bf16": pb.BF16}


def _decode_values(dtype, raw, dense):
    """Values bytes of a tensor as numpy: F32 as float32; F16 as float16 when
    dense, else widened to float32 (scipy.sparse has no float16); BF16 (numpy
    has no bfloat16) widened exactly to float32."""
    if dtype == pb.F16:
        v = np.frombuffer(raw, dtype="<f2")
        return v if dense else v.astype(np.float32)
    if dtype == pb.BF16:
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
    return np.frombuffer(raw, dtype="<f4")


def to_components(m):
    """(TensorDesc, [(component name, numpy array)]) for a scipy sparse matrix
    (CSR or COO kept as is, others converted to CSR) or a numpy array (dense)."""
    desc = pb.TensorDesc(dtype=pb.F32)
    if scipy.sparse.issparse(m):
        if m.format not in ("csr", "coo"):
            m = m.tocsr()
        idx = np.int32 if max(m.shape + (m.nnz,)) < 2**31 else np.int64
        desc.index_dtype = pb.I32 if idx is np.int32 else pb.I64
        desc.shape.extend(m.shape)
        desc.nnz = m.nnz
        if m.format == "csr":
            desc.format = pb.CSR
            parts = [("row_ptr", m.indptr.astype(idx)), ("col_idx", m.indices.astype(idx))]
        else:
            desc.format = pb.COO
            parts = [("row_idx", m.row.astype(idx)), ("col_idx", m.col.astype(idx))]
        parts.append(("values", m.data.astype("<f4")))
    else:
        a = np.ascontiguousarray(m, dtype="<f4")
        desc.format = pb.DENSE
        desc.shape.extend(a.shape)
        parts = [("values", a.ravel())]
    return desc, parts


def _nm_positions(desc, meta):
    """Column offset (0..m-1) within its group of every N:M slot, shape
    (rows, groups, n), from the meta array (2:4: packed nibbles)."""
    rows, cols = desc.shape
    n, m = desc.n, desc.m
    groups = cols // m
    if (n, m) == (2, 4):
        words = meta.view("<u4").reshape(rows, -1)
        g = np.arange(groups)
        nibbles = (words[:, g // 8] >> (4 * (g % 8)).astype(np.uint32)) & 0xF
        return np.stack([nibbles & 3, nibbles >> 2], axis=-1).astype(np.int64)
    return meta.reshape(rows, groups, n).astype(np.int64)


def from_components(desc, parts):
    """Inverse of to_components: a numpy array (DENSE) or a scipy matrix: CSR,
    COO, CSC as such; BSR as a bsr_matrix when the shape is a multiple of the
    block, else as the CSR of the unpadded matrix; NM as the CSR of its
    non-zero slots."""
    shape = tuple(desc.shape)
    idx = _INDEX[desc.index_dtype]
    # An empty component arrives as no chunk at all.
    get = lambda name, dt: np.frombuffer(parts.get(name, b""), dtype=dt)
    if desc.format == pb.DENSE:
        return _decode_values(desc.dtype, parts.get("values", b""), True).reshape(shape).copy()
    values = _decode_values(desc.dtype, parts.get("values", b""), False)
    if desc.format == pb.CSR:
        return scipy.sparse.csr_matrix((values, get("col_idx", idx), get("row_ptr", idx)), shape)
    if desc.format == pb.COO:
        return scipy.sparse.coo_matrix((values, (get("row_idx", idx), get("col_idx", idx))), shape)
    if desc.format == pb.CSC:
        return scipy.sparse.csc_matrix((values, get("row_idx", idx), get("col_ptr", idx)), shape)
    if desc.format == pb.BSR:
        r, c = desc.block
        padded = (-(-shape[0] // r) * r, -(-shape[1] // c) * c)
        m = scipy.sparse.bsr_matrix((values.reshape(-1, r, c), get("block_col_idx", idx),
                                     get("block_row_ptr", idx)), shape=padded)
        return m if padded == shape else m.tocsr()[:shape[0], :shape[1]]
    if desc.format == pb.NM:
        rows, cols = shape
        groups = cols // desc.m
        pos = _nm_positions(desc, get("meta", "<i4"))
        col = (np.arange(groups)[None, :, None] * desc.m + pos).ravel()
        row = np.repeat(np.arange(rows), groups * desc.n)
        keep = values != 0
        return scipy.sparse.csr_matrix((values[keep], (row[keep], col[keep])), shape)
    raise ValueError("unknown format %d" % desc.format)


FORMATS = {"dense": pb.DENSE, "coo": pb.COO, "csr": pb.CSR, "csc": pb.CSC, "bsr": pb.BSR,
           "nm": pb.NM}


def inline(m):
    desc, parts = to_components(m)
    return pb.InlineTensor(desc=desc, components=[
        pb.Component(name=n, data=a.tobytes()) for n, a in parts])


def from_inline(msg):
    return from_components(msg.desc, {c.name: c.data for c in msg.components})


OPTIMIZERS = {"sgd": training_pb.SGD, "adam": training_pb.ADAM, "adamw": training_pb.ADAMW}
LAYER_INITS = {"dense_prune": training_pb.DENSE_PRUNE,
               "random_pattern": training_pb.RANDOM_PATTERN}


def _message(cls, value, enums=None):
    """value as a `cls` message: the message itself, or a dict of its fields
    (string values of the fields in `enums` looked up there)."""
    if value is None or isinstance(value, cls):
        return value
    fields = dict(value)
    for field, table in (enums or {}).items():
        if isinstance(fields.get(field), str):
            fields[field] = table[fields[field].lower()]
    return cls(**fields)


def optimizer_config(optimizer):
    """An OptimizerConfig from one, or from a dict such as
    {"kind": "adam", "lr": 1e-3} (kind: "sgd", "adam", "adamw" or the enum)."""
    return _message(training_pb.OptimizerConfig, optimizer, {"kind": OPTIMIZERS})


def layer_ref(handle):
    """A LayerRef from a LayerInfo, a LayerRef, an id ('l-' + 16 hex) or a name."""
    if isinstance(handle, training_pb.LayerRef):
        return handle
    if isinstance(handle, training_pb.LayerInfo):
        return training_pb.LayerRef(id=handle.id)
    if re.fullmatch(r"l-[0-9a-f]{16}", handle):
        return training_pb.LayerRef(id=handle)
    return training_pb.LayerRef(name=handle)


def ref(handle):
    """A TensorRef from a TensorInfo, an id ('t-' + 16 hex) or a name."""
    if isinstance(handle, pb.TensorInfo):
        return pb.TensorRef(id=handle.id)
    if handle.startswith("t-") and len(handle) == 18:
        return pb.TensorRef(id=handle)
    return pb.TensorRef(name=handle)


class _CallDetails(collections.namedtuple(
        "_CallDetails", ("method", "timeout", "metadata", "credentials", "wait_for_ready",
                         "compression")), grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                   grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds "authorization: Bearer TOKEN" to every call on the channel. (gRPC's
    call credentials would refuse a plaintext channel, and the daemon on
    loopback is plaintext.)"""

    def __init__(self, token):
        self._header = ("authorization", "Bearer " + token)

    def _with_token(self, d):
        return _CallDetails(d.method, d.timeout, list(d.metadata or ()) + [self._header],
                            d.credentials, d.wait_for_ready, d.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def _read_pem(option, path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError("%s %r cannot be read: %s" % (option, path, e.strerror)) from None


def make_channel(address, token=None, tls=False, tls_ca=None, tls_cert=None, tls_key=None,
                 tls_server_name=None, options=()):
    """A channel to the daemon: TLS when tls is true or any tls_* file is given
    (tls_ca: PEM CA bundle the server certificate must chain to, default
    gRPC's roots; tls_cert + tls_key: PEM client certificate and key for mutual
    TLS), else plaintext; every call carries the bearer token if one is given."""
    options = list(options)
    if tls or tls_ca or tls_cert or tls_key:
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("tls_cert and tls_key go together: a client certificate needs "
                             "its private key")
        creds = grpc.ssl_channel_credentials(
            root_certificates=_read_pem("tls_ca", tls_ca) if tls_ca else None,
            private_key=_read_pem("tls_key", tls_key) if tls_key else None,
            certificate_chain=_read_pem("tls_cert", tls_cert) if tls_cert else None)
        if tls_server_name:
            options.append(("grpc.ssl_target_name_override", tls_server_name))
        channel = grpc.secure_channel(address, creds, options=options)
    else:
        if tls_server_name:
            raise ValueError("tls_server_name is set but the channel does not use TLS")
        channel = grpc.insecure_channel(address, options=options)
    if token:
        # Visible ASCII only (RFC 6750); the message never repeats the token.
        if not all(0x20 < ord(ch) < 0x7f for ch in token):
            raise ValueError("token contains a space or a character that cannot be sent in "
                             "a header")
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


class Client:
    def __init__(self, address, max_message_bytes=65 << 20, token=None, tls=False, tls_ca=None,
                 tls_cert=None, tls_key=None, tls_server_name=None):
        """token: bearer token sent with every call (default: $SPARSED_TOKEN).
        TLS options as for make_channel."""
        opts = [("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes)]
        if token is None:
            token = os.environ.get("SPARSED_TOKEN") or None
        self.channel = make_channel(address, token=token, tls=tls, tls_ca=tls_ca,
                                    tls_cert=tls_cert, tls_key=tls_key,
                                    tls_server_name=tls_server_name, options=opts)
        self.tensors = tensors_grpc.TensorsStub(self.channel)
        self.compute = compute_grpc.ComputeStub(self.channel)
        self.admin = admin_grpc.AdminStub(self.channel)
        self.checkpoints = checkpoint_grpc.CheckpointsStub(self.channel)
        self.training = training_grpc.TrainingStub(self.channel)
        self.training_ops = training_grpc.TrainingOpsStub(self.channel)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def upload(self, m, name="", labels=None, sort_and_sum_duplicates=False):
        """Streams a scipy sparse matrix or numpy array; returns its TensorInfo."""
        desc, parts = to_components(m)

        def messages():
            yield tensors_pb.UploadRequest(header=tensors_pb.UploadHeader(
                desc=desc, name=name, labels=labels or {},
                sort_and_sum_duplicates=sort_and_sum_duplicates))
            for comp, arr in parts:
                data = memoryview(arr.tobytes())
                for off in range(0, len(data), CHUNK_BYTES):
                    yield tensors_pb.UploadRequest(chunk=pb.Chunk(
                        component=comp, offset=off, data=bytes(data[off:off + CHUNK_BYTES])))

        return self.tensors.Upload(messages())

    def download(self, handle):
        """A held tensor as a scipy sparse matrix or numpy array."""
        header, parts = self.download_raw(handle)
        return from_components(header.desc, parts)

    def download_raw(self, handle):
        """A held tensor as (TensorInfo, {component name: bytes})."""
        header, parts = None, {}
        for msg in self.tensors.Download(tensors_pb.DownloadRequest(tensor=ref(handle))):
            if msg.HasField("header"):
                header = msg.header
            else:
                buf = parts.setdefault(msg.chunk.component, bytearray())
                if msg.chunk.offset != len(buf):
                    raise RuntimeError("chunk out of order")
                buf += msg.chunk.data
        return header, {k: bytes(v) for k, v in parts.items()}

    def spmm(self, a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, c=None,
             bias=None, relu=False, clamp_max=None, inline=False, name="", out_dtype=None):
        """C = epilogue(alpha op(A) op(B) + beta C). Operands: TensorInfo, id,
        name, or data (scipy sparse / numpy) sent inline. out_dtype: "f32",
        "f16", "bf16" (or the pb enum) for the result, rounded to nearest
        even; None: the operands' dtype when both are f16 or both bf16, else
        f32. Returns a numpy array when inline (float16 for f16, float32 for
        f32 and bf16), else the TensorInfo of the held result."""
        def operand(x):
            if isinstance(x, (pb.TensorInfo, str)):
                return compute_pb.Operand(ref=ref(x))
            return compute_pb.Operand(inline=globals()["inline"](x))

        req = compute_pb.SpmmRequest(a=operand(a), b=operand(b), transpose_a=transpose_a,
                                     transpose_b=transpose_b, alpha=alpha, beta=beta,
                                     output=compute_pb.Output(inline=inline, name=name))
        if c is not None:
            req.c.CopyFrom(operand(c))
        if bias is not None:
            req.epilogue.bias.CopyFrom(operand(bias))
        req.epilogue.relu = relu
        if clamp_max is not None:
            req.epilogue.clamp_max = clamp_max
        if isinstance(out_dtype, str):
            if out_dtype not in VALUE_DTYPES:
                raise ValueError("out_dtype %r is not one of f32, f16, bf16" % out_dtype)
            out_dtype = VALUE_DTYPES[out_dtype]
        if out_dtype is not None:
            req.out_dtype = out_dtype
        result = self.compute.Spmm(req)
        return from_inline(result.inline) if inline else result.tensor

    def _result(self, result, inline):
        return from_inline(result.inline) if inline else result.tensor

    @staticmethod
    def _source(x):
        if isinstance(x, (pb.TensorInfo, str)):
            return compute_pb.Operand(ref=ref(x))
        return compute_pb.Operand(inline=inline(x))

    def convert(self, source, to, block=None, nm=None, index_dtype=None, name="", inline=False):
        """The source in format `to` ("csr", ... or a pb.Format); block=(R, C)
        or R for BSR, nm=(n, m) for NM, index_dtype pb.I32/pb.I64. Returns the
        TensorInfo of the held result, or the data when inline."""
        req = compute_pb.ConvertRequest(
            source=self._source(source), to=FORMATS.get(to, to),
            output=compute_pb.Output(inline=inline, name=name))
        if block is not None:
            req.block.extend([block] if isinstance(block, int) else block)
        if nm is not None:
            req.n, req.m = nm
        if index_dtype is not None:
            req.index_dtype = index_dtype
        return self._result(self.compute.Convert(req), inline)

    def transpose(self, source, name="", inline=False):
        req = compute_pb.TransposeRequest(source=self._source(source),
                                          output=compute_pb.Output(inline=inline, name=name))
        return self._result(self.compute.Transpose(req), inline)

    def prune(self, source, sparsity=None, per_row=False, nm=None, block=None, name="",
              inline=False):
        """Magnitude (sparsity[, per_row]) -> CSR, nm=(n, m) -> NM, or
        block=(R, C) with sparsity -> BSR."""
        req = compute_pb.PruneRequest(source=self._source(source),
                                      output=compute_pb.Output(inline=inline, name=name))
        if nm is not None:
            req.nm.n, req.nm.m = nm
        elif block is not None:
            req.block.block.extend([block] if isinstance(block, int) else block)
            req.block.sparsity = sparsity
        else:
            req.magnitude.sparsity = sparsity
            req.magnitude.per_row = per_row
        return self._result(self.compute.Prune(req), inline)

    def inspect(self, handle, spy=(0, 0)):
        """InspectResponse; spy=(height, width): the largest spy grid wanted."""
        return self.tensors.Inspect(tensors_pb.InspectRequest(
            tensor=ref(handle), spy_height=spy[0], spy_width=spy[1]))

    def info(self, handle):
        return self.tensors.GetInfo(ref(handle))

    def list(self, name_prefix=""):
        return list(self.tensors.List(tensors_pb.ListRequest(name_prefix=name_prefix)).tensors)

    def delete(self, handle):
        return self.tensors.Delete(ref(handle))

    def status(self):
        return self.admin.GetStatus(admin_pb.StatusRequest())

    # Checkpoints: <data_dir>/checkpoints/NAME.safetensors on the daemon.
    def save_checkpoint(self, name, handles=()):
        """Saves the given tensors (ids or names; all held tensors when none)."""
        return self.checkpoints.SaveCheckpoint(checkpoint_pb.SaveCheckpointRequest(
            name=name, tensors=[ref(h) for h in handles]))

    def restore_checkpoint(self, name):
        """All or nothing; .restored (TensorInfo, new ids), .id_map (saved id -> new id)."""
        return self.checkpoints.RestoreCheckpoint(checkpoint_pb.RestoreCheckpointRequest(name=name))

    def list_checkpoints(self):
        return list(self.checkpoints.ListCheckpoints(
            checkpoint_pb.ListCheckpointsRequest()).checkpoints)

    def delete_checkpoint(self, name):
        self.checkpoints.DeleteCheckpoint(checkpoint_pb.DeleteCheckpointRequest(name=name))

    # Training: layers whose weights and optimizer state stay in the daemon.
    def create_layer(self, in_features, out_features, sparsity=0.0, name="",
                     init="dense_prune", bias=True, relu=False, seed=0, optimizer=None,
                     pruning=None, rigl=None, max_pending=0, format="csr"):
        """A sparse linear layer Y = X Wᵀ + b (then ReLU when relu); returns its
        LayerInfo. init: "dense_prune" or "random_pattern"; optimizer: see
        optimizer_config; pruning: a GradualPruning or a dict of its fields
        (initial_sparsity, final_sparsity, start_step, interval, count); rigl:
        a Rigl or a dict (alpha, interval, end_step, tile_rows)."""
        req = training_pb.CreateLayerRequest(
            name=name, in_features=in_features, out_features=out_features,
            format=FORMATS.get(format, format), sparsity=sparsity,
            init=LAYER_INITS.get(init, init), bias=bias, relu=relu, seed=seed,
            max_pending=max_pending)
        if optimizer is not None:
            req.optimizer.CopyFrom(optimizer_config(optimizer))
        if pruning is not None:
            req.pruning.CopyFrom(_message(training_pb.GradualPruning, pruning))
        if rigl is not None:
            req.rigl.CopyFrom(_message(training_pb.Rigl, rigl))
        return self.training.CreateLayer(req)

    def get_layer(self, layer):
        return self.training.GetLayer(layer_ref(layer))

    def list_layers(self):
        return list(self.training.ListLayers(training_pb.ListLayersRequest()).layers)

    def delete_layer(self, layer):
        self.training.DeleteLayer(layer_ref(layer))

    def layer_forward(self, layer, x, call_id="", inline=True, name=""):
        """Y for X [batch, in_features] (numpy, or a held tensor's handle);
        with call_id the layer keeps what layer_backward(call_id) needs.
        Returns a numpy array when inline, else the held result's TensorInfo."""
        req = training_pb.ForwardRequest(layer=layer_ref(layer), x=self._source(x),
                                         call_id=call_id,
                                         output=compute_pb.Output(inline=inline, name=name))
        return self._result(self.training.Forward(req).y, inline)

    def layer_backward(self, layer, dy, call_id, want_dx=False, inline=True, name=""):
        """Accumulates the gradients for forward call `call_id` from dY [batch,
        out_features] (the gradient after the fused ReLU, if any); returns dX
        when want_dx (numpy when inline, else a TensorInfo), else None."""
        req = training_pb.BackwardRequest(layer=layer_ref(layer), dy=self._source(dy),
                                          call_id=call_id, want_dx=want_dx,
                                          output=compute_pb.Output(inline=inline, name=name))
        resp = self.training.Backward(req)
        return self._result(resp.dx, inline) if want_dx else None

    def forget_call(self, layer, call_id):
        self.training.ForgetCall(training_pb.ForgetCallRequest(layer=layer_ref(layer),
                                                               call_id=call_id))

    def layer_step(self, layer, grad_scale=1.0, optimizer=None):
        """Applies the optimizer to the accumulated gradients times grad_scale
        (then the pruning schedule and RigL where due); optimizer replaces the
        hyper-parameters first. Returns the StepResponse."""
        req = training_pb.StepRequest(layer=layer_ref(layer), grad_scale=grad_scale)
        if optimizer is not None:
            req.optimizer.CopyFrom(optimizer_config(optimizer))
        return self.training.Step(req)

    def layer_parameter(self, layer, parameter="weight"):
        """"weight" (scipy CSR [out, in]), "bias", "weight_grad" or "bias_grad"
        (numpy) of a layer."""
        return from_inline(self.training.GetParameter(training_pb.GetParameterRequest(
            layer=layer_ref(layer), parameter=parameter)).inline)

    def dense_gradient(self, layer, row_begin=0, row_end=-1, inline=True, name=""):
        """Rows [row_begin, row_end) (-1: to the end) of the dense gradient
        dYᵀ X of the layer's last backward batch."""
        req = training_pb.DenseGradientRequest(layer=layer_ref(layer), row_begin=row_begin,
                                               row_end=row_end,
                                               output=compute_pb.Output(inline=inline, name=name))
        return self._result(self.training.DenseGradient(req), inline)

    def sddmm(self, a, b, pattern, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0,
              c=None, inline=True, name=""):
        """(alpha op(A) op(B)) at the stored positions of the CSR pattern, plus
        beta C (dense [nnz]). The proto promises a CSR with the pattern's
        structure; the daemon so far returns the f32 values [nnz] alone."""
        req = training_pb.SddmmRequest(a=self._source(a), b=self._source(b),
                                       transpose_a=transpose_a, transpose_b=transpose_b,
                                       pattern=self._source(pattern), alpha=alpha, beta=beta,
                                       output=compute_pb.Output(inline=inline, name=name))
        if c is not None:
            req.c.CopyFrom(self._source(c))
        return self._result(self.training_ops.Sddmm(req), inline)

    def dense_matmul(self, a, b, transpose_a=False, transpose_b=False, row_begin=0, row_end=-1,
                     inline=True, name=""):
        """Rows [row_begin, row_end) of op(A) op(B), dense f32 (row_begin 0 and
        row_end -1: all rows)."""
        req = training_pb.DenseMatmulRequest(a=self._source(a), b=self._source(b),
                                             transpose_a=transpose_a, transpose_b=transpose_b,
                                             row_begin=row_begin, row_end=row_end,
                                             output=compute_pb.Output(inline=inline, name=name))
        return self._result(self.training_ops.DenseMatmul(req), inline)
