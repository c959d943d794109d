#!/usr/bin/env python3
"""Compute.Spmm out_dtype from Python and sparsectl against the real daemon:
16-bit inputs default to a 16-bit result, out_dtype= / --out-dtype is
honoured, bad values are INVALID_ARGUMENT naming out_dtype. References are
float64 numpy products rounded with numpy (f16) or by hand (bf16: round to
nearest even on the f32 bits); 16-bit results may differ by one unit in the
last place (the daemon rounds f32 results, numpy rounds the exact value).

Test classes (ctest runs each under its own name, see CMakeLists.txt):
  PythonOutDTypeTest    the Python client's spmm(out_dtype=...)
  SparsectlOutDTypeTest sparsectl spmm --out-dtype
"""

import argparse
import os
import subprocess
import sys
import tempfile
import unittest

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, HERE)

import sparsed_client as sc  # noqa: E402
from daemon_util import Daemon  # noqa: E402

ARGS = None
pb = sc.pb
compute_pb = sc.compute_pb


def bf16_bits(x):
    """float32 values rounded to bfloat16 (nearest even), as uint16 bits."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def f16_bits(x):
    return np.asarray(x, dtype=np.float64).astype(np.float16).view(np.uint16)


def ordered(bits):
    """uint16 sign-magnitude bits as integers in value order."""
    b = bits.astype(np.int32)
    return np.where(b & 0x8000, -(b & 0x7FFF), b & 0x7FFF)


def inline16(m, dtype):
    """An InlineTensor of a dense array or scipy CSR with `dtype` (F16/BF16) values."""
    t = sc.inline(m)
    vals = next(c for c in t.components if c.name == "values")
    f32 = np.frombuffer(vals.data, dtype="<f4")
    vals.data = (f32.astype("<f2").view("<u2") if dtype == pb.F16 else bf16_bits(f32)).tobytes()
    t.desc.dtype = dtype
    return t


def as_f32(m, dtype):
    """The exact values a 16-bit copy of m holds, as float64."""
    d = m.toarray() if scipy.sparse.issparse(m) else np.asarray(m)
    d = d.astype(np.float32)
    if dtype == pb.F16:
        return d.astype(np.float16).astype(np.float64)
    return (bf16_bits(d).astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def problem(seed, m=31, k=27, n=10):
    rng = np.random.default_rng(seed)
    a = scipy.sparse.random(m, k, density=0.3, format="csr", dtype=np.float32, random_state=rng)
    b = rng.standard_normal((k, n)).astype(np.float32)
    return a, b


class DaemonCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.client = sc.Client(cls.daemon.address)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.daemon.stop() == 0

    def assert_16bit(self, got, want, dtype):
        """got: a float16 array (F16) or float32 of bf16 values (BF16)."""
        if dtype == pb.F16:
            self.assertEqual(got.dtype, np.float16)
            g, w = got.view(np.uint16), f16_bits(want)
        else:
            self.assertEqual(got.dtype, np.float32)
            g = (got.view(np.uint32) >> 16).astype(np.uint16)
            self.assertTrue(np.array_equal(got.view(np.uint32) & 0xFFFF, np.zeros(got.shape)))
            w = bf16_bits(want.astype(np.float32))
        diff = np.abs(ordered(g) - ordered(w))
        self.assertLessEqual(int(diff.max()), 1, "max ulp difference %d" % diff.max())


class PythonOutDTypeTest(DaemonCase):
    def test_f32_inputs(self):
        a, b = problem(1)
        want = a.toarray().astype(np.float64) @ b.astype(np.float64)
        y = self.client.spmm(a, b, inline=True)
        self.assertEqual(y.dtype, np.float32)
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
        y = self.client.spmm(a, b, inline=True, out_dtype="f32")
        self.assertEqual(y.dtype, np.float32)
        self.assert_16bit(self.client.spmm(a, b, inline=True, out_dtype="f16"), want, pb.F16)
        self.assert_16bit(self.client.spmm(a, b, inline=True, out_dtype="bf16"), want, pb.BF16)
        # Held, then downloaded and decoded.
        for name, dtype in (("f16", pb.F16), ("bf16", pb.BF16)):
            info = self.client.spmm(a, b, out_dtype=name)
            self.assertEqual(info.desc.dtype, dtype)
            self.assertEqual(info.bytes, want.size * 2)
            self.assert_16bit(self.client.download(info), want, dtype)
            self.client.delete(info)

    def test_16bit_inputs_default_to_their_dtype(self):
        a, b = problem(2)
        for dtype in (pb.F16, pb.BF16):
            want = as_f32(a, dtype) @ as_f32(b, dtype)
            ia = self.client.tensors.Create(sc.tensors_pb.CreateRequest(tensor=inline16(a, dtype)))
            ib = self.client.tensors.Create(sc.tensors_pb.CreateRequest(tensor=inline16(b, dtype)))
            y = self.client.spmm(ia, ib, inline=True)  # out_dtype unset
            self.assert_16bit(y, want, dtype)
            y = self.client.spmm(ia, ib, inline=True, out_dtype="f32")
            self.assertEqual(y.dtype, np.float32)
            np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
            # Mixed 16-bit and f32 operands: f32.
            y = self.client.spmm(ia, b, inline=True)
            self.assertEqual(y.dtype, np.float32)
            np.testing.assert_allclose(y, as_f32(a, dtype) @ b.astype(np.float64),
                                       rtol=1e-5, atol=1e-5)

    def test_invalid_out_dtype(self):
        a, b = problem(3, 4, 5, 3)
        for bad in (pb.I32, pb.I64, 17):
            with self.assertRaises(grpc.RpcError) as cm:
                self.client.spmm(a, b, inline=True, out_dtype=bad)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("out_dtype = ", cm.exception.details())
        with self.assertRaises(ValueError):
            self.client.spmm(a, b, inline=True, out_dtype="f64")
        self.assertEqual(self.client.spmm(a, b, inline=True).shape, (4, 3))  # still serving


class SparsectlOutDTypeTest(DaemonCase):
    def ctl(self, *args, ok=True):
        p = subprocess.run([ARGS.sparsectl, "--server", self.daemon.address] + list(args),
                           capture_output=True, text=True, timeout=60)
        if ok:
            self.assertEqual(p.returncode, 0, "sparsectl %s:\n%s%s" % (args, p.stdout, p.stderr))
        return p

    def test_out_dtype_flag(self):
        a, b = problem(4)
        want = a.toarray().astype(np.float64) @ b.astype(np.float64)
        self.client.upload(a, name="oa")
        self.client.upload(b, name="ob")
        with tempfile.TemporaryDirectory() as tmp:
            for flag, dtype in (("f16", pb.F16), ("bf16", pb.BF16)):
                out = self.ctl("spmm", "oa", "ob", "--out-dtype", flag, "--name", "y_" + flag)
                self.assertIn("dense %s " % flag, out.stdout)  # the summary names the dtype
                info = self.client.info("y_" + flag)
                self.assertEqual(info.desc.dtype, dtype)
                self.assert_16bit(self.client.download(info), want, dtype)
                # -o writes f16 as f16 .npy, bf16 exactly widened to f32
                # (NumPy has no bfloat16).
                path = os.path.join(tmp, "y_%s.npy" % flag)
                self.ctl("spmm", "oa", "ob", "--out-dtype", flag, "-o", path)
                y = np.load(path)
                self.assertEqual(y.dtype, np.float16 if dtype == pb.F16 else np.float32)
                self.assert_16bit(y, want, dtype)
            self.ctl("spmm", "oa", "ob", "--out-dtype", "f32", "--name", "y_f32")
            self.assertEqual(self.client.info("y_f32").desc.dtype, pb.F32)
            self.ctl("spmm", "oa", "ob", "--name", "y_default")
            self.assertEqual(self.client.info("y_default").desc.dtype, pb.F32)
        p = self.ctl("spmm", "oa", "ob", "--out-dtype", "f64", ok=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--out-dtype", p.stderr)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
