"""Builds the sparsed package; metadata is in pyproject.toml, the package list here.

The one custom step: build_py also generates the sparsed.v1 gRPC modules
from the .proto files with grpc_tools (Debian: python3-grpc-tools), writing
them into the build directory (never into the source tree), so the installed
package needs no grpc_tools at run time.

The .proto files are taken from $SPARSED_PROTO_DIR, else ../../proto (this
directory is client/python of a checkout). Generated modules already present
in sparsed/v1 (a source tree that ships them) are used when neither exists.
"""

import glob
import importlib.util
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def _proto_dir():
    d = os.environ.get("SPARSED_PROTO_DIR") or os.path.join(HERE, os.pardir, os.pardir, "proto")
    return os.path.abspath(d)


def _protogen():
    spec = importlib.util.spec_from_file_location("protogen", os.path.join(HERE, "protogen.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithStubs(build_py):
    """build_py, then protoc of proto/sparsed/v1/*.proto into build_lib."""

    def run(self):
        super().run()
        protos = sorted(glob.glob(os.path.join(_proto_dir(), "sparsed", "v1", "*.proto")))
        if not protos:
            shipped = glob.glob(os.path.join(HERE, "sparsed", "v1", "*_pb2.py"))
            if shipped:
                return  # build_py copied them with the package
            raise SystemExit("sparsed setup.py: no .proto files in %s/sparsed/v1; set "
                             "SPARSED_PROTO_DIR to the repository's proto directory"
                             % _proto_dir())
        written = _protogen().generate(_proto_dir(), self.build_lib, protos)
        self.announce("generated %d modules into %s" % (len(written), self.build_lib), level=2)


setup(packages=["sparsed", "sparsed.v1"], cmdclass={"build_py": BuildPyWithStubs})
