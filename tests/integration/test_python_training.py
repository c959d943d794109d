#!/usr/bin/env python3
"""The Python client's Training and TrainingOps methods against the real
daemon, checked with NumPy computations written here: a layer's forward,
backward (dX, accumulated gradients, dense gradient), an SGD step, the layer
listing and deletion, SDDMM and dense matmul tiles.
"""

import argparse
import os
import sys
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
TOL = dict(rtol=1e-5, atol=1e-5)


def positions(m):
    """(rows, cols) of a CSR's stored entries in storage order (explicit zeros too)."""
    return np.repeat(np.arange(m.shape[0]), np.diff(m.indptr)), m.indices


class TrainingClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.client = sc.Client(cls.daemon.address)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        assert cls.daemon.stop() == 0

    def test_layer_forward_backward_step(self):
        c = self.client
        rng = np.random.default_rng(7)
        info = c.create_layer(8, 5, sparsity=0.5, name="tiny", init="random_pattern", relu=True,
                              seed=3, optimizer={"kind": "sgd", "lr": 0.1})
        self.assertEqual((info.in_features, info.out_features, info.nnz), (8, 5, 20))
        self.assertTrue(info.relu and info.bias)
        self.assertEqual(c.get_layer("tiny").id, info.id)
        self.assertIn(info.id, [l.id for l in c.list_layers()])

        w = c.layer_parameter(info, "weight")
        self.assertTrue(scipy.sparse.issparse(w))
        self.assertEqual((w.shape, w.nnz), ((5, 8), 20))
        wd = w.toarray().astype(np.float64)
        mask = np.zeros(wd.shape)
        mask[positions(w)] = 1
        b = c.layer_parameter(info, "bias").astype(np.float64)
        self.assertEqual(b.shape, (5,))

        x = rng.standard_normal((6, 8)).astype(np.float32)
        y = c.layer_forward(info, x, call_id="c1")
        z = x.astype(np.float64) @ wd.T + b
        np.testing.assert_allclose(y, np.maximum(z, 0), **TOL)
        # Inference only: nothing kept.
        np.testing.assert_allclose(c.layer_forward("tiny", x), y, **TOL)
        self.assertEqual(c.get_layer(info).pending_calls, 1)

        dy = rng.standard_normal((6, 5)).astype(np.float32)
        dx = c.layer_backward(info, dy, "c1", want_dx=True)
        dz = dy * (z > 0)
        np.testing.assert_allclose(dx, dz @ wd, **TOL)
        dense = dz.T @ x
        np.testing.assert_allclose(c.dense_gradient(info), dense, **TOL)
        np.testing.assert_allclose(c.dense_gradient(info, 1, 3), dense[1:3], **TOL)
        rows, cols = positions(w)
        np.testing.assert_allclose(c.layer_parameter(info, "weight_grad").ravel(),
                                   dense[rows, cols], **TOL)
        np.testing.assert_allclose(c.layer_parameter(info, "bias_grad"), dz.sum(0), **TOL)
        # The call was consumed.
        with self.assertRaises(grpc.RpcError) as err:
            c.layer_backward(info, dy, "c1")
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)

        r = c.layer_step(info, grad_scale=0.5)
        self.assertEqual((r.step, r.nnz), (1, 20))
        w2 = c.layer_parameter(info, "weight")
        np.testing.assert_array_equal(w2.indices, w.indices)
        np.testing.assert_allclose(w2.toarray(), wd - 0.05 * dense * mask, **TOL)
        np.testing.assert_allclose(c.layer_parameter(info, "bias"), b - 0.05 * dz.sum(0), **TOL)

        c.layer_forward(info, x, call_id="c2")
        c.forget_call(info, "c2")
        self.assertEqual(c.get_layer(info).pending_calls, 0)

        c.delete_layer(info)
        self.assertNotIn(info.id, [l.id for l in c.list_layers()])
        with self.assertRaises(grpc.RpcError) as err:
            c.get_layer("tiny")
        self.assertEqual(err.exception.code(), grpc.StatusCode.NOT_FOUND)

    def sddmm_values(self, a, b, pattern, **kw):
        """The values of an SDDMM result in the pattern's storage order. The
        proto promises a CSR with the pattern's structure; the daemon so far
        answers the dense f32 [nnz] values alone: both are accepted."""
        got = self.client.sddmm(a, b, pattern, **kw)
        if scipy.sparse.issparse(got):
            np.testing.assert_array_equal(got.indptr, pattern.indptr)
            np.testing.assert_array_equal(got.indices, pattern.indices)
            return got.data
        self.assertEqual(got.shape, (pattern.nnz,))
        return got

    def test_nm_layers_keep_their_pattern(self):
        import sparsed
        c = self.client
        rng = np.random.default_rng(11)
        info = c.create_layer(32, 6, nm="2:4", name="nm24", seed=5,
                              optimizer={"kind": "adam", "lr": 0.01})
        self.assertEqual(info.nnz, 6 * 8 * 2)
        self.assertAlmostEqual(info.sparsity, 0.5)
        self.assertIn('"nm_n":2', info.config_json.replace(" ", ""))
        w = c.layer_parameter(info, "weight")
        self.assertIsInstance(w, sparsed.NMTensor)
        self.assertEqual((w.shape, w.n, w.m), ((6, 32), 2, 4))
        first = w.positions.copy()
        x = rng.standard_normal((9, 32)).astype(np.float32)
        for _ in range(3):
            wd = w.to_dense().astype(np.float64)
            b = c.layer_parameter(info, "bias").astype(np.float64)
            y = c.layer_forward(info, x, call_id="k")
            np.testing.assert_allclose(y, x.astype(np.float64) @ wd.T + b, rtol=1e-5, atol=1e-5)
            c.layer_backward(info, np.ones((9, 6), np.float32), "k")
            c.layer_step(info)
            w = c.layer_parameter(info, "weight")
            np.testing.assert_array_equal(w.positions, first)  # the pattern stays
            self.assertFalse(np.array_equal(w.to_dense(), wd))  # the values move
        with self.assertRaises(sparsed.InvalidArgument) as e:
            c.create_layer(30, 6, nm=(2, 4))
        self.assertIn("in_features = 30 is not a multiple of m = 4", str(e.exception))
        with self.assertRaises(sparsed.InvalidArgument) as e:
            c.create_layer(32, 6, nm="2:4", rigl={"alpha": 0.3})
        self.assertIn("rigl changes the pattern", str(e.exception))
        c.delete_layer(info)

    def test_sddmm_and_dense_matmul(self):
        c = self.client
        rng = np.random.default_rng(11)
        a = rng.standard_normal((7, 4)).astype(np.float32)
        bt = rng.standard_normal((9, 4)).astype(np.float32)
        dense = a.astype(np.float64) @ bt.T.astype(np.float64)
        pattern = scipy.sparse.random(7, 9, 0.3, format="csr", dtype=np.float32, random_state=3)
        rows, cols = positions(pattern)
        np.testing.assert_allclose(self.sddmm_values(a, bt, pattern, transpose_b=True),
                                   dense[rows, cols], **TOL)
        cvals = rng.standard_normal(pattern.nnz).astype(np.float32)
        np.testing.assert_allclose(
            self.sddmm_values(a, bt.T.copy(), pattern, alpha=2.0, beta=-1.0, c=cvals),
            2 * dense[rows, cols] - cvals, **TOL)

        np.testing.assert_allclose(c.dense_matmul(a, bt, transpose_b=True), dense, **TOL)
        np.testing.assert_allclose(c.dense_matmul(a.T.copy(), bt, transpose_a=True,
                                                  transpose_b=True, row_begin=2, row_end=5),
                                   dense[2:5], **TOL)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
