"""The generated sparsed.v1 modules under short names, and the tables that
map the client's strings ("csr", "f16", "adam", ...) to their enum values.

Nothing here talks to the daemon.
"""

try:
    from sparsed.v1 import admin_pb2 as admin_pb
    from sparsed.v1 import admin_pb2_grpc as admin_grpc
    from sparsed.v1 import checkpoint_pb2 as checkpoint_pb
    from sparsed.v1 import checkpoint_pb2_grpc as checkpoint_grpc
    from sparsed.v1 import compute_pb2 as compute_pb
    from sparsed.v1 import compute_pb2_grpc as compute_grpc
    from sparsed.v1 import graph_pb2 as graph_pb
    from sparsed.v1 import graph_pb2_grpc as graph_grpc
    from sparsed.v1 import sessions_pb2 as sessions_pb
    from sparsed.v1 import sessions_pb2_grpc as sessions_grpc
    from sparsed.v1 import shared_memory_pb2 as shm_pb
    from sparsed.v1 import shared_memory_pb2_grpc as shm_grpc
    from sparsed.v1 import tensor_pb2 as pb
    from sparsed.v1 import tensors_pb2 as tensors_pb
    from sparsed.v1 import tensors_pb2_grpc as tensors_grpc
    from sparsed.v1 import training_pb2 as training_pb
    from sparsed.v1 import training_pb2_grpc as training_grpc
except ImportError as e:  # pragma: no cover - a broken installation
    raise ImportError(
        "sparsed: the generated modules sparsed.v1.*_pb2 are missing (%s). Install the "
        "package with pip (its build generates them), or in a source checkout build the "
        "python_stubs target and import through client/python/sparsed_client.py" % e) from e

__all__ = ["pb", "tensors_pb", "tensors_grpc", "compute_pb", "compute_grpc", "admin_pb",
           "admin_grpc", "checkpoint_pb", "checkpoint_grpc", "training_pb", "training_grpc",
           "sessions_pb", "sessions_grpc", "shm_pb", "shm_grpc", "graph_pb", "graph_grpc",
           "VALUE_DTYPES", "INDEX_DTYPES", "FORMATS", "OPTIMIZERS", "LAYER_INITS",
           "DTYPE_NAMES", "FORMAT_NAMES", "enum"]

VALUE_DTYPES = {"f32": pb.F32, "f16": pb.F16, "bf16": pb.BF16}
INDEX_DTYPES = {"i32": pb.I32, "i64": pb.I64}
FORMATS = {"dense": pb.DENSE, "coo": pb.COO, "csr": pb.CSR, "csc": pb.CSC, "bsr": pb.BSR,
           "nm": pb.NM}
OPTIMIZERS = {"sgd": training_pb.SGD, "adam": training_pb.ADAM, "adamw": training_pb.ADAMW}
LAYER_INITS = {"dense_prune": training_pb.DENSE_PRUNE,
               "random_pattern": training_pb.RANDOM_PATTERN}

DTYPE_NAMES = {v: k for k, v in {**VALUE_DTYPES, **INDEX_DTYPES}.items()}
FORMAT_NAMES = {v: k for k, v in FORMATS.items()}


def enum(table, value, what):
    """value as an enum number: a name from `table` (any case), or a number
    (a pb enum constant), passed on as it is so that the daemon judges it.
    ValueError for an unknown name or another type, naming `what` and the
    choices."""
    if isinstance(value, str):
        key = value.lower()
        if key in table:
            return table[key]
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("%s = %r is not one of %s" % (what, value, ", ".join(table)))
