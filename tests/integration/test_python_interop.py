#!/usr/bin/env python3
"""The `sparsed` Python package (client/python/sparsed) against the real
daemon: NumPy / SciPy data in and out in its own dtypes, the dtype rules,
canonicalisation of unsorted input, typed errors, scopes, the asyncio client
and SpMM. References are the inputs themselves (compared bit for bit) or
NumPy float64 products; nothing here reuses the package's converters.

Test classes (ctest runs groups of them under their own names, see
CMakeLists.txt):
  OfflineTest        pure functions: dtype rules, bf16 rounding, N:M packing,
                     canonical-order checks, error mapping (no daemon)
  ScopeBookkeepingTest  failed deletions at the end of a scope (no daemon)
  RoundTripTest      dense/csr/csc/coo/bsr/nm x f32/f16/bf16 x i32/i64
  DtypePolicyTest    float64 and integers refused unless dtype= is given
  CanonicalizeTest   unsorted CSR / COO / BSR fixed with a warning
  ErrorsTest         NotFound, InvalidArgument, AlreadyExists, ...
  ScopeTest          client.scope() deletes exactly what the block created
  SpmmTest           SpMM through the package against float64 NumPy
  AsyncClientTest    sparsed.aio.AsyncClient gives what the sync client gives
  TorchTest          torch tensors in and out (skipped without torch)
"""

import argparse
import asyncio
import os
import sys
import unittest
import warnings

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, HERE)

import sparsed_client  # noqa: E402,F401 - makes the checkout's package importable
import sparsed  # noqa: E402
import sparsed.aio  # noqa: E402
from daemon_util import Daemon  # noqa: E402

try:
    import torch
except ImportError:
    torch = None
try:
    import ml_dtypes
except ImportError:
    ml_dtypes = None

ARGS = None
pb = sparsed.proto.pb
DTYPES = ("f32", "f16", "bf16")
INDEX = {"i32": np.int32, "i64": np.int64}
MADE_UP_ID = "t-0123456789abcdef"


# ---- independent references -------------------------------------------------

def bf16_round(x):
    """float32 -> bfloat16 bit patterns, round to nearest even (finite input),
    written out with integer arithmetic on the float32 bits."""
    u = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    lsb = (u >> 16) & 1
    return ((u + 0x7FFF + lsb) >> 16).astype(np.uint16)


def bf16_to_f64(bits):
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32).astype(
        np.float64)


def stored(values, dtype):
    """float32 values as the storage of `dtype` for the client: float32,
    float16, or bf16 (ml_dtypes.bfloat16 when present, else uint16 bits)."""
    values = np.asarray(values, np.float32)
    if dtype == "f32":
        return values
    if dtype == "f16":
        return values.astype(np.float16)
    bits = bf16_round(values)
    return bits.view(ml_dtypes.bfloat16) if ml_dtypes is not None else bits


def send(dtype):
    """Keywords that send stored(..., dtype) as dtype: bf16 bit patterns
    (no ml_dtypes) are sent as bf16 only when asked (dtype="bf16")."""
    return {"dtype": "bf16"} if dtype == "bf16" and ml_dtypes is None else {}


def bits(a):
    """The raw bit patterns of a 16- or 32-bit float array (exact comparison)."""
    a = np.asarray(a)
    return a.view(np.uint16) if a.dtype.itemsize == 2 else a.view(np.uint32)


def as_f64(values, dtype):
    if dtype == "bf16":
        return bf16_to_f64(bits(values))
    return np.asarray(values).astype(np.float64)


def with_arrays(m, data, index_dtype):
    """A copy of scipy `m` holding exactly `data` and index arrays of
    index_dtype (scipy's constructors would narrow int64 and upcast 16-bit
    values, so the arrays are set as attributes)."""
    m = m.copy()
    if m.format == "coo":
        m.row, m.col = m.row.astype(index_dtype), m.col.astype(index_dtype)
    else:
        m.indices, m.indptr = m.indices.astype(index_dtype), m.indptr.astype(index_dtype)
    m.data = data
    return m


def random_csr(rows, cols, density, seed):
    """Canonical CSR float32 with values that are exact in f16 and bf16
    (multiples of 1/8 below 16)."""
    rng = np.random.default_rng(seed)
    m = scipy.sparse.random(rows, cols, density, format="csr", dtype=np.float32,
                            random_state=rng)
    m.data = (rng.integers(-127, 128, m.nnz) / 8).astype(np.float32)
    m.data[m.data == 0] = 0.5
    m.sort_indices()
    return m


def nm_dense(rows, cols, n, m, seed):
    """A float32 matrix with at most n non-zeros in every group of m columns."""
    rng = np.random.default_rng(seed)
    a = np.zeros((rows, cols), np.float32)
    for r in range(rows):
        for g in range(cols // m):
            keep = rng.choice(m, size=rng.integers(0, n + 1), replace=False)
            a[r, g * m + keep] = (rng.integers(1, 64, len(keep)) / 4).astype(np.float32)
    return a


def in_format(csr, fmt):
    """The canonical scipy form of a CSR in fmt (bsr with 2 x 4 blocks)."""
    if fmt == "bsr":
        b = csr.tobsr(blocksize=(2, 4))
        b.sort_indices()
        return b
    return {"csr": csr, "csc": csr.tocsc(), "coo": csr.tocoo()}[fmt]


class DaemonCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.client = sparsed.Client(cls.daemon.address)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.daemon.stop() == 0

    def ids(self):
        return {t.id for t in self.client.list()}


# ---- no daemon ---------------------------------------------------------------

class OfflineTest(unittest.TestCase):
    def test_bf16_rounding_matches_the_reference(self):
        rng = np.random.default_rng(1)
        x = np.concatenate([rng.standard_normal(10000).astype(np.float32) * 1e3,
                            np.float32([1.0, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -0.0, 65504, 3e38])])
        np.testing.assert_array_equal(sparsed.dtypes.float32_to_bf16_bits(x), bf16_round(x))
        np.testing.assert_array_equal(
            sparsed.dtypes.bf16_bits_to_float32(bf16_round(x)).astype(np.float64),
            bf16_to_f64(bf16_round(x)))
        self.assertEqual(int(sparsed.dtypes.float32_to_bf16_bits(np.float32([1 + 2 ** -8]))[0]),
                         0x3F80)  # a tie rounds to even
        nan = sparsed.dtypes.float32_to_bf16_bits(np.float32([np.nan]))
        self.assertTrue(np.isnan(sparsed.dtypes.bf16_bits_to_float32(nan))[0])

    def test_other_dtypes_are_refused_with_their_name(self):
        for arr, name in ((np.ones((2, 2)), "float64"), (np.arange(4), "int64"),
                          (np.ones(3, np.uint16), "uint16"), (np.ones(2, bool), "bool")):
            with self.subTest(dtype=name):
                with self.assertRaises(TypeError) as cm:
                    sparsed.to_components(arr)
                self.assertIn(name, str(cm.exception))
                self.assertIn("dtype='f32'", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            sparsed.to_components(scipy.sparse.random(3, 3, 0.5, format="csr"))
        self.assertIn("float64", str(cm.exception))
        with self.assertRaises(TypeError):
            sparsed.to_components(np.ones(2, np.complex64), dtype="f32")
        self.assertIn("bfloat16 bit patterns", str(self._type_error(np.ones(3, np.uint16))))

    def _type_error(self, arr):
        try:
            sparsed.to_components(arr)
        except TypeError as e:
            return e
        self.fail("no TypeError")

    def test_explicit_dtype_converts_with_round_to_nearest_even(self):
        x = np.array([1.0, 1 + 2 ** -9, 2 ** -30, 3.14159], np.float64)
        enc = sparsed.to_components(x, dtype="f32")
        self.assertEqual(enc.desc.dtype, pb.F32)
        np.testing.assert_array_equal(enc.parts[0][1], x.astype(np.float32))
        enc = sparsed.to_components(x, dtype="f16")
        np.testing.assert_array_equal(bits(enc.parts[0][1]), bits(x.astype(np.float16)))
        enc = sparsed.to_components(x, dtype="bf16")
        self.assertEqual(enc.desc.dtype, pb.BF16)
        np.testing.assert_array_equal(enc.parts[0][1], bf16_round(x.astype(np.float32)))
        enc = sparsed.to_components(np.arange(3), dtype="f32")
        np.testing.assert_array_equal(enc.parts[0][1], [0, 1, 2])
        # uint16 with dtype="bf16" is taken as bit patterns, unchanged.
        raw = np.array([0x3F80, 0xC000], np.uint16)
        np.testing.assert_array_equal(sparsed.to_components(raw, dtype="bf16").parts[0][1], raw)

    def test_index_dtypes_are_kept_or_converted(self):
        m = random_csr(5, 6, 0.5, 2)
        for name, dt in INDEX.items():
            enc = sparsed.to_components(with_arrays(m, m.data, dt))
            self.assertEqual(enc.desc.index_dtype, pb.I32 if dt is np.int32 else pb.I64)
            self.assertTrue(all(a.dtype == dt for n, a in enc.parts if n != "values"))
        enc = sparsed.to_components(m, index_dtype="i64")
        self.assertEqual(enc.desc.index_dtype, pb.I64)

    def test_nm_packing_round_trips(self):
        for n, m in ((2, 4), (1, 4), (3, 8)):
            a = nm_dense(5, 72, n, m, n * m)
            t = sparsed.NMTensor.from_dense(a, n, m)
            np.testing.assert_array_equal(t.to_dense(), a)
            desc = t.desc(pb.F32)
            back = sparsed.NMTensor.from_components(desc, t.values.ravel(), t.meta())
            np.testing.assert_array_equal(back.positions, t.positions)
            np.testing.assert_array_equal(back.to_scipy().toarray(), a)
        # 2:4: 18 groups per row -> 3 words, the unused high nibbles zero.
        t = sparsed.NMTensor.from_dense(nm_dense(2, 72, 2, 4, 9), 2, 4)
        words = t.meta().view(np.uint32).reshape(2, 3)
        self.assertTrue(np.all(words[:, 2] >> 8 == 0))
        with self.assertRaises(ValueError):
            sparsed.NMTensor.from_dense(np.ones((1, 4), np.float32), 2, 4)

    def test_canonical_order_checks(self):
        c = sparsed.canonical
        self.assertTrue(c.is_compressed_canonical([0, 2, 3], [1, 4, 0]))
        self.assertFalse(c.is_compressed_canonical([0, 2, 3], [4, 1, 0]))
        self.assertFalse(c.is_compressed_canonical([0, 2, 3], [1, 1, 0]))
        self.assertTrue(c.is_compressed_canonical([0, 0, 3, 3], [0, 1, 2]))
        self.assertTrue(c.is_sorted_unique([0, 0, 1], [1, 2, 0]))
        self.assertFalse(c.is_sorted_unique([0, 0, 1], [2, 2, 0]))
        self.assertFalse(c.is_sorted_unique([1, 0], [0, 5]))

    def test_error_classes(self):
        e = sparsed.errors.from_rpc_error(_FakeRpcError(grpc.StatusCode.NOT_FOUND, "gone"))
        self.assertIsInstance(e, sparsed.NotFound)
        self.assertIsInstance(e, LookupError)
        self.assertIsInstance(e, grpc.RpcError)
        self.assertEqual((e.code(), e.details(), str(e)), (grpc.StatusCode.NOT_FOUND, "gone",
                                                           "gone"))
        for code, builtin in ((grpc.StatusCode.INVALID_ARGUMENT, ValueError),
                              (grpc.StatusCode.PERMISSION_DENIED, PermissionError),
                              (grpc.StatusCode.UNAUTHENTICATED, PermissionError),
                              (grpc.StatusCode.DEADLINE_EXCEEDED, TimeoutError),
                              (grpc.StatusCode.UNAVAILABLE, ConnectionError)):
            err = sparsed.errors.from_rpc_error(_FakeRpcError(code, "x"))
            self.assertIsInstance(err, builtin)
            self.assertIsInstance(err, sparsed.Error)
            self.assertEqual(err.code(), code)
        self.assertNotIsInstance(sparsed.ResourceExhausted("busy"), MemoryError)
        every = set(grpc.StatusCode) - {grpc.StatusCode.OK}
        self.assertEqual(set(sparsed.errors.BY_CODE), every)

    def test_options_are_checked(self):
        for bad in ({"sparse": "dict"}, {"bf16": "float64"}, {"dtype": "f64"},
                    {"canonicalize": "yes"}):
            with self.subTest(**bad):
                with self.assertRaises(ValueError):
                    sparsed.Options(**bad)
        self.assertEqual(sparsed.Options(dtype=np.float16).dtype, "f16")


class _DeadClient:
    """Stands in for a client whose deletes fail (the daemon went away)."""

    def delete(self, handle):
        raise sparsed.Unavailable("connection refused")

    delete_layer = delete


class ScopeBookkeepingTest(unittest.TestCase):
    def scope_owning(self, *ids):
        s = sparsed.client.SyncScope(_DeadClient())
        s._enter()
        sparsed.scope.track(s._client, [sparsed.scope.Owned("tensor", i, "") for i in ids])
        return s

    def test_failed_deletes_are_reported(self):
        s = self.scope_owning("t-1", "t-2")
        with self.assertRaises(sparsed.Unavailable) as cm:
            s.__exit__(None, None, None)
        self.assertIn("t-1", "".join(getattr(cm.exception, "__notes__", ["t-1"])))
        # An exception leaving the block stays the one raised, with notes.
        s = self.scope_owning("t-3")
        boom = RuntimeError("boom")
        self.assertFalse(s.__exit__(RuntimeError, boom, None))
        if sys.version_info >= (3, 11):
            self.assertIn("could not delete tensor t-3", boom.__notes__[0])


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code, details):
        self._c, self._d = code, details

    def code(self):
        return self._c

    def details(self):
        return self._d


# ---- round trips ---------------------------------------------------------------

class RoundTripTest(DaemonCase):
    def check_sparse(self, got, want, fmt, kind="matrix"):
        self.assertEqual(type(got).__name__, "%s_%s" % (fmt, kind))
        self.assertEqual(got.shape, want.shape)
        if fmt == "coo":
            pairs = (("row", got.row, want.row), ("col", got.col, want.col))
        else:
            pairs = (("indptr", got.indptr, want.indptr), ("indices", got.indices,
                                                          want.indices))
        for name, g, w in pairs:
            self.assertEqual(g.dtype, w.dtype, name)
            np.testing.assert_array_equal(g, w, name)
        self.assertEqual(got.data.shape, want.data.shape)
        np.testing.assert_array_equal(bits(got.data), bits(want.data))

    def download(self, info, dtype, **kw):
        """Downloads; bf16 as ml_dtypes when present, else bit patterns."""
        got = self.client.download(info, **kw)
        return got

    def test_dense_every_dtype(self):
        rng = np.random.default_rng(3)
        for shape in ((7, 5), (11,), (0, 3)):
            x = (rng.integers(-64, 64, shape) / 4).astype(np.float32)
            for dtype in DTYPES:
                with self.subTest(shape=shape, dtype=dtype):
                    a = stored(x, dtype)
                    info = self.client.upload(a, **send(dtype))
                    self.assertEqual(info.desc.dtype, sparsed.proto.VALUE_DTYPES[dtype])
                    got = self.client.download(info)
                    self.assertIsInstance(got, np.ndarray)
                    self.assertEqual((got.shape, got.dtype), (a.shape, a.dtype))
                    np.testing.assert_array_equal(bits(got), bits(a))
                    self.client.delete(info)

    def test_sparse_formats_dtypes_and_index_widths(self):
        base = random_csr(12, 16, 0.3, 4)
        for fmt in ("csr", "csc", "coo", "bsr"):
            for dtype in DTYPES:
                for idx_name, idx in INDEX.items():
                    with self.subTest(fmt=fmt, dtype=dtype, index=idx_name):
                        m = in_format(base, fmt)
                        want = with_arrays(m, stored(m.data, dtype), idx)
                        info = self.client.upload(want, **send(dtype))
                        self.assertEqual(info.desc.format, sparsed.proto.FORMATS[fmt])
                        self.assertEqual(info.desc.index_dtype, pb.I32 if idx is np.int32
                                         else pb.I64)
                        self.check_sparse(self.client.download(info), want, fmt)
                        self.check_sparse(self.client.download(info, sparse="array"), want,
                                          fmt, "array")
                        self.client.delete(info)

    def test_sparse_arrays_are_accepted(self):
        base = random_csr(6, 8, 0.4, 5)
        for cls in (scipy.sparse.csr_array, scipy.sparse.csc_array, scipy.sparse.coo_array):
            with self.subTest(cls=cls.__name__):
                a = cls(base)
                info = self.client.upload(a)
                got = self.client.download(info, sparse="array")
                self.assertIs(type(got), cls)
                np.testing.assert_array_equal(got.toarray(), base.toarray())

    def test_bf16_representations(self):
        x = np.float32([[1.5, 0, -2.25], [0, 3.0, 0.125]])
        raw = bf16_round(x)
        info = self.client.upload(raw, dtype="bf16")
        self.assertEqual(info.desc.dtype, pb.BF16)
        widened = self.client.download(info, bf16="float32")
        self.assertEqual(widened.dtype, np.float32)
        np.testing.assert_array_equal(widened, x)
        got_bits = self.client.download(info, bf16="bits")
        self.assertEqual(got_bits.dtype, np.uint16)
        np.testing.assert_array_equal(got_bits, raw)
        auto = self.client.download(info)
        if ml_dtypes is None:
            self.assertEqual(auto.dtype, np.uint16)
        else:
            self.assertEqual(auto.dtype, np.dtype(ml_dtypes.bfloat16))
        np.testing.assert_array_equal(bits(auto), raw)
        # From float32 with an explicit conversion: round to nearest even.
        y = np.float32([1 + 2 ** -8, 1 + 3 * 2 ** -8, -7.3])
        info = self.client.upload(y, dtype="bf16")
        np.testing.assert_array_equal(self.client.download(info, bf16="bits"), bf16_round(y))

    def test_nm_via_convert(self):
        for (n, m), dtype in [((2, 4), d) for d in DTYPES] + [((3, 8), "f32"), ((1, 4), "f16")]:
            with self.subTest(nm=(n, m), dtype=dtype):
                a = nm_dense(9, 32, n, m, 10 * n + m)
                csr = scipy.sparse.csr_matrix(a)
                src = self.client.upload(with_arrays(csr, stored(csr.data, dtype), np.int32),
                                         **send(dtype))
                held = self.client.convert(src, "nm", nm=(n, m))
                self.assertEqual((held.desc.format, held.desc.n, held.desc.m), (pb.NM, n, m))
                got = self.client.download(held)
                self.assertIsInstance(got, sparsed.NMTensor)
                self.assertEqual((got.shape, got.n, got.m), ((9, 32), n, m))
                np.testing.assert_array_equal(bits(got.to_dense()), bits(stored(a, dtype)))
                sp = got.to_scipy()  # the non-zero slots, in the stored dtype
                self.assertEqual(sp.dtype, got.values.dtype)
                dense = np.zeros(sp.shape)
                dense[sp.nonzero()] = as_f64(sp.data, dtype)
                np.testing.assert_array_equal(dense, a)
                # The NMTensor goes back up as N:M, unchanged.
                again = self.client.upload(got)
                self.assertEqual((again.desc.format, again.desc.n, again.desc.m), (pb.NM, n, m))
                back = self.client.download(again)
                np.testing.assert_array_equal(back.positions, got.positions)
                np.testing.assert_array_equal(bits(back.values), bits(got.values))
                # And inline results are NMTensors too.
                inl = self.client.convert(src, "nm", nm=(n, m), inline=True)
                np.testing.assert_array_equal(bits(inl.to_dense()), bits(stored(a, dtype)))
                for h in (src, held, again):
                    self.client.delete(h)

    def test_nm_tensor_made_here(self):
        a = nm_dense(4, 16, 2, 4, 11)
        info = self.client.upload(sparsed.NMTensor.from_dense(a, 2, 4))
        self.assertEqual(info.desc.format, pb.NM)
        np.testing.assert_array_equal(self.client.convert(info, "dense", inline=True), a)

    def test_bsr_with_partial_edge_blocks_comes_back_as_csr(self):
        a = random_csr(10, 12, 0.3, 6).toarray()
        held = self.client.convert(a, "bsr", block=(4, 8), index_dtype="i64")
        got = self.client.download(held)
        self.assertEqual(got.format, "csr")
        self.assertEqual(got.indices.dtype, np.int64)
        np.testing.assert_array_equal(got.toarray(), a)

    def test_dlpack_objects(self):
        class Exported:  # an object offering only the DLPack protocol
            def __init__(self, a):
                self._a = a

            def __dlpack__(self, stream=None):
                return self._a.__dlpack__()

            def __dlpack_device__(self):
                return self._a.__dlpack_device__()

        x = np.arange(12, dtype=np.float32).reshape(3, 4)
        info = self.client.upload(Exported(x))
        np.testing.assert_array_equal(self.client.download(info), x)


class DtypePolicyTest(DaemonCase):
    def test_float64_refused_unless_dtype_given(self):
        x = np.random.default_rng(1).standard_normal((4, 3))
        for fn in (lambda **kw: self.client.upload(x, **kw),
                   lambda **kw: self.client.spmm(scipy.sparse.eye(5, 4, dtype=np.float32,
                                                                  format="csr"), x,
                                                 inline=True, **kw)):
            with self.assertRaises(TypeError) as cm:
                fn()
            self.assertIn("float64", str(cm.exception))
            self.assertIn("dtype=", str(cm.exception))
        info = self.client.upload(x, dtype="f32")
        self.assertEqual(info.desc.dtype, pb.F32)
        np.testing.assert_array_equal(self.client.download(info), x.astype(np.float32))
        info = self.client.upload(x, dtype="f16")
        np.testing.assert_array_equal(bits(self.client.download(info)),
                                      bits(x.astype(np.float16)))
        s = scipy.sparse.random(5, 5, 0.5, format="csr", random_state=2)  # float64
        with self.assertRaises(TypeError):
            self.client.upload(s)
        self.assertEqual(self.client.upload(s, dtype="f32").desc.dtype, pb.F32)

    def test_client_default_dtype(self):
        with sparsed.Client(self.daemon.address, dtype="f32") as c:
            info = c.upload(np.arange(6).reshape(2, 3))
            self.assertEqual(info.desc.dtype, pb.F32)
            np.testing.assert_array_equal(c.download(info), [[0, 1, 2], [3, 4, 5]])


class CanonicalizeTest(DaemonCase):
    def unsorted_coo(self):
        row = np.array([3, 0, 1, 3, 0, 2, 1, 0])
        col = np.array([2, 1, 4, 2, 1, 0, 0, 3])
        val = np.array([1.5, 2, -3, 0.25, 4, 5, -6, 7], np.float32)
        return scipy.sparse.coo_matrix((val, (row, col)), shape=(4, 5))

    def unsorted_csr(self):
        return scipy.sparse.csr_matrix(
            (np.array([1, 2, 3, 4, 5, 6], np.float32), np.array([3, 1, 3, 0, 2, 1]),
             np.array([0, 3, 3, 6])), shape=(3, 4))

    def canonical_of(self, m):
        want = m.copy()
        want.sum_duplicates()
        return want

    def test_upload_sorts_and_sums_with_a_warning(self):
        for m in (self.unsorted_coo(), self.unsorted_csr()):
            with self.subTest(fmt=m.format):
                with self.assertWarns(sparsed.CanonicalizeWarning) as w:
                    info = self.client.upload(m)
                self.assertIn("canonicalize=False", str(w.warning))
                self.assertIn("sort_and_sum_duplicates", str(w.warning))
                self.assertEqual(w.filename, __file__)  # attributed to the caller
                want = self.canonical_of(m)
                got = self.client.download(info)
                self.assertEqual(got.format, m.format)
                self.assertEqual(got.nnz, want.nnz)
                if m.format == "coo":
                    # Row-major here; scipy's COO sum_duplicates orders by column.
                    self.assertTrue(sparsed.canonical.is_sorted_unique(got.row, got.col))
                    got, want = got.tocsr(), want.tocsr()
                np.testing.assert_array_equal(got.indptr, want.indptr)
                np.testing.assert_array_equal(got.indices, want.indices)
                np.testing.assert_array_equal(got.data, want.data)

    def test_canonicalize_true_is_silent_and_false_sends_as_is(self):
        m = self.unsorted_coo()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            info = self.client.upload(m, canonicalize=True)
        np.testing.assert_array_equal(self.client.download(info).toarray(), m.toarray())
        with self.assertRaises(sparsed.InvalidArgument):
            self.client.upload(m, canonicalize=False)

    def test_inline_operands_are_canonicalised_here(self):
        m = self.unsorted_coo()
        b = np.arange(10, dtype=np.float32).reshape(5, 2)
        with self.assertWarns(sparsed.CanonicalizeWarning) as w:
            y = self.client.spmm(m, b, inline=True)
        self.assertIn("before sending", str(w.warning))
        np.testing.assert_array_equal(y, m.toarray().astype(np.float64) @ b)
        with self.assertWarns(sparsed.CanonicalizeWarning):
            got = self.client.convert(self.unsorted_csr(), "csr", inline=True)
        want = self.canonical_of(self.unsorted_csr())
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)

    def test_16bit_duplicates_sum_like_the_daemon(self):
        m = self.unsorted_coo()
        half = with_arrays(m, m.data.astype(np.float16), np.int32)
        with self.assertWarns(sparsed.CanonicalizeWarning):
            held = self.client.upload(half)  # summed by the daemon
        with self.assertWarns(sparsed.CanonicalizeWarning):
            inline = self.client.convert(half, "coo", inline=True)  # summed here
        daemon = self.client.download(held)
        np.testing.assert_array_equal(bits(inline.data), bits(daemon.data))
        np.testing.assert_array_equal(inline.row, daemon.row)

    def test_unsorted_bsr_is_sorted_here(self):
        blocks = np.arange(1, 4 * 8 + 1, dtype=np.float32).reshape(4, 2, 4)
        # Block row 0 holds block columns 2, 0, 2 (unsorted, one repeated), row 1 holds 1.
        b = scipy.sparse.bsr_matrix((blocks, np.array([2, 0, 2, 1]), np.array([0, 3, 4])),
                                    shape=(4, 12))
        want = b.toarray()  # scipy sums the repeated block
        with self.assertWarns(sparsed.CanonicalizeWarning) as w:
            info = self.client.upload(b)
        self.assertIn("BSR", str(w.warning))
        got = self.client.download(info)
        self.assertEqual(got.format, "bsr")
        np.testing.assert_array_equal(got.indices, [0, 2, 1])
        np.testing.assert_array_equal(got.toarray(), want)


class ErrorsTest(DaemonCase):
    def test_not_found_for_a_made_up_id(self):
        for call in (lambda: self.client.info(MADE_UP_ID),
                     lambda: self.client.download(MADE_UP_ID),
                     lambda: self.client.delete(MADE_UP_ID),
                     lambda: self.client.spmm(MADE_UP_ID, np.ones((2, 2), np.float32))):
            with self.assertRaises(sparsed.NotFound) as cm:
                call()
            e = cm.exception
            self.assertIsInstance(e, LookupError)
            self.assertIsInstance(e, grpc.RpcError)
            self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
            self.assertEqual(str(e), e.details())
            self.assertIn(MADE_UP_ID, str(e))

    def test_invalid_argument_for_bad_shapes(self):
        a = self.client.upload(random_csr(4, 5, 0.5, 1))
        with self.assertRaises(sparsed.InvalidArgument) as cm:
            self.client.spmm(a, np.ones((6, 2), np.float32), inline=True)
        e = cm.exception
        self.assertIsInstance(e, ValueError)
        self.assertEqual(e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(str(e) and str(e) == e.details(), str(e))
        self.assertRegex(str(e), r"\b5\b.*\b6\b|\b6\b.*\b5\b")  # the daemon names both sizes
        with self.assertRaises(sparsed.InvalidArgument) as cm:
            self.client.convert(a, "nm", nm=(2, 4))
        self.assertIn("m = 4 does not divide", str(cm.exception))

    def test_other_codes(self):
        self.client.upload(np.ones(2, np.float32), name="taken")
        with self.assertRaises(sparsed.AlreadyExists):
            self.client.upload(np.ones(2, np.float32), name="taken")
        with self.assertRaises(sparsed.NotFound):
            self.client.restore_checkpoint("no-such-checkpoint")
        with self.assertRaises(sparsed.InvalidArgument):
            self.client.restore_checkpoint("../x")
        with sparsed.Client("127.0.0.1:1", timeout=5) as dead:
            with self.assertRaises(sparsed.Unavailable) as cm:
                dead.status()
            self.assertIsInstance(cm.exception, ConnectionError)

    def test_old_style_handlers_still_work(self):
        try:
            self.client.info(MADE_UP_ID)
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.NOT_FOUND)
        else:
            self.fail("no error")


class ScopeTest(DaemonCase):
    def test_deletes_exactly_what_the_block_created(self):
        c = self.client
        outside = c.upload(np.ones(3, np.float32))
        before = self.ids()
        with c.scope() as s:
            a = c.upload(random_csr(6, 5, 0.5, 1))
            y = c.spmm(a, np.ones((5, 2), np.float32))          # held result
            c.spmm(a, np.ones((5, 2), np.float32), inline=True)  # creates nothing
            conv = c.convert(a, "csc")
            kept = s.keep(c.transpose(a, name="kept"))
            gone = c.upload(np.ones(1, np.float32))
            c.delete(gone)  # deleted inside: not deleted twice
            self.assertEqual(self.ids(), before | {a.id, y.id, conv.id, kept.id})
            self.assertEqual({o.id for o in s.owned}, {a.id, y.id, conv.id})
        self.assertEqual(self.ids(), before | {kept.id})
        self.assertIn(outside.id, self.ids())
        c.delete(kept)

    def test_cleans_up_when_the_block_raises(self):
        c = self.client
        before = self.ids()
        with self.assertRaises(RuntimeError):
            with c.scope():
                a = c.upload(np.ones((2, 2), np.float32))
                c.convert(a, "coo")
                raise RuntimeError("boom")
        self.assertEqual(self.ids(), before)
        with self.assertRaises(sparsed.InvalidArgument):
            with c.scope():
                c.upload(np.ones((2, 2), np.float32))
                c.spmm(c.upload(random_csr(3, 3, 0.5, 2)), np.ones((4, 1), np.float32))
        self.assertEqual(self.ids(), before)

    def test_nested_scopes_and_keep(self):
        c = self.client
        before = self.ids()
        with c.scope() as outer:
            a = c.upload(np.ones(2, np.float32))
            with c.scope() as inner:
                b = c.upload(np.ones(2, np.float32))
                d = inner.keep(c.upload(np.ones(2, np.float32)))  # handed to `outer`
            self.assertEqual(self.ids(), before | {a.id, d.id})
            self.assertEqual({o.id for o in outer.owned}, {a.id, d.id})
            self.assertNotIn(b.id, self.ids())
        self.assertEqual(self.ids(), before)
        with self.assertRaises(KeyError):
            with c.scope() as s:
                s.keep(MADE_UP_ID)

    def test_layers_are_deleted_too(self):
        c = self.client
        layers = {x.id for x in c.list_layers()}
        with c.scope():
            layer = c.create_layer(4, 3, sparsity=0.5)
            y = c.layer_forward(layer, np.ones((2, 4), np.float32), inline=False)
            self.assertIn(layer.id, {x.id for x in c.list_layers()})
            self.assertIn(y.id, self.ids())
        self.assertEqual({x.id for x in c.list_layers()}, layers)
        self.assertNotIn(y.id, self.ids())

    def test_scopes_of_two_clients_are_separate(self):
        with sparsed.Client(self.daemon.address) as other:
            with self.client.scope():
                mine = self.client.upload(np.ones(2, np.float32))
                theirs = other.upload(np.ones(2, np.float32))
            self.assertNotIn(mine.id, self.ids())
            self.assertIn(theirs.id, self.ids())
            other.delete(theirs)


class SpmmTest(DaemonCase):
    def reference(self, a, b, ta=False, tb=False):
        dense = lambda x: x.toarray() if scipy.sparse.issparse(x) else np.asarray(x)  # noqa
        a, b = dense(a).astype(np.float64), dense(b).astype(np.float64)
        return (a.T if ta else a) @ (b.T if tb else b)

    def test_every_sparse_format_against_float64(self):
        rng = np.random.default_rng(9)
        a = scipy.sparse.random(40, 24, 0.2, format="csr", dtype=np.float32, random_state=rng)
        b = rng.standard_normal((24, 7)).astype(np.float32)
        want = self.reference(a, b)
        for fmt in ("csr", "csc", "coo", "bsr"):
            with self.subTest(fmt=fmt):
                m = in_format(a, fmt)
                y = self.client.spmm(m, b, inline=True)
                self.assertEqual((y.shape, y.dtype), ((40, 7), np.float32))
                np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
                held = self.client.spmm(self.client.upload(m), b)
                np.testing.assert_allclose(self.client.download(held), want, rtol=1e-5,
                                           atol=1e-5)
        nm = sparsed.NMTensor.from_dense(nm_dense(8, 24, 2, 4, 3), 2, 4)
        np.testing.assert_allclose(self.client.spmm(nm, b, inline=True),
                                   self.reference(nm.to_dense(), b), rtol=1e-5, atol=1e-5)

    def test_transposes_epilogue_and_dense_times_sparse(self):
        rng = np.random.default_rng(10)
        a = scipy.sparse.random(30, 20, 0.2, format="csr", dtype=np.float32, random_state=rng)
        x = rng.standard_normal((30, 4)).astype(np.float32)
        bias = rng.standard_normal(4).astype(np.float32)
        got = self.client.spmm(a, x, transpose_a=True, alpha=2.0, inline=True)
        np.testing.assert_allclose(got, 2 * self.reference(a, x, ta=True), rtol=1e-5, atol=1e-5)
        got = self.client.spmm(a, x.T.copy(), transpose_a=True, transpose_b=True, bias=bias,
                               relu=True, inline=True)
        want = np.maximum(self.reference(a, x, ta=True) + bias, 0)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        d = rng.standard_normal((5, 30)).astype(np.float32)
        np.testing.assert_allclose(self.client.spmm(d, a, inline=True), self.reference(d, a),
                                   rtol=1e-5, atol=1e-5)

    def test_16bit_operands(self):
        rng = np.random.default_rng(11)
        a = random_csr(16, 12, 0.3, 12)
        b = (rng.integers(-8, 8, (12, 3)) / 4).astype(np.float32)
        want = self.reference(a, b)  # exact in f16 and bf16: small dyadic values
        for dtype in ("f16", "bf16"):
            with self.subTest(dtype=dtype):
                sa = with_arrays(a, stored(a.data, dtype), np.int32)
                y = self.client.spmm(sa, stored(b, dtype), inline=True, **send(dtype))
                # The exact f32 result rounded once to the operands' 16-bit type.
                rounded = (want.astype(np.float16).astype(np.float64) if dtype == "f16"
                           else bf16_to_f64(bf16_round(want.astype(np.float32))))
                np.testing.assert_array_equal(as_f64(y, dtype), rounded)
                y = self.client.spmm(sa, stored(b, dtype), inline=True, out_dtype="f32",
                                     **send(dtype))
                self.assertEqual(y.dtype, np.float32)
                np.testing.assert_array_equal(y, want)


class AsyncClientTest(DaemonCase):
    def test_same_calls_same_results(self):
        c = self.client
        a = random_csr(20, 12, 0.3, 21)
        b = np.random.default_rng(2).standard_normal((12, 5)).astype(np.float32)

        async def run():
            async with sparsed.aio.AsyncClient(self.daemon.address) as ac:
                info = await ac.upload(a, name="async-a")
                out = {
                    "download": await ac.download(info),
                    "spmm": await ac.spmm(info, b, inline=True),
                    "bsr": await ac.convert("async-a", "bsr", block=(2, 4), inline=True),
                    "nm": await ac.prune(info, nm=(1, 4), inline=True),
                    "inspect": await ac.inspect(info),
                    "info": await ac.info("async-a"),
                    "listed": [t.id for t in await ac.list("async-")],
                }
                held = await ac.spmm(info, b)
                out["held"] = await ac.download(held)
                many = await asyncio.gather(*(ac.spmm(info, b * k, inline=True)
                                              for k in range(4)))
                out["many"] = many
                with self.assertRaises(sparsed.NotFound):
                    await ac.info(MADE_UP_ID)
                before = {t.id for t in await ac.list()}
                async with ac.scope() as s:
                    x = await ac.upload(np.ones((2, 3), np.float32))
                    await ac.convert(x, "coo")
                    kept = s.keep(await ac.upload(np.ones(3, np.float32)))
                out["after_scope"] = {t.id for t in await ac.list()} - before
                out["kept"] = kept.id
                with self.assertRaises(RuntimeError):
                    async with ac.scope():
                        await ac.upload(np.ones(3, np.float32))
                        raise RuntimeError("boom")
                out["after_raise"] = {t.id for t in await ac.list()} - before
                await ac.delete(kept)
                await ac.delete(held)
                out["id"] = info.id
                return out

        got = asyncio.run(run())
        info = c.info("async-a")
        self.assertEqual(got["id"], info.id)
        self.assertEqual(got["info"], info)
        self.assertEqual(got["listed"], [info.id])
        self.assertEqual((got["download"] != c.download(info)).nnz, 0)
        want = c.spmm(info, b, inline=True)
        np.testing.assert_array_equal(got["spmm"], want)
        np.testing.assert_array_equal(got["held"], want)
        for k, y in enumerate(got["many"]):
            np.testing.assert_array_equal(y, c.spmm(info, b * k, inline=True))
        np.testing.assert_array_equal(got["bsr"].toarray(),
                                      c.convert(info, "bsr", block=(2, 4), inline=True).toarray())
        sync_nm = c.prune(info, nm=(1, 4), inline=True)
        np.testing.assert_array_equal(got["nm"].to_dense(), sync_nm.to_dense())
        self.assertEqual(got["inspect"], c.inspect(info))
        self.assertEqual(got["after_scope"], {got["kept"]})
        self.assertEqual(got["after_raise"], {got["kept"]})
        self.assertNotIn(got["kept"], self.ids())
        np.testing.assert_allclose(want, a.toarray().astype(np.float64) @ b, rtol=1e-5,
                                   atol=1e-5)

    def test_token_and_tls_options_are_checked(self):
        with self.assertRaises(ValueError):
            sparsed.aio.AsyncClient("127.0.0.1:1", token="two words")
        with self.assertRaises(ValueError):
            sparsed.aio.AsyncClient("127.0.0.1:1", tls_server_name="x")


@unittest.skipUnless(torch is not None, "torch is not installed")
class TorchTest(DaemonCase):
    """Runs only where PyTorch is importable."""

    def test_dense_round_trip_keeps_dtype(self):
        for dt in (torch.float32, torch.float16, torch.bfloat16):
            with self.subTest(dtype=dt):
                x = (torch.arange(12, dtype=torch.float32).reshape(3, 4) / 4).to(dt)
                info = self.client.upload(x)
                got = self.client.download(info, as_torch=True)
                self.assertIsInstance(got, torch.Tensor)
                self.assertEqual(got.dtype, dt)
                self.assertTrue(torch.equal(got, x))
        with self.assertRaises(TypeError):
            self.client.upload(torch.ones(2, dtype=torch.float64))

    def test_sparse_layouts(self):
        d = torch.tensor([[0, 1.5, 0, 0], [2, 0, 0, -1], [0, 0, 0, 0], [0, 3, 0, 0]])
        for layout, make in (("csr", d.to_sparse_csr), ("coo", d.to_sparse),
                             ("bsr", lambda: d.to_sparse_bsr((2, 2)))):
            with self.subTest(layout=layout):
                t = make()
                info = self.client.upload(t)
                self.assertEqual(info.desc.format, sparsed.proto.FORMATS[layout])
                got = self.client.download(info, as_torch=True)
                self.assertTrue(torch.equal(got.to_dense(), d))
        y = self.client.spmm(d.to_sparse_csr(), torch.ones(4, 2), inline=True)
        self.assertIsInstance(y, torch.Tensor)
        self.assertTrue(torch.allclose(y, d @ torch.ones(4, 2)))

    def test_results_in_every_layout_and_index_width(self):
        d = torch.tensor([[0, 1.5, 0, 0], [2, 0, 0, -1], [0, 0, 0, 0], [0, 3, 0, 0]])
        csr = d.to_sparse_csr()
        self.assertEqual(self.client.upload(csr).desc.index_dtype, pb.I64)  # torch's default
        held = self.client.upload(csr)
        for to, layout, kw in (("csr", torch.sparse_csr, {}), ("csc", torch.sparse_csc, {}),
                               ("coo", torch.sparse_coo, {}),
                               ("bsr", torch.sparse_bsr, {"block": 2}),
                               ("dense", torch.strided, {})):
            with self.subTest(to=to):
                got = self.client.convert(held, to, inline=True, as_torch=True, **kw)
                self.assertEqual(got.layout, layout)
                self.assertTrue(torch.equal(got.to_dense(), d))
                back = self.client.download(self.client.upload(got), as_torch=True)
                self.assertEqual(back.layout, layout)
                self.assertTrue(torch.equal(back.to_dense(), d))
        # An operand in torch gives a torch result without as_torch.
        t = self.client.transpose(csr, inline=True)
        self.assertEqual(t.layout, torch.sparse_csr)
        self.assertTrue(torch.equal(t.to_dense(), d.T))
        # N:M results stay NMTensors on the CPU.
        nm = self.client.prune(torch.arange(16.).reshape(2, 8), nm=(2, 4), inline=True)
        self.assertIsInstance(nm, sparsed.NMTensor)

    def test_uncoalesced_coo_and_dtype_rules(self):
        i = torch.tensor([[1, 0, 1], [2, 1, 2]])
        t = torch.sparse_coo_tensor(i, torch.tensor([1.0, 2.0, 3.0]), (2, 3))
        with self.assertWarns(sparsed.CanonicalizeWarning):
            info = self.client.upload(t)
        self.assertTrue(torch.equal(self.client.download(info, as_torch=True).to_dense(),
                                    t.to_dense()))
        f64 = torch.ones(2, 3, dtype=torch.float64)
        with self.assertRaises(TypeError) as cm:
            self.client.upload(f64)
        self.assertIn("float64", str(cm.exception))
        got = self.client.download(self.client.upload(f64, dtype="bf16"), as_torch=True)
        self.assertEqual(got.dtype, torch.bfloat16)
        half = (torch.arange(6.).reshape(2, 3) / 3).half()
        y = self.client.spmm(half.to_sparse_csr(), torch.eye(3).half(), inline=True)
        self.assertEqual(y.dtype, torch.float16)
        self.assertTrue(torch.equal(y, half))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
