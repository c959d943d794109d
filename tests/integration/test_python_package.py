#!/usr/bin/env python3
"""The `sparsed` Python package installs and works outside the checkout:
client/python and proto/ are copied into a temporary tree laid out like a
checkout, pip installs it (offline, --no-build-isolation) into a fresh venv
made with --system-site-packages (Debian's grpcio, protobuf, numpy, scipy),
and a script run by the venv's python in isolated mode (-I: no PYTHONPATH,
no script or working directory on sys.path), from a directory outside the
repository, imports sparsed from the venv and round-trips tensors through a
daemon started here, with the sync and the asyncio client, while grpc_tools
cannot be imported (it is needed only to build).

Skipped when python3-venv (ensurepip) is not installed.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from daemon_util import Daemon  # noqa: E402

ARGS = None

# Run by the venv's python with -I from outside the repository.
SCRIPT = r"""
import asyncio, importlib.abc, json, os, sys
address, venv, forbidden = sys.argv[1], os.path.realpath(sys.argv[2]), sys.argv[3:]


class NoBuildTools(importlib.abc.MetaPathFinder):
    # As if grpc_tools (and the build's protogen) were not installed.
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("grpc_tools", "protogen"):
            raise ImportError("blocked: %s is a build-time tool" % name)
        return None


sys.meta_path.insert(0, NoBuildTools())
import numpy as np, scipy.sparse
import sparsed, sparsed.aio, sparsed.v1.tensor_pb2 as tensor_pb2

report = {"sparsed": sparsed.__file__, "stubs": tensor_pb2.__file__, "sys_path": sys.path}
a = scipy.sparse.random(30, 20, 0.2, format="csr", dtype=np.float32, random_state=1)
b = np.random.default_rng(2).standard_normal((20, 4)).astype(np.float32)
with sparsed.Client(address) as c:
    with c.scope():
        info = c.upload(a, name="pkg-a")
        back = c.download(info)
        y = c.spmm(info, b, inline=True)
    report["equal"] = bool((back != a).nnz == 0 and back.dtype == np.float32)
    report["spmm_err"] = float(np.abs(y - a.toarray().astype(np.float64) @ b).max())
    report["left"] = [t.name for t in c.list()]
    try:
        c.info("t-0123456789abcdef")
    except sparsed.NotFound as e:
        report["not_found"] = str(e)

async def run():
    async with sparsed.aio.AsyncClient(address) as ac:
        info = await ac.upload(a.tocoo())
        got = await ac.download(info)
        await ac.delete(info)
        return bool((got != a).nnz == 0)

report["async_equal"] = asyncio.run(run())
report["forbidden_on_path"] = [p for p in sys.path for f in forbidden
                               if os.path.realpath(p or ".").startswith(f)]
print("REPORT " + json.dumps(report))
"""


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kw)


class PackageInstallTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sparsed-pkgtest-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # Nothing from the checkout or the build tree may leak into the venv.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("PYTHONPATH", "SPARSED_PYTHON_STUBS", "PYTHONHOME")}
        self.env.update(PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
                        PIP_NO_INPUT="1")

    def make_checkout(self):
        """tmp/src/{client/python, proto}: the package sources as a checkout has them."""
        src = os.path.join(self.tmp, "src")
        ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "*.pyc",
                                        "*_pb2.py", "*_pb2_grpc.py")
        shutil.copytree(os.path.join(ROOT, "client", "python"),
                        os.path.join(src, "client", "python"), ignore=ignore)
        shutil.copytree(os.path.join(ROOT, "proto"), os.path.join(src, "proto"),
                        ignore=shutil.ignore_patterns("*.cc", "*.h", "CMakeLists.txt"))
        return os.path.join(src, "client", "python")

    def make_venv(self):
        venv = os.path.join(self.tmp, "venv")
        r = run([sys.executable, "-m", "venv", "--system-site-packages", venv], env=self.env)
        if r.returncode != 0:
            if "ensurepip" in r.stdout:  # Debian without python3-venv
                self.skipTest("python3-venv is not installed (python3 -m venv failed: %s)"
                              % r.stdout.strip().splitlines()[-1])
            self.fail("python3 -m venv failed:\n" + r.stdout)
        return venv

    def test_install_into_a_venv_and_use_it_from_outside_the_repository(self):
        venv = self.make_venv()
        pkg = self.make_checkout()
        py = os.path.join(venv, "bin", "python")
        r = run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index", pkg],
                env=self.env, cwd=self.tmp)
        self.assertEqual(r.returncode, 0, "pip install failed:\n" + r.stdout)
        # The stubs went into the installed package, not into the source tree.
        self.assertEqual(sorted(os.listdir(os.path.join(pkg, "sparsed", "v1"))),
                         ["__init__.py"])

        elsewhere = os.path.join(self.tmp, "elsewhere")
        os.mkdir(elsewhere)
        with Daemon(ARGS.sparsed) as d:
            r = run([py, "-I", "-c", SCRIPT, d.address, venv, os.path.realpath(ROOT),
                     os.path.realpath(os.path.join(self.tmp, "src"))],
                    env=self.env, cwd=elsewhere)
            self.assertEqual(r.returncode, 0, r.stdout)
            self.assertEqual(d.stop(), 0)
        lines = [x for x in r.stdout.splitlines() if x.startswith("REPORT ")]
        self.assertEqual(len(lines), 1, r.stdout)
        report = json.loads(lines[0][len("REPORT "):])
        site = os.path.realpath(venv)
        for key in ("sparsed", "stubs"):
            self.assertTrue(os.path.realpath(report[key]).startswith(site + os.sep),
                            "%s imported from %s, not from the venv %s" % (key, report[key],
                                                                          site))
        self.assertEqual(report["forbidden_on_path"], [], report["sys_path"])
        self.assertTrue(report["equal"], report)
        self.assertLess(report["spmm_err"], 1e-4)
        self.assertEqual(report["left"], [])  # the scope deleted what it made
        self.assertIn("t-0123456789abcdef", report["not_found"])
        self.assertTrue(report["async_equal"], report)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
