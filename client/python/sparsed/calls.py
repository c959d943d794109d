"""Every client method as a Call: the request message(s), which RPC takes
them, how the answer becomes the method's result, and which tensors or
layers the call creates or deletes (for scopes).

This module builds and decodes; it never sends. sparsed.Client and
sparsed.aio.AsyncClient turn each builder `NAME(options, *args, **kwargs)`
into their method `NAME(*args, **kwargs)` and only do the transport, so the
two clients cannot differ in anything but blocking.

Handles: a tensor is named by its TensorInfo, a TensorRef, its id
('t-' + 16 hex digits) or its name; a layer by LayerInfo, LayerRef, id
('l-' + 16 hex digits) or name. Data operands (NumPy, SciPy, NMTensor,
torch, __dlpack__) travel inline, encoded by sparsed.interop with the
client's Options; `dtype=` on a method applies to its data operands.
"""

import builtins
import re

from sparsed import interop, scope
from google.protobuf import json_format

from sparsed.proto import (pb, tensors_pb, compute_pb, admin_pb, checkpoint_pb, training_pb, graph_pb,
                           FORMATS, INDEX_DTYPES, VALUE_DTYPES, OPTIMIZERS, LAYER_INITS, enum)

CHUNK_BYTES = 1 << 20


class Call:
    """One RPC. service: the client attribute holding the stub ("tensors",
    "compute", "admin", "checkpoints", "training", "training_ops"); method:
    the stub's method; kind: "unary", "stream_in" (request is an iterable of
    messages) or "stream_out" (the response is a stream, fed to
    accumulator().add and then to finish); finish(response): the method's
    result; created(response): scope.Owned records of what the call made;
    deletes: (kind, handle) the call deletes."""

    __slots__ = ("service", "method", "request", "kind", "finish", "created", "deletes",
                 "accumulator")

    def __init__(self, service, method, request, finish=None, kind="unary", created=None,
                 deletes=None, accumulator=None):
        self.service, self.method, self.request, self.kind = service, method, request, kind
        self.finish = finish or (lambda response: response)
        self.created = created
        self.deletes = deletes
        self.accumulator = accumulator


# ---- handles and small messages --------------------------------------------

def _handle_ref(handle, ref_cls, info_cls, prefix, what):
    """A ref_cls from an info_cls, a ref_cls, an id (prefix + 16 hex) or a name."""
    if isinstance(handle, ref_cls):
        return handle
    if isinstance(handle, info_cls):
        return ref_cls(id=handle.id)
    if not isinstance(handle, str):
        raise TypeError("a %s handle is a %s, %s, id or name, not %s"
                        % (what, info_cls.__name__, ref_cls.__name__, type(handle).__name__))
    if re.fullmatch(prefix + r"[0-9a-f]{16}", handle):
        return ref_cls(id=handle)
    return ref_cls(name=handle)


def ref(handle):
    """A TensorRef from a TensorInfo, a TensorRef, an id ('t-' + 16 hex) or a name."""
    return _handle_ref(handle, pb.TensorRef, pb.TensorInfo, "t-", "tensor")


def layer_ref(handle):
    """A LayerRef from a LayerInfo, a LayerRef, an id ('l-' + 16 hex) or a name."""
    return _handle_ref(handle, training_pb.LayerRef, training_pb.LayerInfo, "l-", "layer")


def message(cls, value, enums=None):
    """value as a `cls` message: the message itself, or a dict of its fields
    (string values of the fields in `enums` looked up there)."""
    if value is None or isinstance(value, cls):
        return value
    fields = dict(value)
    for field, table in (enums or {}).items():
        if isinstance(fields.get(field), str):
            fields[field] = enum(table, fields[field], field)
    return cls(**fields)


def optimizer_config(optimizer):
    """An OptimizerConfig from one, or from a dict such as
    {"kind": "adam", "lr": 1e-3} (kind: "sgd", "adam", "adamw" or the enum)."""
    return message(training_pb.OptimizerConfig, optimizer, {"kind": OPTIMIZERS})


def operand(x, options, dtype=None):
    """An Operand: a reference for a handle, else the data inline."""
    if interop.is_handle(x):
        return compute_pb.Operand(ref=ref(x))
    o = options.override(dtype=dtype)
    return compute_pb.Operand(inline=interop.inline_tensor(
        x, dtype=o.dtype, canonicalize=o.canonicalize))


def _f32_operand(x, options):
    """An Operand the API takes as f32 only (Spmm's c and bias): data of any
    real type is converted to f32."""
    return operand(x, options, dtype="f32")


def _output(inline, name, labels):
    return compute_pb.Output(inline=inline, name=name, labels=labels or {})


def _op_result(options, inline, operands, as_torch):
    """finish and created for an OpResult: decoded data when inline, else the
    held result's TensorInfo (owned by the active scope)."""
    device = interop.torch_target(as_torch, operands)

    def finish(result):
        if inline:
            t = result.inline
            return interop.decode(t.desc, {c.name: c.data for c in t.components}, options,
                                  device)
        return result.tensor

    def created(result):
        return [] if inline else [scope.owned_of("tensor", result.tensor)]

    return finish, created


def _created_tensor(info):
    return [scope.owned_of("tensor", info)]


# ---- Tensors ---------------------------------------------------------------

def upload(options, m, name="", labels=None, sort_and_sum_duplicates=False, *, dtype=None,
           index_dtype=None, canonicalize=None):
    """Streams data `m` (NumPy, SciPy sparse matrix or array, NMTensor, torch,
    __dlpack__) to the daemon in 1 MiB chunks; returns its TensorInfo.
    dtype: value type to convert to ("f32", "f16", "bf16"; default: the
    client's, which keeps float32/float16/bfloat16 and refuses others).
    index_dtype: "i32" / "i64" for the index arrays (default: as given).
    canonicalize: see sparsed.Options; sort_and_sum_duplicates=True always
    asks the daemon to sort and sum."""
    o = options.override(dtype=dtype, canonicalize=canonicalize)
    enc = interop.to_components(m, dtype=o.dtype, index_dtype=index_dtype,
                                canonicalize=o.canonicalize)

    def messages():
        yield tensors_pb.UploadRequest(header=tensors_pb.UploadHeader(
            desc=enc.desc, name=name, labels=labels or {},
            sort_and_sum_duplicates=bool(sort_and_sum_duplicates or enc.sort_and_sum_duplicates)))
        for comp, arr in enc.parts:
            data = memoryview(arr).cast("B")
            for off in range(0, len(data), CHUNK_BYTES):
                yield tensors_pb.UploadRequest(chunk=pb.Chunk(
                    component=comp, offset=off, data=bytes(data[off:off + CHUNK_BYTES])))

    return Call("tensors", "Upload", messages(), kind="stream_in", created=_created_tensor)


class _Chunks:
    """Collects a Download stream: the header, then each component's chunks
    in order of offset."""

    def __init__(self):
        self.header, self.parts = None, {}

    def add(self, msg):
        if msg.HasField("header"):
            self.header = msg.header
            return
        buf = self.parts.setdefault(msg.chunk.component, bytearray())
        if msg.chunk.offset != len(buf):
            raise RuntimeError("download of %s: chunk of %s at offset %d, expected %d" % (
                self.header.id if self.header else "?", msg.chunk.component, msg.chunk.offset,
                len(buf)))
        buf += msg.chunk.data


def download_raw(options, handle):
    """A held tensor as (TensorInfo, {component name: bytes})."""
    def finish(acc):
        return acc.header, {k: bytes(v) for k, v in acc.parts.items()}
    return Call("tensors", "Download", tensors_pb.DownloadRequest(tensor=ref(handle)),
                finish=finish, kind="stream_out", accumulator=_Chunks)


def download(options, handle, *, sparse=None, bf16=None, as_torch=None):
    """A held tensor as data: NumPy array (dense), SciPy sparse (CSR, CSC,
    COO, BSR; sparse="array" for the *_array types), NMTensor (N:M).
    bf16: see sparsed.Options; as_torch: True or a device for a torch tensor."""
    o = options.override(sparse=sparse, bf16=bf16)
    device = interop.torch_target(as_torch, ())

    def finish(acc):
        return interop.decode(acc.header.desc, acc.parts, o, device)
    return Call("tensors", "Download", tensors_pb.DownloadRequest(tensor=ref(handle)),
                finish=finish, kind="stream_out", accumulator=_Chunks)


def inspect(options, handle, spy=(0, 0)):
    """InspectResponse; spy=(height, width): the largest spy grid wanted."""
    return Call("tensors", "Inspect", tensors_pb.InspectRequest(
        tensor=ref(handle), spy_height=spy[0], spy_width=spy[1]))


def info(options, handle):
    """The TensorInfo of a held tensor."""
    return Call("tensors", "GetInfo", ref(handle))


def list(options, name_prefix=""):  # noqa: A001 - the client method's name
    """TensorInfo of every held tensor (of this tenant) whose name starts
    with name_prefix."""
    return Call("tensors", "List", tensors_pb.ListRequest(name_prefix=name_prefix),
                finish=lambda r: [t for t in r.tensors])


def delete(options, handle):
    """Deletes a held tensor."""
    return Call("tensors", "Delete", ref(handle), deletes=("tensor", handle))


# ---- Admin -----------------------------------------------------------------

def status(options):
    """StatusResponse: version, backend, devices, memory, the caller's tenant."""
    return Call("admin", "GetStatus", admin_pb.StatusRequest())


# ---- Compute ---------------------------------------------------------------

def spmm(options, a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, c=None,
         bias=None, relu=False, clamp_max=None, inline=False, name="", out_dtype=None, *,
         labels=None, dtype=None, as_torch=None):
    """C = epilogue(alpha op(A) op(B) + beta C), one of A, B sparse. Operands:
    handles or data (sent inline; dtype= applies to a and b; c and bias are
    f32 in the API and always sent so). out_dtype: "f32", "f16", "bf16" (or
    the pb enum) for the result, rounded to nearest even; None: the
    operands' dtype when both are f16 or both bf16, else f32. Returns the
    data when inline (a torch tensor when an operand is one, or as_torch),
    else the TensorInfo of the held result."""
    req = compute_pb.SpmmRequest(a=operand(a, options, dtype), b=operand(b, options, dtype),
                                 transpose_a=transpose_a, transpose_b=transpose_b, alpha=alpha,
                                 beta=beta, output=_output(inline, name, labels))
    if c is not None:
        req.c.CopyFrom(_f32_operand(c, options))
    if bias is not None:
        req.epilogue.bias.CopyFrom(_f32_operand(bias, options))
    req.epilogue.relu = relu
    if clamp_max is not None:
        req.epilogue.clamp_max = clamp_max
    if out_dtype is not None:
        req.out_dtype = enum(VALUE_DTYPES, out_dtype, "out_dtype")
    finish, created = _op_result(options, inline, (a, b), as_torch)
    return Call("compute", "Spmm", req, finish=finish, created=created)


def convert(options, source, to, block=None, nm=None, index_dtype=None, name="", inline=False, *,
            labels=None, dtype=None, as_torch=None):
    """The source in format `to` ("dense", "coo", "csr", "csc", "bsr", "nm"
    or a pb.Format); block=(R, C) or R for BSR, nm=(n, m) for NM,
    index_dtype "i32"/"i64" (or pb.I32/pb.I64). Returns the TensorInfo of
    the held result, or the data when inline."""
    req = compute_pb.ConvertRequest(source=operand(source, options, dtype),
                                    to=enum(FORMATS, to, "to"),
                                    output=_output(inline, name, labels))
    if block is not None:
        req.block.extend([block] if isinstance(block, int) else block)
    if nm is not None:
        req.n, req.m = nm
    if index_dtype is not None:
        req.index_dtype = enum(INDEX_DTYPES, index_dtype, "index_dtype")
    finish, created = _op_result(options, inline, (source,), as_torch)
    return Call("compute", "Convert", req, finish=finish, created=created)


def transpose(options, source, name="", inline=False, *, labels=None, dtype=None,
              as_torch=None):
    """The transpose, in the source's format."""
    req = compute_pb.TransposeRequest(source=operand(source, options, dtype),
                                      output=_output(inline, name, labels))
    finish, created = _op_result(options, inline, (source,), as_torch)
    return Call("compute", "Transpose", req, finish=finish, created=created)


def prune(options, source, sparsity=None, per_row=False, nm=None, block=None, name="",
          inline=False, *, labels=None, dtype=None, as_torch=None):
    """Magnitude (sparsity[, per_row]) -> CSR, nm=(n, m) -> NM, or
    block=(R, C) with sparsity -> BSR."""
    req = compute_pb.PruneRequest(source=operand(source, options, dtype),
                                  output=_output(inline, name, labels))
    if nm is not None:
        req.nm.n, req.nm.m = nm
    elif block is not None:
        req.block.block.extend([block] if isinstance(block, int) else block)
        req.block.sparsity = sparsity
    else:
        req.magnitude.sparsity = sparsity
        req.magnitude.per_row = per_row
    finish, created = _op_result(options, inline, (source,), as_torch)
    return Call("compute", "Prune", req, finish=finish, created=created)


# ---- Checkpoints: <data_dir>/checkpoints/NAME.safetensors on the daemon ------

def save_checkpoint(options, name, handles=()):
    """Saves the given tensors (handles; every held tensor and layer when none)."""
    return Call("checkpoints", "SaveCheckpoint", checkpoint_pb.SaveCheckpointRequest(
        name=name, tensors=[ref(h) for h in handles]))


def restore_checkpoint(options, name):
    """All or nothing; .restored (TensorInfo, new ids), .id_map (saved id ->
    new id, tensors and layers)."""
    def created(r):
        tensors = [scope.owned_of("tensor", t) for t in r.restored]
        ids = {t.id for t in r.restored}
        layers = [scope.Owned("layer", v, "") for v in r.id_map.values()
                  if v not in ids and v.startswith("l-")]
        return tensors + layers
    return Call("checkpoints", "RestoreCheckpoint",
                checkpoint_pb.RestoreCheckpointRequest(name=name), created=created)


def list_checkpoints(options):
    """CheckpointInfo of every checkpoint, by name."""
    return Call("checkpoints", "ListCheckpoints", checkpoint_pb.ListCheckpointsRequest(),
                finish=lambda r: [c for c in r.checkpoints])


def delete_checkpoint(options, name):
    """Deletes a checkpoint file."""
    return Call("checkpoints", "DeleteCheckpoint",
                checkpoint_pb.DeleteCheckpointRequest(name=name), finish=lambda r: None)


# ---- Training: layers whose weights and optimizer state stay in the daemon --

def create_layer(options, in_features, out_features, sparsity=0.0, name="", init="dense_prune",
                 bias=True, relu=False, seed=0, optimizer=None, pruning=None, rigl=None,
                 max_pending=0, format="csr", nm=None):  # noqa: A002 - the API's field name
    """A sparse linear layer Y = X Wᵀ + b (then ReLU when relu); returns its
    LayerInfo. nm: "2:4" or (n, m) for an N:M layer (format nm, sparsity
    1 - n/m, the pattern fixed; layer_parameter returns its weight as an
    NMTensor). init: "dense_prune" or "random_pattern"; optimizer: see
    optimizer_config; pruning: a GradualPruning or a dict of its fields
    (initial_sparsity, final_sparsity, start_step, interval, count); rigl:
    a Rigl or a dict (alpha, interval, end_step, tile_rows)."""
    req = training_pb.CreateLayerRequest(
        name=name, in_features=in_features, out_features=out_features,
        format=enum(FORMATS, format, "format"), sparsity=sparsity,
        init=enum(LAYER_INITS, init, "init"), bias=bias, relu=relu, seed=seed,
        max_pending=max_pending)
    if nm is not None:
        n, m = (int(v) for v in (nm.split(":") if isinstance(nm, str) else nm))
        req.format, req.nm_n, req.nm_m = FORMATS["nm"], n, m
    if optimizer is not None:
        req.optimizer.CopyFrom(optimizer_config(optimizer))
    if pruning is not None:
        req.pruning.CopyFrom(message(training_pb.GradualPruning, pruning))
    if rigl is not None:
        req.rigl.CopyFrom(message(training_pb.Rigl, rigl))
    return Call("training", "CreateLayer", req,
                created=lambda r: [scope.owned_of("layer", r)])


def get_layer(options, layer):
    """The LayerInfo of a layer."""
    return Call("training", "GetLayer", layer_ref(layer))


def list_layers(options):
    """LayerInfo of every layer, in creation order."""
    return Call("training", "ListLayers", training_pb.ListLayersRequest(),
                finish=lambda r: [x for x in r.layers])


def delete_layer(options, layer):
    """Deletes a layer."""
    return Call("training", "DeleteLayer", layer_ref(layer), finish=lambda r: None,
                deletes=("layer", layer))


def layer_forward(options, layer, x, call_id="", inline=True, name="", *, labels=None,
                  dtype=None, as_torch=None):
    """Y for X [batch, in_features] (data, or a held tensor's handle); with
    call_id the layer keeps what layer_backward(call_id) needs. Returns the
    data when inline, else the held result's TensorInfo."""
    req = training_pb.ForwardRequest(layer=layer_ref(layer), x=operand(x, options, dtype),
                                     call_id=call_id, output=_output(inline, name, labels))
    finish, created = _op_result(options, inline, (x,), as_torch)
    return Call("training", "Forward", req, finish=lambda r: finish(r.y),
                created=lambda r: created(r.y))


def layer_backward(options, layer, dy, call_id, want_dx=False, inline=True, name="", *,
                   labels=None, dtype=None, as_torch=None):
    """Accumulates the gradients for forward call `call_id` from dY [batch,
    out_features] (the gradient after the fused ReLU, if any); returns dX
    when want_dx (data when inline, else a TensorInfo), else None."""
    req = training_pb.BackwardRequest(layer=layer_ref(layer), dy=operand(dy, options, dtype),
                                      call_id=call_id, want_dx=want_dx,
                                      output=_output(inline, name, labels))
    finish, created = _op_result(options, inline, (dy,), as_torch)
    return Call("training", "Backward", req,
                finish=lambda r: finish(r.dx) if want_dx else None,
                created=lambda r: created(r.dx) if want_dx else [])


def forget_call(options, layer, call_id):
    """Drops what a forward call kept for its backward."""
    return Call("training", "ForgetCall", training_pb.ForgetCallRequest(
        layer=layer_ref(layer), call_id=call_id), finish=lambda r: None)


def layer_step(options, layer, grad_scale=1.0, optimizer=None):
    """Applies the optimizer to the accumulated gradients times grad_scale
    (then the pruning schedule and RigL where due); optimizer replaces the
    hyper-parameters first. Returns the StepResponse."""
    req = training_pb.StepRequest(layer=layer_ref(layer), grad_scale=grad_scale)
    if optimizer is not None:
        req.optimizer.CopyFrom(optimizer_config(optimizer))
    return Call("training", "Step", req)


def layer_parameter(options, layer, parameter="weight", *, as_torch=None):
    """"weight" (scipy CSR [out, in]), "bias", "weight_grad" or "bias_grad"
    (NumPy) of a layer."""
    finish, _ = _op_result(options, True, (), as_torch)
    return Call("training", "GetParameter", training_pb.GetParameterRequest(
        layer=layer_ref(layer), parameter=parameter), finish=finish)


def dense_gradient(options, layer, row_begin=0, row_end=-1, inline=True, name="", *,
                   labels=None, as_torch=None):
    """Rows [row_begin, row_end) (-1: to the end) of the dense gradient
    dYᵀ X of the layer's last backward batch."""
    req = training_pb.DenseGradientRequest(layer=layer_ref(layer), row_begin=row_begin,
                                           row_end=row_end, output=_output(inline, name, labels))
    finish, created = _op_result(options, inline, (), as_torch)
    return Call("training", "DenseGradient", req, finish=finish, created=created)


def sddmm(options, a, b, pattern, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0,
          c=None, inline=True, name="", *, labels=None, dtype=None, as_torch=None):
    """(alpha op(A) op(B)) at the stored positions of the CSR pattern, plus
    beta C (dense [nnz]). The proto promises a CSR with the pattern's
    structure; the daemon so far returns the f32 values [nnz] alone."""
    req = training_pb.SddmmRequest(a=operand(a, options, dtype), b=operand(b, options, dtype),
                                   transpose_a=transpose_a, transpose_b=transpose_b,
                                   pattern=operand(pattern, options), alpha=alpha, beta=beta,
                                   output=_output(inline, name, labels))
    if c is not None:
        req.c.CopyFrom(operand(c, options, dtype))
    finish, created = _op_result(options, inline, (a, b), as_torch)
    return Call("training_ops", "Sddmm", req, finish=finish, created=created)


def dense_matmul(options, a, b, transpose_a=False, transpose_b=False, row_begin=0, row_end=-1,
                 inline=True, name="", *, labels=None, dtype=None, as_torch=None):
    """Rows [row_begin, row_end) of op(A) op(B), dense f32 (row_begin 0 and
    row_end -1: all rows)."""
    req = training_pb.DenseMatmulRequest(a=operand(a, options, dtype),
                                         b=operand(b, options, dtype),
                                         transpose_a=transpose_a, transpose_b=transpose_b,
                                         row_begin=row_begin, row_end=row_end,
                                         output=_output(inline, name, labels))
    finish, created = _op_result(options, inline, (a, b), as_torch)
    return Call("training_ops", "DenseMatmul", req, finish=finish, created=created)


# The client methods, in the order the clients list them.
# ---- Graphs ----------------------------------------------------------------

class RunResult:
    """What Graphs.Run returned: `results` in the order of the request's
    outputs (TensorInfo for held ones, data for inline ones), `compute_ms`,
    `elapsed_ms`, `layer_steps` ({op name: the StepResponse of that
    layer_step}), and the RunResponse as `response` (per-op timings)."""

    def __init__(self, results, response):
        self.results, self.response = results, response
        self.compute_ms, self.elapsed_ms = response.compute_ms, response.elapsed_ms
        self.layer_steps = {s.op: s.step for s in response.layer_steps}

    def __iter__(self):
        return iter(self.results)

    def __getitem__(self, i):
        return self.results[i]

    def __len__(self):
        return len(self.results)


def _graph_json(x, options):
    """The graph dict with client objects made JSON: data (NumPy, SciPy,
    torch, NMTensor, ...) becomes {"inline": ...}, a TensorInfo {"ref": ...},
    a LayerInfo (layer_forward / layer_backward / layer_step "layer") its
    LayerRef {"id": ...}."""
    if isinstance(x, dict):
        return {k: _graph_json(v, options) for k, v in x.items()}
    if isinstance(x, (builtins.list, tuple)):  # `list` is the builder below
        return [_graph_json(v, options) for v in x]
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    if isinstance(x, pb.TensorInfo):
        return {"ref": {"id": x.id}}
    if isinstance(x, training_pb.LayerInfo):
        return {"id": x.id}
    return {"inline": json_format.MessageToDict(
        interop.inline_tensor(x, dtype=options.dtype, canonicalize=options.canonicalize),
        preserving_proto_field_name=True)}


def run(options, graph, *, sparse=None, bf16=None, as_torch=None):
    """Graphs.Run (docs/API.md, "Graphs"): a RunRequest, or a dict of its
    fields in protobuf's JSON mapping where an operand may also be given as
    data or a TensorInfo ({"a": numpy_array} for {"a": {"inline": ...}}).
    Returns a RunResult."""
    if isinstance(graph, graph_pb.RunRequest):
        req = graph
    else:
        req = json_format.ParseDict(_graph_json(graph, options), graph_pb.RunRequest())
    o = options.override(sparse=sparse, bf16=bf16)
    device = interop.torch_target(as_torch, ())

    def finish(resp):
        out = []
        for r in resp.results:
            if r.HasField("tensor"):
                out.append(r.tensor)
            else:
                parts = {c.name: c.data for c in r.inline.components}
                out.append(interop.decode(r.inline.desc, parts, o, device))
        return RunResult(out, resp)

    def created(resp):
        return [scope.owned_of("tensor", r.tensor) for r in resp.results if r.HasField("tensor")]
    return Call("graphs", "Run", req, finish=finish, created=created)


METHODS = (upload, download, download_raw, info, list, delete, inspect, status, spmm, convert,
           transpose, prune, save_checkpoint, restore_checkpoint, list_checkpoints,
           delete_checkpoint, create_layer, get_layer, list_layers, delete_layer, layer_forward,
           layer_backward, forget_call, layer_step, layer_parameter, dense_gradient, sddmm,
           dense_matmul, run)
