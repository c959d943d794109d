#!/usr/bin/env python3
"""Compute.Convert / Transpose / Prune and Tensors.Inspect through gRPC from
Python: results downloaded as raw components, decoded naively
(ops_reference.py) and compared with numpy/scipy; bad requests give the
precise status code naming the field, and the daemon keeps serving.

Test classes (ctest runs each under its own name, see CMakeLists.txt):
  ConvertTest        dense/COO/CSR pairs, transposes, index dtype, inline
  ConvertAllFormatsTest  every pair and transpose with CSC, BSR, N:M too
  PruneTest          magnitude (global, per row), n:m, block vs numpy
  InspectTest        statistics and spy grid vs numpy/scipy
  OpErrorsTest       malformed requests: codes, messages, daemon still up, metrics
"""

import argparse
import math
import os
import re
import sys
import unittest
import urllib.request

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, HERE)

import ops_reference as ref  # noqa: E402
import sparsed_client as sc  # noqa: E402
from daemon_util import Daemon  # noqa: E402

ARGS = None
pb = sc.pb
FORMAT_NUM = {"dense": 1, "coo": 2, "csr": 3, "csc": 4, "bsr": 5, "nm": 6}


def random_matrix(rows, cols, density, seed, empty_row=None, empty_col=None):
    """float32 rows x cols with about `density` non-zeros (no explicit zeros)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((rows, cols)).astype(np.float32)
    a[rng.random((rows, cols)) >= density] = 0
    if empty_row is not None:
        a[empty_row, :] = 0
    if empty_col is not None:
        a[:, empty_col] = 0
    return a


def nm_matrix(rows, cols, n, m, seed):
    """A matrix with at most n non-zeros in every group of m (some fewer)."""
    a = ref.prune_nm(random_matrix(rows, cols, 0.8, seed).astype(np.float64), n, m)
    a[1, :] = 0  # an empty row
    return a.astype(np.float32)


class DaemonCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.client = sc.Client(cls.daemon.address)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.daemon.stop() == 0

    def upload(self, dense, fmt, **kw):
        """Holds `dense` as dense/coo/csr (uploaded) or csc/bsr/nm (converted
        on the daemon from an uploaded CSR)."""
        if fmt == "dense":
            return self.client.upload(dense)
        if fmt in ("coo", "csr"):
            return self.client.upload(scipy.sparse.csr_matrix(dense).asformat(fmt))
        held = self.client.upload(scipy.sparse.csr_matrix(dense))
        return self.client.convert(held, fmt, **kw)

    def fetch(self, handle):
        """(desc, dense float64) of a held tensor, decoded from raw components."""
        info, parts = self.client.download_raw(handle)
        return info.desc, ref.decode_dense(info.desc, parts)

    def assert_code(self, code, fn, *needles):
        with self.assertRaises(grpc.RpcError) as err:
            fn()
        self.assertEqual(err.exception.code(), code, err.exception.details())
        for needle in needles:
            self.assertIn(needle, err.exception.details())
        return err.exception.details()


class ConvertTest(DaemonCase):
    FORMATS = ("dense", "coo", "csr")

    def check_convert(self, a, src_fmt, to, index_dtype=None):
        src = self.upload(a, src_fmt)
        out = self.client.convert(src, to, index_dtype=index_dtype)
        desc, got = self.fetch(out)
        self.assertEqual(desc.format, FORMAT_NUM[to])
        self.assertEqual(tuple(desc.shape), a.shape)
        np.testing.assert_array_equal(got, a.astype(np.float64))
        if to in ("coo", "csr", "csc"):
            self.assertEqual(desc.nnz, np.count_nonzero(a))
            self.assertEqual(desc.index_dtype, index_dtype or pb.I32)
        # The source is untouched and still held.
        _, back = self.fetch(src)
        np.testing.assert_array_equal(back, a.astype(np.float64))
        self.assertNotEqual(out.id, src.id)

    def test_every_pair_of_dense_coo_csr(self):
        cases = [random_matrix(37, 40, 0.2, 1, empty_row=5, empty_col=7),
                 np.zeros((0, 5), np.float32), np.zeros((5, 0), np.float32),
                 np.full((1, 1), 2.5, np.float32), np.zeros((4, 6), np.float32),
                 random_matrix(6, 9, 1.0, 2)]
        for a in cases:
            for src in self.FORMATS:
                for to in self.FORMATS:
                    with self.subTest(shape=a.shape, src=src, to=to):
                        self.check_convert(a, src, to)

    def test_index_dtype_i64_and_name(self):
        a = random_matrix(20, 30, 0.3, 3)
        for to in ("coo", "csr"):
            out = self.client.convert(self.client.upload(a), to, index_dtype=pb.I64,
                                      name="conv-i64-" + to)
            self.assertEqual(out.name, "conv-i64-" + to)
            self.assertEqual(out.desc.index_dtype, pb.I64)
            desc, got = self.fetch("conv-i64-" + to)
            self.assertEqual(len(self.client.download_raw(out)[1]["col_idx"]), 8 * desc.nnz)
            np.testing.assert_array_equal(got, a)

    def test_inline_source_and_result(self):
        a = random_matrix(12, 7, 0.4, 4)
        got = self.client.convert(scipy.sparse.coo_matrix(a), "csr", inline=True)
        self.assertEqual(got.format, "csr")
        np.testing.assert_array_equal(got.toarray(), a)
        got = self.client.convert(scipy.sparse.csr_matrix(a), "dense", inline=True)
        np.testing.assert_array_equal(got, a)

    def test_transpose_dense_coo_csr(self):
        for a in (random_matrix(23, 11, 0.3, 5, empty_row=0), np.zeros((0, 3), np.float32),
                  np.full((1, 1), -1.0, np.float32)):
            for fmt in self.FORMATS:
                with self.subTest(shape=a.shape, fmt=fmt):
                    out = self.client.transpose(self.upload(a, fmt), name="")
                    desc, got = self.fetch(out)
                    self.assertEqual(desc.format, FORMAT_NUM[fmt])
                    self.assertEqual(tuple(desc.shape), a.T.shape)
                    np.testing.assert_array_equal(got, a.T.astype(np.float64))


class ConvertAllFormatsTest(DaemonCase):
    """Needs the CSC/BSR/N:M kernels (kernels/src/format)."""
    PARAMS = {"dense": {}, "coo": {}, "csr": {}, "csc": {}, "bsr": {"block": (4, 8)},
              "nm": {"nm": (2, 4)}}

    def test_every_pair(self):
        # 37 rows: the last block row of 4 x 8 blocks is a padded edge block.
        a = nm_matrix(37, 40, 2, 4, 6)
        a[:, 9] = 0  # an empty column
        for src in self.PARAMS:
            held = self.upload(a, src, **self.PARAMS[src])
            for to, kw in self.PARAMS.items():
                with self.subTest(src=src, to=to):
                    desc, got = self.fetch(self.client.convert(held, to, **kw))
                    self.assertEqual(desc.format, FORMAT_NUM[to])
                    np.testing.assert_array_equal(got, a.astype(np.float64))
                    if to == "bsr":
                        self.assertEqual(list(desc.block), [4, 8])
                        blocks = {(r // 4, c // 8) for r, c in zip(*np.nonzero(a))}
                        self.assertEqual(desc.nnz, len(blocks))
                    if to == "nm":
                        self.assertEqual((desc.n, desc.m), (2, 4))
                        self.assertEqual(desc.nnz, 37 * 10 * 2)
                    if to in ("coo", "csr", "csc"):
                        self.assertEqual(desc.nnz, np.count_nonzero(a))

    def test_other_patterns_and_blocks(self):
        a = nm_matrix(9, 24, 3, 8, 7)
        for kw in ({"nm": (3, 8)}, {"nm": (3, 4)}):
            with self.subTest(**kw):
                desc, got = self.fetch(self.client.convert(self.client.upload(a), "nm", **kw))
                np.testing.assert_array_equal(got, a.astype(np.float64))
        for block in (3, (2, 5), (9, 24), (1, 1)):
            with self.subTest(block=block):
                desc, got = self.fetch(self.client.convert(self.client.upload(a), "bsr",
                                                           block=block, index_dtype=pb.I64))
                want = [block, block] if isinstance(block, int) else list(block)
                self.assertEqual(list(desc.block), want)
                self.assertEqual(desc.index_dtype, pb.I64)
                np.testing.assert_array_equal(got, a.astype(np.float64))

    def test_group_with_too_many_nonzeros_is_rejected(self):
        a = nm_matrix(5, 8, 2, 4, 8)
        a[3, 4:8] = [1, 2, 3, 0]
        self.assert_code(grpc.StatusCode.INVALID_ARGUMENT,
                         lambda: self.client.convert(self.client.upload(a), "nm", nm=(2, 4)))
        self.assertIn(self.client.status().backend, ("cpu", "cuda"))

    def test_transpose_csc_bsr_nm(self):
        a = random_matrix(12, 16, 0.3, 9)
        for fmt, kw in (("csc", {}), ("bsr", {"block": (4, 2)})):
            with self.subTest(fmt=fmt):
                desc, got = self.fetch(self.client.transpose(self.upload(a, fmt, **kw)))
                self.assertEqual(desc.format, FORMAT_NUM[fmt])
                np.testing.assert_array_equal(got, a.T.astype(np.float64))
                if fmt == "bsr":
                    self.assertEqual(list(desc.block), [2, 4])
        # N:M whose transpose is N:M as well: a diagonal.
        d = np.diag(np.arange(1, 9, dtype=np.float32))
        desc, got = self.fetch(self.client.transpose(self.upload(d, "nm", nm=(1, 4))))
        self.assertEqual(desc.format, FORMAT_NUM["nm"])
        np.testing.assert_array_equal(got, d.T)


class PruneTest(DaemonCase):
    """Needs the prune kernels (kernels/src/prune)."""

    def check(self, a, want_fmt, want, **kw):
        for src_fmt in ("dense", "csr"):
            with self.subTest(src=src_fmt, **kw):
                src = self.upload(a, src_fmt)
                desc, got = self.fetch(self.client.prune(src, **kw))
                self.assertEqual(desc.format, FORMAT_NUM[want_fmt])
                np.testing.assert_array_equal(got, want)
                _, back = self.fetch(src)
                np.testing.assert_array_equal(back, a.astype(np.float64))
        return desc

    def test_magnitude(self):
        a = random_matrix(30, 40, 0.9, 10, empty_row=3)
        a64 = a.astype(np.float64)
        for sparsity in (0.0, 0.7, 0.95, 1.0):
            want = ref.prune_magnitude(a64, sparsity)
            desc = self.check(a, "csr", want, sparsity=sparsity)
            self.assertEqual(desc.nnz, np.count_nonzero(want))
        want = ref.prune_magnitude(a64, 0.75, per_row=True)
        self.check(a, "csr", want, sparsity=0.75, per_row=True)
        # Ties in |w| keep the earlier row-major position.
        t = np.array([[1, -2, 2, 1], [-1, 2, 0, -2]], np.float32)
        self.check(t, "csr", ref.prune_magnitude(t.astype(np.float64), 0.5), sparsity=0.5)
        # Already sparser than asked: everything stays.
        s = random_matrix(10, 10, 0.1, 11)
        self.check(s, "csr", s.astype(np.float64), sparsity=0.5)

    def test_nm(self):
        a = random_matrix(13, 24, 0.8, 12, empty_row=2)
        for n, m in ((2, 4), (1, 4), (3, 8)):
            desc = self.check(a, "nm", ref.prune_nm(a.astype(np.float64), n, m), nm=(n, m))
            self.assertEqual((desc.n, desc.m, desc.nnz), (n, m, 13 * (24 // m) * n))
        t = np.array([[1, 1, 1, 1, 0, 0, 0, 5]], np.float32)
        self.check(t, "nm", ref.prune_nm(t.astype(np.float64), 2, 4), nm=(2, 4))

    def test_block(self):
        a = random_matrix(18, 21, 0.5, 13)  # 3 x 4 blocks leave edge blocks
        for block, sparsity in (((3, 4), 0.6), ((4, 4), 0.3), (5, 0.0), ((3, 4), 1.0)):
            br, bc = (block, block) if isinstance(block, int) else block
            want = ref.prune_block(a.astype(np.float64), br, bc, sparsity)
            desc = self.check(a, "bsr", want, block=block, sparsity=sparsity)
            self.assertEqual(list(desc.block), [br, bc])
            kept = {(r // br, c // bc) for r, c in zip(*np.nonzero(want))}
            self.assertEqual(desc.nnz, len(kept))


class InspectTest(DaemonCase):
    """Needs the inspect kernels (kernels/src/inspect)."""

    def check_stats(self, r, a, info):
        a64 = a.astype(np.float64)
        rows, cols = a.shape
        self.assertEqual(r.info.id, info.id)
        self.assertEqual(r.nonzeros, np.count_nonzero(a))
        self.assertAlmostEqual(r.density, np.count_nonzero(a) / (rows * cols), places=12)
        self.assertEqual(r.bytes, info.bytes)
        want = ref.row_stats(a64)
        rl = r.row_lengths
        self.assertEqual((rl.min, rl.max), (want["min"], want["max"]))
        self.assertAlmostEqual(rl.mean, want["mean"], places=9)
        self.assertAlmostEqual(rl.std, want["std"], places=9)
        self.assertEqual(list(rl.edges), want["edges"])
        self.assertEqual(list(rl.counts), want["counts"])
        # scipy's own view of the same numbers.
        s = scipy.sparse.csr_matrix(a)
        self.assertEqual(rl.max, int(np.diff(s.indptr).max()))
        self.assertAlmostEqual(rl.std, float(np.std(np.diff(s.indptr))), places=9)

    def test_statistics_per_format(self):
        a = random_matrix(37, 40, 0.15, 20, empty_row=4)
        a[7, :] = np.arange(1, 41)  # a full row
        for fmt in ("dense", "coo", "csr"):
            with self.subTest(fmt=fmt):
                info = self.upload(a, fmt)
                r = self.client.inspect(info)
                self.check_stats(r, a, info)
                self.assertEqual(r.stored, a.size if fmt == "dense" else np.count_nonzero(a))
                self.assertFalse(r.HasField("spy"))

    def test_statistics_bsr_nm(self):
        a = nm_matrix(37, 40, 2, 4, 21)
        info = self.upload(a, "bsr", block=(4, 8))
        r = self.client.inspect(info)
        self.check_stats(r, a, info)
        self.assertEqual(list(r.info.desc.block), [4, 8])
        self.assertEqual(r.stored, info.desc.nnz * 32)
        info = self.upload(a, "nm", nm=(2, 4))
        r = self.client.inspect(info)
        self.check_stats(r, a, info)
        self.assertEqual((r.info.desc.n, r.info.desc.m), (2, 4))
        self.assertEqual(r.stored, 37 * 10 * 2)

    def test_spy_grid(self):
        a = random_matrix(37, 40, 0.2, 22, empty_row=0)
        info = self.upload(a, "csr")
        for h, w in ((16, 16), (64, 64), (1, 1), (37, 7), (5, 1024)):
            with self.subTest(h=h, w=w):
                g = self.client.inspect(info, spy=(h, w)).spy
                self.assertEqual((g.cell_rows, g.cell_cols), (math.ceil(37 / h), math.ceil(40 / w)))
                self.assertEqual((g.height, g.width),
                                 (math.ceil(37 / g.cell_rows), math.ceil(40 / g.cell_cols)))
                want = ref.spy_counts(a != 0, g.cell_rows, g.cell_cols)
                np.testing.assert_array_equal(np.array(g.counts).reshape(g.height, g.width), want)

    def test_empty_and_tiny(self):
        for a in (np.zeros((4, 6), np.float32), np.full((1, 1), 3.0, np.float32)):
            with self.subTest(shape=a.shape):
                info = self.upload(a, "csr")
                r = self.client.inspect(info, spy=(8, 8))
                self.check_stats(r, a, info)
                self.assertEqual(list(r.spy.counts), list(ref.spy_counts(a != 0, 1, 1).ravel()))


class OpErrorsTest(DaemonCase):
    """Request checks in the daemon (server/op_requests.cc): no kernel needed."""

    def setUp(self):
        self.a = self.client.upload(scipy.sparse.csr_matrix(random_matrix(6, 10, 0.5, 30)))

    def convert_req(self, **kw):
        kw.setdefault("source", sc.compute_pb.Operand(ref=pb.TensorRef(id=self.a.id)))
        return lambda: self.client.compute.Convert(sc.compute_pb.ConvertRequest(**kw))

    def prune_req(self, **kw):
        kw.setdefault("source", sc.compute_pb.Operand(ref=pb.TensorRef(id=self.a.id)))
        return lambda: self.client.compute.Prune(sc.compute_pb.PruneRequest(**kw))

    def test_convert_errors(self):
        bad = grpc.StatusCode.INVALID_ARGUMENT
        self.assert_code(bad, self.convert_req(to=99), "to = 99")
        self.assert_code(bad, self.convert_req(), "to is missing")
        self.assert_code(bad, self.convert_req(to=pb.CSR, block=[2, 2]), "block", "to = CSR")
        self.assert_code(bad, self.convert_req(to=pb.BSR), "block is missing")
        self.assert_code(bad, self.convert_req(to=pb.BSR, block=[2, 0]), "block = [2, 0]")
        self.assert_code(bad, self.convert_req(to=pb.BSR, block=[1, 2, 3]), "block")
        self.assert_code(bad, self.convert_req(to=pb.BSR, block=[7, 2]), "larger than")
        self.assert_code(bad, self.convert_req(to=pb.NM, n=3, m=4), "m = 4 does not divide",
                         "10 columns")
        self.assert_code(bad, self.convert_req(to=pb.NM, n=4, m=4), "n:m = 4:4")
        self.assert_code(bad, self.convert_req(to=pb.NM, n=1, m=64), "n:m = 1:64")
        self.assert_code(bad, self.convert_req(to=pb.CSR, n=2, m=4), "n:m", "to = NM")
        self.assert_code(bad, self.convert_req(to=pb.CSR, index_dtype=pb.F32), "index_dtype = F32")
        self.assert_code(bad, self.convert_req(source=sc.compute_pb.Operand(), to=pb.CSR),
                         "source")
        vec = self.client.upload(np.ones(5, np.float32))
        self.assert_code(bad, self.convert_req(source=sc.compute_pb.Operand(
            ref=pb.TensorRef(id=vec.id)), to=pb.CSR), "2-D")
        nf = grpc.StatusCode.NOT_FOUND
        self.assert_code(nf, self.convert_req(source=sc.compute_pb.Operand(
            ref=pb.TensorRef(id="t-00000000deadbeef")), to=pb.CSR), "t-00000000deadbeef")
        self.assert_code(nf, lambda: self.client.transpose("no-such-tensor"), "no-such-tensor")
        self.client.convert(self.a, "csr", name="conv-taken")
        self.assert_code(grpc.StatusCode.ALREADY_EXISTS,
                         lambda: self.client.convert(self.a, "coo", name="conv-taken"))

    def test_prune_errors(self):
        bad = grpc.StatusCode.INVALID_ARGUMENT
        mp, nmp, bp = sc.compute_pb.MagnitudePrune, sc.compute_pb.NmPrune, sc.compute_pb.BlockPrune
        self.assert_code(bad, self.prune_req(), "mode is missing")
        self.assert_code(bad, self.prune_req(magnitude=mp(sparsity=1.5)),
                         "magnitude.sparsity = 1.5")
        self.assert_code(bad, self.prune_req(magnitude=mp(sparsity=-0.25)), "magnitude.sparsity")
        self.assert_code(bad, self.prune_req(magnitude=mp(sparsity=float("nan"))),
                         "magnitude.sparsity")
        self.assert_code(bad, self.prune_req(nm=nmp(n=3, m=4)), "nm.m = 4 does not divide")
        self.assert_code(bad, self.prune_req(nm=nmp(n=0, m=2)), "nm = 0:2")
        self.assert_code(bad, self.prune_req(block=bp(sparsity=0.5)), "block.block is missing")
        self.assert_code(bad, self.prune_req(block=bp(block=[0], sparsity=0.5)), "block.block")
        self.assert_code(bad, self.prune_req(block=bp(block=[2], sparsity=2)), "block.sparsity = 2")
        self.assert_code(grpc.StatusCode.NOT_FOUND,
                         lambda: self.client.prune("t-0000000000000000", sparsity=0.5))

    def test_inspect_errors(self):
        bad = grpc.StatusCode.INVALID_ARGUMENT
        self.assert_code(bad, lambda: self.client.inspect(self.a, spy=(5000, 10)),
                         "spy_height = 5000")
        self.assert_code(bad, lambda: self.client.inspect(self.a, spy=(10, -1)), "spy_width = -1")
        self.assert_code(bad, lambda: self.client.inspect(self.a, spy=(0, 10)), "both 0")
        self.assert_code(grpc.StatusCode.NOT_FOUND, lambda: self.client.inspect("missing-one"),
                         "missing-one")
        self.assert_code(bad, lambda: self.client.tensors.Inspect(sc.tensors_pb.InspectRequest()),
                         "tensor")

    def test_daemon_keeps_serving_and_counts_requests(self):
        for _ in range(2):
            with self.assertRaises(grpc.RpcError):
                self.convert_req(to=42)()
        out = self.client.convert(self.a, "coo")
        np.testing.assert_array_equal(self.fetch(out)[1], self.fetch(self.a)[1])
        self.client.transpose(self.a)
        self.assertIn(self.client.status().backend, ("cpu", "cuda"))
        with urllib.request.urlopen("http://%s/metrics" % self.daemon.metrics, timeout=10) as r:
            text = r.read().decode()

        def count(method, code):
            total = 0.0
            for labels, value in re.findall(r'^sparsed_requests_total\{([^}]*)\} (\S+)$', text,
                                            re.M):
                if 'method="%s"' % method in labels and 'code="%s"' % code in labels:
                    total += float(value)
            return total

        self.assertGreaterEqual(count("/sparsed.v1.Compute/Convert", "INVALID_ARGUMENT"), 2, text)
        self.assertGreaterEqual(count("/sparsed.v1.Compute/Convert", "OK"), 1, text)
        self.assertGreaterEqual(count("/sparsed.v1.Compute/Transpose", "OK"), 1, text)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
