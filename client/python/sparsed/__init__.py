"""sparsed: the Python client of the sparsed daemon (a GPU daemon serving
sparse tensors over gRPC).

    import sparsed
    with sparsed.Client("127.0.0.1:50051") as c:
        a = c.upload(scipy_csr)                       # TensorInfo of the held tensor
        y = c.spmm(a, numpy_dense, inline=True)       # NumPy result
        with c.scope():                               # deletes what the block creates
            ...

Public API:
  Client, aio.AsyncClient       the blocking and the asyncio client
  Options                       how data is sent and returned (dtype, canonicalize, sparse, bf16)
  Error and its subclasses      typed daemon errors (sparsed.errors)
  NMTensor                      N:M structured tensors
  CanonicalizeWarning           non-canonical sparse data was sorted on the way
  to_components, from_components, inline_tensor, from_inline   data <-> tensors
  ref, layer_ref, optimizer_config                              handles and configs
  make_channel                  a raw gRPC channel with the client's TLS/token options
  dtypes.float32_to_bf16_bits, dtypes.bf16_bits_to_float32      bf16 without ml_dtypes
The generated API modules are sparsed.v1.*_pb2 (also as sparsed.proto.pb, ...).
See docs/PYTHON.md.
"""

from sparsed import dtypes
from sparsed.errors import (Error, Cancelled, Unknown, InvalidArgument, DeadlineExceeded,
                            NotFound, AlreadyExists, PermissionDenied, ResourceExhausted,
                            FailedPrecondition, Aborted, OutOfRange, Unimplemented, Internal,
                            Unavailable, DataLoss, Unauthenticated)
from sparsed.options import Options
from sparsed.nm import NMTensor
from sparsed.interop import (CanonicalizeWarning, to_components, from_components, inline_tensor,
                             from_inline)
from sparsed.calls import ref, layer_ref, optimizer_config
from sparsed.channel import make_channel
from sparsed.client import Client

__version__ = "0.1.0"


def __getattr__(name):
    # sparsed.aio imports grpc.aio; load it when first used.
    if name == "aio":
        import importlib
        return importlib.import_module("sparsed.aio")
    raise AttributeError("module 'sparsed' has no attribute %r" % name)


__all__ = ["Client", "Options", "NMTensor", "CanonicalizeWarning", "Error", "Cancelled",
           "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
           "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
           "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
           "Unauthenticated", "to_components", "from_components", "inline_tensor",
           "from_inline", "ref", "layer_ref", "optimizer_config", "make_channel", "dtypes"]
