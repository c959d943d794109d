"""A small Python client for sparsed, generated from proto/sparsed/v1 at import.

Needs Debian's python3-grpcio, python3-grpc-tools, python3-numpy and
python3-scipy (run it with /usr/bin/python3). The stubs are generated with
grpc_tools.protoc into a cache directory keyed by the .proto contents, so the
client always matches the checkout it comes from.

    import sparsed_client as sc
    c = sc.Client("127.0.0.1:50051")
    a = c.upload(scipy.sparse.random(100, 50, 0.1, format="csr", dtype="f4"), name="A")
    y = c.spmm(a, np.ones((50, 8), "f4"), inline=True)    # -> numpy array
"""

import hashlib
import importlib
import os
import sys
import tempfile

import grpc
import numpy as np
import scipy.sparse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(ROOT, "proto")
PROTO_FILES = ["tensor", "tensors", "compute", "admin"]
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

_INDEX = {pb.I32: np.int32, pb.I64: np.int64, pb.DTYPE_UNSPECIFIED: np.int32}


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


def from_components(desc, parts):
    """Inverse of to_components: a scipy CSR/COO matrix or a numpy array."""
    shape = tuple(desc.shape)
    idx = _INDEX[desc.index_dtype]
    get = lambda name, dt: np.frombuffer(parts[name], dtype=dt)
    if desc.format == pb.DENSE:
        return get("values", "<f4").reshape(shape).copy()
    values = get("values", "<f4")
    if desc.format == pb.CSR:
        return scipy.sparse.csr_matrix((values, get("col_idx", idx), get("row_ptr", idx)), shape)
    if desc.format == pb.COO:
        return scipy.sparse.coo_matrix((values, (get("row_idx", idx), get("col_idx", idx))), shape)
    raise ValueError("unknown format %d" % desc.format)


def inline(m):
    desc, parts = to_components(m)
    return pb.InlineTensor(desc=desc, components=[
        pb.Component(name=n, data=a.tobytes()) for n, a in parts])


def from_inline(msg):
    return from_components(msg.desc, {c.name: c.data for c in msg.components})


def ref(handle):
    """A TensorRef from a TensorInfo, an id ('t-' + 16 hex) or a name."""
    if isinstance(handle, pb.TensorInfo):
        return pb.TensorRef(id=handle.id)
    if handle.startswith("t-") and len(handle) == 18:
        return pb.TensorRef(id=handle)
    return pb.TensorRef(name=handle)


class Client:
    def __init__(self, address, max_message_bytes=65 << 20):
        opts = [("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes)]
        self.channel = grpc.insecure_channel(address, options=opts)
        self.tensors = tensors_grpc.TensorsStub(self.channel)
        self.compute = compute_grpc.ComputeStub(self.channel)
        self.admin = admin_grpc.AdminStub(self.channel)

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
        header, parts = None, {}
        for msg in self.tensors.Download(tensors_pb.DownloadRequest(tensor=ref(handle))):
            if msg.HasField("header"):
                header = msg.header
            else:
                buf = parts.setdefault(msg.chunk.component, bytearray())
                if msg.chunk.offset != len(buf):
                    raise RuntimeError("chunk out of order")
                buf += msg.chunk.data
        return from_components(header.desc, parts)

    def spmm(self, a, b, transpose_a=False, transpose_b=False, alpha=1.0, beta=0.0, c=None,
             bias=None, relu=False, clamp_max=None, inline=False, name=""):
        """C = epilogue(alpha op(A) op(B) + beta C). Operands: TensorInfo, id,
        name, or data (scipy sparse / numpy) sent inline. Returns a numpy array
        when inline, else the TensorInfo of the held result."""
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
        result = self.compute.Spmm(req)
        return from_inline(result.inline) if inline else result.tensor

    def info(self, handle):
        return self.tensors.GetInfo(ref(handle))

    def list(self, name_prefix=""):
        return list(self.tensors.List(tensors_pb.ListRequest(name_prefix=name_prefix)).tensors)

    def delete(self, handle):
        return self.tensors.Delete(ref(handle))

    def status(self):
        return self.admin.GetStatus(admin_pb.StatusRequest())
