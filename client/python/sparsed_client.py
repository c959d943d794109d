"""The historical single-module Python client, now a thin layer over the
`sparsed` package (client/python/sparsed; docs/PYTHON.md) for scripts and
tests that run from a source checkout:

    sys.path.insert(0, "client/python")
    import sparsed_client as sc
    c = sc.Client("127.0.0.1:50051")

Importing it makes the checkout's `sparsed` package importable with the
stubs CMake generated (target python_stubs) in BUILD/python/sparsed/v1,
found through $SPARSED_PYTHON_STUBS (ctest sets it; the directory BUILD/python)
or else ROOT/build/python. It writes nothing and needs no grpc_tools.
If `sparsed` was already imported (an installed package), that one is used.

Everything is re-exported from the package, with this module's historical
defaults (LEGACY): data of any real type is sent as f32 (the package
refuses other types unless dtype= asks), non-canonical sparse data is sent
as it is (the package sorts it with a warning), and bf16 values come back
widened to float32. New code should `import sparsed` instead.
"""

import atexit
import glob
import importlib.util
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO_DIR = os.path.join(ROOT, "proto")
PROTO_FILES = sorted(os.path.splitext(os.path.basename(p))[0]
                     for p in glob.glob(os.path.join(PROTO_DIR, "sparsed", "v1", "*.proto")))


def _stub_dir():
    """BUILD/python/sparsed/v1 of the checkout: from $SPARSED_PYTHON_STUBS
    (BUILD/python) when set, else ROOT/build/python."""
    env = os.environ.get("SPARSED_PYTHON_STUBS")
    root = env or os.path.join(ROOT, "build", "python")
    v1 = os.path.join(root, "sparsed", "v1")
    if not os.path.isfile(os.path.join(v1, "tensor_pb2.py")):
        raise ImportError(
            "sparsed_client: no generated stubs in %s (%s). Build them with `cmake --build "
            "BUILD --target python_stubs` (part of the default build), or install the package: "
            "pip install client/python" % (v1, "from $SPARSED_PYTHON_STUBS" if env
                                          else "the default build directory"))
    return v1


def _load_checkout_package():
    """Imports client/python/sparsed with sparsed.v1 spanning its own
    directory and the build tree's stubs; touches no sys.path entry."""
    pkg_dir = os.path.join(HERE, "sparsed")
    stubs = _stub_dir()
    loaded = []
    try:
        specs = []
        for name, init, search in (
                ("sparsed", os.path.join(pkg_dir, "__init__.py"), [pkg_dir]),
                ("sparsed.v1", os.path.join(pkg_dir, "v1", "__init__.py"),
                 [os.path.join(pkg_dir, "v1"), stubs])):
            spec = importlib.util.spec_from_file_location(name, init,
                                                          submodule_search_locations=search)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            loaded.append(name)
            specs.append((spec, module))
        (pkg_spec, pkg), (v1_spec, v1) = specs
        # sparsed.v1 first: the package's __init__ imports the stubs from it.
        v1_spec.loader.exec_module(v1)
        pkg.v1 = v1
        pkg_spec.loader.exec_module(pkg)
    except BaseException:
        for name in list(sys.modules):
            if name in loaded or name.startswith("sparsed."):
                del sys.modules[name]
        raise


if "sparsed" not in sys.modules:
    _load_checkout_package()

import sparsed  # noqa: E402
from sparsed import proto as _proto  # noqa: E402
from sparsed.calls import CHUNK_BYTES, ref, layer_ref, optimizer_config  # noqa: E402,F401
from sparsed.channel import make_channel  # noqa: E402,F401
from sparsed.interop import CanonicalizeWarning  # noqa: E402,F401
from sparsed.nm import NMTensor  # noqa: E402,F401

pb = _proto.pb
tensors_pb, tensors_grpc = _proto.tensors_pb, _proto.tensors_grpc
compute_pb, compute_grpc = _proto.compute_pb, _proto.compute_grpc
admin_pb, admin_grpc = _proto.admin_pb, _proto.admin_grpc
checkpoint_pb, checkpoint_grpc = _proto.checkpoint_pb, _proto.checkpoint_grpc
training_pb, training_grpc = _proto.training_pb, _proto.training_grpc
VALUE_DTYPES, INDEX_DTYPES, FORMATS = _proto.VALUE_DTYPES, _proto.INDEX_DTYPES, _proto.FORMATS
OPTIMIZERS, LAYER_INITS = _proto.OPTIMIZERS, _proto.LAYER_INITS
Error = sparsed.Error

LEGACY = sparsed.Options(dtype="f32", canonicalize=False, bf16="float32")


class Client(sparsed.Client):
    """sparsed.Client with the LEGACY defaults (see the module docstring);
    options= or the option keywords override them."""

    def __init__(self, *args, options=LEGACY, **kwargs):
        super().__init__(*args, options=options, **kwargs)


def to_components(m):
    """(TensorDesc, [(component name, array)]) of data, values sent as f32."""
    enc = sparsed.to_components(m, dtype=LEGACY.dtype, canonicalize=False)
    return enc.desc, enc.parts


def inline(m):
    """An InlineTensor of data, values sent as f32."""
    return sparsed.inline_tensor(m, dtype=LEGACY.dtype, canonicalize=False)


def from_components(desc, parts):
    """Data of a tensor (sparsed.from_components, bf16 widened to float32)."""
    return sparsed.from_components(desc, parts, bf16=LEGACY.bf16)


def from_inline(msg):
    return sparsed.from_inline(msg, bf16=LEGACY.bf16)


def generate_stubs(proto_dir=PROTO_DIR, names=PROTO_FILES, package="sparsed/v1"):
    """Generates Python modules for proto_dir/package/NAME.proto (needs
    grpc_tools) into a new private directory (tempfile.mkdtemp, removed at
    exit) and puts it first on sys.path. Returns the directory. For protos
    outside the sparsed API, e.g. the tests' health and reflection protos."""
    spec = importlib.util.spec_from_file_location("protogen", os.path.join(HERE, "protogen.py"))
    protogen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(protogen)
    out = tempfile.mkdtemp(prefix="sparsed-pystubs-")
    atexit.register(shutil.rmtree, out, True)
    protogen.generate(proto_dir, out, [os.path.join(proto_dir, package, n + ".proto")
                                      for n in names])
    if package:
        for d, _, _ in os.walk(os.path.join(out, package.split("/")[0])):
            open(os.path.join(d, "__init__.py"), "a").close()
    sys.path.insert(0, out)
    return out
