#!/usr/bin/env python3
"""sparsectl against the real daemon: put, ls, info, spmm, get, rm, status,
errors; results compared with scipy."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import scipy.io
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_util import Daemon, expected_backend  # noqa: E402

ARGS = None
ID = re.compile(r"t-[0-9a-f]{16}")


class SparsectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.tmp = tempfile.mkdtemp(prefix="sparsectl-test-")

    @classmethod
    def tearDownClass(cls):
        assert cls.daemon.stop() == 0

    def ctl(self, *args, ok=True, env_addr=False):
        env = dict(os.environ)
        cmd = [ARGS.sparsectl]
        if env_addr:
            env["SPARSED_ADDR"] = self.daemon.address
        else:
            cmd += ["--server", self.daemon.address]
        p = subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, "sparsectl %s failed:\n%s%s" % (args, p.stdout, p.stderr))
        return p

    def path(self, name):
        return os.path.join(self.tmp, name)

    def test_put_spmm_get_matches_scipy(self):
        mtx = os.path.join(ARGS.data, "bcsstk13.mtx")
        a = scipy.sparse.csr_matrix(scipy.io.mmread(mtx), dtype=np.float64)
        out = self.ctl("put", mtx, "--name", "A13").stdout
        self.assertRegex(out, ID)
        rng = np.random.default_rng(11)
        b = rng.standard_normal((a.shape[1], 8)).astype(np.float32)
        np.save(self.path("b.npy"), b)
        self.ctl("put", self.path("b.npy"), "--name", "B13", env_addr=True)
        bias = rng.standard_normal(8).astype(np.float32)
        np.save(self.path("bias.npy"), bias)

        ls = self.ctl("ls").stdout
        self.assertIn("A13", ls)
        self.assertIn("B13", ls)
        info = self.ctl("info", "A13").stdout
        self.assertIn(str(a.nnz), info)
        self.assertIn("csr", info.lower())

        self.ctl("spmm", "A13", "B13", "--bias", self.path("bias.npy"), "--relu",
                 "--clamp", "1e6", "-o", self.path("c.npy"))
        got = np.load(self.path("c.npy"))
        want = np.minimum(np.maximum(a @ b.astype(np.float64) + bias, 0), 1e6)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())

        # Held result by name, then downloaded as .mtx is not meaningful for
        # dense; fetch as .npy. Transposed A on a square matrix.
        self.ctl("spmm", "A13", "B13", "--transpose-a", "--name", "C13t")
        self.ctl("get", "C13t", "-o", self.path("ct.npy"))
        np.testing.assert_allclose(np.load(self.path("ct.npy")), a.T @ b, rtol=1e-4,
                                   atol=1e-4 * np.abs(a.T @ b).max())

        # The sparse matrix round-trips through get as .mtx and as .npy.
        self.ctl("get", "A13", "-o", self.path("a.mtx"))
        # The file holds each float32 as its shortest round-trip decimal, so
        # compare after parsing back to float32.
        back = scipy.sparse.csr_matrix(scipy.io.mmread(self.path("a.mtx"))).astype(np.float32)
        self.assertEqual(back.nnz, a.nnz)
        self.assertEqual(abs(back - a.astype(np.float32)).max(), 0)
        self.ctl("get", "A13", "-o", self.path("a.npy"))
        np.testing.assert_array_equal(np.load(self.path("a.npy")), a.toarray().astype(np.float32))

        for name in ("A13", "B13", "C13t"):
            self.ctl("rm", name)
        self.assertNotIn("A13", self.ctl("ls").stdout)

    def test_formats_on_put(self):
        mtx = os.path.join(ARGS.data, "zenios.mtx")
        for fmt in ("csr", "coo", "dense"):
            out = self.ctl("put", mtx, "--format", fmt, "--name", "z-" + fmt).stdout
            self.assertRegex(out, ID)
            self.assertIn(fmt, self.ctl("info", "z-" + fmt).stdout.lower())
            self.ctl("get", "z-" + fmt, "-o", self.path("z-%s.npy" % fmt))
            want = scipy.io.mmread(mtx).toarray().astype(np.float32)
            np.testing.assert_array_equal(np.load(self.path("z-%s.npy" % fmt)), want)
            self.ctl("rm", "z-" + fmt)

    def test_status(self):
        out = self.ctl("status").stdout
        self.assertIn("cpu", out)
        backend = re.search(r"^backend:\s+(\S+)$", out, re.M)
        self.assertIsNotNone(backend, out)
        if expected_backend() is not None:
            self.assertEqual(backend.group(1), expected_backend(), out)
        self.assertRegex(out, r"\[active\]", out)

    def test_errors_are_clear_and_nonzero(self):
        p = self.ctl("info", "no-such-name", ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("NOT_FOUND", p.stderr)
        p = self.ctl("put", self.path("missing.mtx"), ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("missing.mtx", p.stderr)
        bad = self.path("bad.mtx")
        with open(bad, "w") as f:
            f.write("%%MatrixMarket matrix coordinate real general\n3 3 1\n4 1 1.0\n")
        p = self.ctl("put", bad, ok=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.mtx:3:", p.stderr)  # file:line: message
        p = subprocess.run([ARGS.sparsectl, "--server", "127.0.0.1:1", "--timeout", "5", "ls"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UNAVAILABLE", p.stderr)
        for cmd in ([], ["put"], ["get"], ["ls"], ["info"], ["rm"], ["spmm"], ["status"]):
            h = subprocess.run([ARGS.sparsectl] + cmd + ["--help"], capture_output=True, text=True)
            self.assertEqual(h.returncode, 0, cmd)
            self.assertIn("Usage", h.stdout)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    p.add_argument("--data", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
