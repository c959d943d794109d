#!/usr/bin/env python3
"""Generates Python protobuf/gRPC modules from .proto files with grpc_tools.

One job, three users:
  - setup.py, at install time, into the wheel's build directory;
  - client/CMakeLists.txt (target python_stubs), into BUILD/python for the
    checkout (the sparsed_client shim finds them there);
  - sparsed_client.generate_stubs, for the tests' extra protos (health,
    reflection), into a private temporary directory.

Needs grpc_tools (Debian: python3-grpc-tools) only while it runs; the modules
it writes need grpcio and protobuf alone.

    protogen.py --proto-dir proto --out OUT proto/sparsed/v1/*.proto
writes OUT/sparsed/v1/NAME_pb2.py and NAME_pb2_grpc.py for every NAME.proto,
after removing the *_pb2*.py files a previous run left in those directories
(so a deleted .proto leaves no stale module).
"""

import argparse
import glob
import os
import sys


def generate(proto_dir, out_dir, protos, clean=True):
    """Runs protoc on `protos` (paths under proto_dir) with -I proto_dir into
    out_dir. With clean, first removes *_pb2.py / *_pb2_grpc.py in the output
    directories the protos map to. Returns the list of generated files.
    Raises RuntimeError when protoc fails (its diagnostics go to stderr)."""
    from grpc_tools import protoc  # Debian: python3-grpc-tools; build time only

    proto_dir = os.path.abspath(proto_dir)
    rel = [os.path.relpath(os.path.abspath(p), proto_dir) for p in protos]
    for r in rel:
        if r.startswith(os.pardir):
            raise ValueError("%s is not under the proto directory %s" % (r, proto_dir))
    targets = sorted({os.path.join(out_dir, os.path.dirname(r)) for r in rel})
    for d in targets:
        os.makedirs(d, exist_ok=True)
        if clean:
            for stale in glob.glob(os.path.join(d, "*_pb2*.py")):
                os.remove(stale)
    # grpc_tools ships the well-known types (google/protobuf/*.proto) next to protoc.
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = ["protoc", "-I" + proto_dir]
    if os.path.isdir(well_known):
        args.append("-I" + well_known)
    args += ["--python_out=" + out_dir, "--grpc_python_out=" + out_dir]
    args += [os.path.join(proto_dir, r) for r in rel]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on %s" % ", ".join(rel))
    out = []
    for r in rel:
        base = os.path.join(out_dir, os.path.splitext(r)[0])
        out += [base + "_pb2.py", base + "_pb2_grpc.py"]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--proto-dir", required=True, help="the -I root (imports are relative to it)")
    p.add_argument("--out", required=True, help="output root (package dirs are made under it)")
    p.add_argument("--stamp", help="file to touch when done (for build systems)")
    p.add_argument("protos", nargs="+")
    args = p.parse_args(argv)
    generate(args.proto_dir, args.out, args.protos)
    if args.stamp:
        with open(args.stamp, "w"):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
