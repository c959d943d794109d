#!/usr/bin/env python3
"""The Training and TrainingOps services of the real daemon through the raw
generated stubs: layers' forward, backward, SGD steps and RigL against numpy
computed from the weights downloaded with GetParameter; SDDMM and dense
matmul tiles against numpy; errors by code and field; layers across a
checkpoint and a restart with --restore.

Test classes (ctest runs each under its own name, see CMakeLists.txt):
  LayerTest        create/get/list/delete, forward, backward, step, RigL
  LayerErrorsTest  bad configs, unknown layers and calls, the pending bound
  TrainingOpsTest  Sddmm and DenseMatmul
  LayerCheckpointTest  train, save, restart with --restore, identical results
  LayerCliTest     sparsectl layer create|ls|info|forward|step|rm, sddmm
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import grpc
import numpy as np
import scipy.sparse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from daemon_util import Daemon  # noqa: E402
from training_stubs import Trainer, dense, sc, training_pb  # noqa: E402

ARGS = None
Operand, Output = sc.compute_pb.Operand, sc.compute_pb.Output


def rand(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def positions(w):
    """(row, col) of every stored entry of a CSR matrix, in storage order
    (stored zeros included: a grown weight starts at zero)."""
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    return rows, w.indices.astype(np.int64)


def assert_close(test, got, want, what, rtol=1e-4, atol=1e-5):
    got, want = dense(got), dense(want)
    test.assertEqual(got.shape, want.shape, what)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=what)


class DaemonCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed)
        cls.client = sc.Client(cls.daemon.address)
        cls.t = Trainer(cls.client)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        code = cls.daemon.stop()
        cls.daemon.__exit__(None, None, None)
        assert code == 0, "daemon exit code %d" % code

    def expect_error(self, code, fn, *words):
        with self.assertRaises(grpc.RpcError) as cm:
            fn()
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for w in words:
            self.assertIn(w, cm.exception.details())
        return cm.exception.details()


class LayerTest(DaemonCase):
    def make(self, name, n_in=12, n_out=7, **kw):
        kw.setdefault("sparsity", 0.6)
        kw.setdefault("bias", True)
        kw.setdefault("seed", 3)
        return self.t.create(name=name, in_features=n_in, out_features=n_out, **kw)

    def test_create_get_list_delete(self):
        info = self.make("lt-crud", n_in=20, n_out=10, sparsity=0.75)
        self.assertRegex(info.id, r"^l-[0-9a-f]{16}$")
        self.assertEqual((info.name, info.in_features, info.out_features), ("lt-crud", 20, 10))
        w = self.t.param(info, "weight")
        self.assertEqual(w.shape, (10, 20))
        self.assertEqual(info.nnz, w.nnz)
        self.assertAlmostEqual(info.sparsity, 1 - w.nnz / 200)
        self.assertAlmostEqual(info.sparsity, 0.75, delta=0.01)
        self.assertEqual(info.step, 0)
        self.assertTrue(info.config_json.startswith("{"))
        self.assertEqual(self.t.info("lt-crud").id, info.id)
        self.assertEqual(self.t.info(info.id).name, "lt-crud")
        listed = self.t.training.ListLayers(training_pb.ListLayersRequest()).layers
        self.assertIn(info.id, [l.id for l in listed])
        # Layers are not tensors.
        self.assertNotIn("lt-crud", [x.name for x in self.client.list()])
        self.expect_error(grpc.StatusCode.ALREADY_EXISTS, lambda: self.make("lt-crud"), "lt-crud")
        self.t.training.DeleteLayer(self.t.ref(info))
        self.expect_error(grpc.StatusCode.NOT_FOUND, lambda: self.t.info(info.id), info.id)
        self.expect_error(grpc.StatusCode.NOT_FOUND,
                          lambda: self.t.training.DeleteLayer(self.t.ref(info)))

    def check_forward_backward(self, name, relu):
        info = self.make(name, relu=relu)
        w = dense(self.t.param(info, "weight"))
        b = dense(self.t.param(info, "bias"))
        x = rand((5, 12), 10)
        want = dense(x) @ w.T + b
        if relu:
            want = np.maximum(want, 0)
        y = self.t.forward(info, x, call_id="c1")
        assert_close(self, y, want, "forward")
        self.assertEqual(self.t.info(info).pending_calls, 1)
        # Inference only: nothing kept.
        assert_close(self, self.t.forward(info, x), want, "inference")
        self.assertEqual(self.t.info(info).pending_calls, 1)

        dy = rand((5, 7), 11)
        dz = dense(dy) * (want > 0) if relu else dense(dy)
        dx = self.t.backward(info, dy, "c1")
        assert_close(self, dx, dz @ w, "dX")
        self.assertEqual(self.t.info(info).pending_calls, 0)
        wm = self.t.param(info, "weight")
        r, c = positions(wm)
        full = dz.T @ dense(x)
        assert_close(self, self.t.param(info, "weight_grad"), full[r, c], "dW at the pattern")
        assert_close(self, self.t.param(info, "bias_grad"), dz.sum(axis=0), "db")

        # A second batch accumulates.
        x2, dy2 = rand((3, 12), 12), rand((3, 7), 13)
        y2 = self.t.forward(info, x2, call_id="c2")
        dz2 = dense(dy2) * (dense(y2) > 0) if relu else dense(dy2)
        self.assertIsNone(self.t.backward(info, dy2, "c2", want_dx=False))
        full2 = full + dz2.T @ dense(x2)
        assert_close(self, self.t.param(info, "weight_grad"), full2[r, c], "accumulated dW")
        assert_close(self, self.t.param(info, "bias_grad"), dz.sum(0) + dz2.sum(0), "acc db")
        return info

    def test_forward_backward(self):
        self.check_forward_backward("lt-fb", relu=False)

    def test_forward_backward_relu(self):
        self.check_forward_backward("lt-fb-relu", relu=True)

    def test_step_sgd_and_momentum(self):
        info = self.make("lt-sgd", optimizer=training_pb.OptimizerConfig(
            kind=training_pb.SGD, lr=0.1, momentum=0.5))
        w0 = self.t.param(info, "weight")
        b0 = dense(self.t.param(info, "bias"))
        r, c = positions(w0)
        wv = w0.data.astype(np.float64)
        bv = b0.copy()
        buf_w = buf_b = None
        for k in range(2):
            x, dy = rand((4, 12), 20 + k), rand((4, 7), 30 + k)
            self.t.forward(info, x, call_id="s")
            self.t.backward(info, dy, "s", want_dx=False)
            gw = (dense(dy).T @ dense(x))[r, c] * 0.5
            gb = dense(dy).sum(0) * 0.5
            buf_w = gw if buf_w is None else 0.5 * buf_w + gw
            buf_b = gb if buf_b is None else 0.5 * buf_b + gb
            wv, bv = wv - 0.1 * buf_w, bv - 0.1 * buf_b
            rep = self.t.step(info, grad_scale=0.5)
            self.assertEqual(rep.step, k + 1)
            self.assertEqual(rep.nnz, w0.nnz)
            self.assertEqual((rep.dropped, rep.grown), (0, 0))
            w = self.t.param(info, "weight")
            np.testing.assert_array_equal(w.indptr, w0.indptr)
            np.testing.assert_array_equal(w.indices, w0.indices)
            assert_close(self, w.data, wv, "weights after step %d" % (k + 1))
            assert_close(self, self.t.param(info, "bias"), bv, "bias after step %d" % (k + 1))
            # The accumulators start again from zero.
            self.assertFalse(np.any(dense(self.t.param(info, "weight_grad"))))
        self.assertEqual(self.t.info(info).step, 2)

    def test_step_replaces_the_optimizer(self):
        info = self.make("lt-opt")
        w0 = self.t.param(info, "weight")
        r, c = positions(w0)
        x, dy = rand((4, 12), 40), rand((4, 7), 41)
        self.t.forward(info, x, call_id="o")
        self.t.backward(info, dy, "o", want_dx=False)
        self.t.step(info, optimizer=training_pb.OptimizerConfig(kind=training_pb.SGD, lr=0.25))
        want = w0.data - 0.25 * (dense(dy).T @ dense(x))[r, c]
        assert_close(self, self.t.param(info, "weight").data, want, "lr 0.25")

    def test_dense_gradient_and_rigl(self):
        info = self.make("lt-rigl", n_in=16, n_out=8, sparsity=0.7,
                         rigl=training_pb.Rigl(alpha=0.5, interval=1, end_step=100))
        w0 = self.t.param(info, "weight")
        x, dy = rand((6, 16), 50), rand((6, 8), 51)
        self.t.forward(info, x, call_id="r")
        self.t.backward(info, dy, "r", want_dx=False)
        full = dense(dy).T @ dense(x)
        g = self.t.training.DenseGradient(training_pb.DenseGradientRequest(
            layer=self.t.ref(info), output=Output(inline=True)))
        assert_close(self, sc.from_inline(g.inline), full, "dense gradient")
        g = self.t.training.DenseGradient(training_pb.DenseGradientRequest(
            layer=self.t.ref(info), row_begin=2, row_end=5, output=Output(inline=True)))
        assert_close(self, sc.from_inline(g.inline), full[2:5], "dense gradient rows 2-5")
        rep = self.t.step(info)
        self.assertGreater(rep.dropped, 0)
        self.assertEqual(rep.dropped, rep.grown)
        self.assertEqual(rep.nnz, w0.nnz)
        w1 = self.t.param(info, "weight")
        self.assertEqual(w1.nnz, w0.nnz)
        before = set(zip(*positions(w0)))
        after = set(zip(*positions(w1)))
        self.assertEqual(len(after - before), rep.grown)
        self.assertEqual(len(before - after), rep.dropped)


class LayerErrorsTest(DaemonCase):
    def test_bad_configs_name_the_field(self):
        count = len(self.t.training.ListLayers(training_pb.ListLayersRequest()).layers)
        bad = [({"in_features": 0, "out_features": 4}, "in_features"),
               ({"in_features": 4, "out_features": -2}, "out_features"),
               ({"in_features": 4, "out_features": 4, "sparsity": 1.5}, "sparsity"),
               ({"in_features": 4, "out_features": 4, "format": sc.pb.COO}, "format"),
               ({"in_features": 4, "out_features": 4,
                 "optimizer": training_pb.OptimizerConfig(momentum=1.5)}, "momentum"),
               ({"in_features": 4, "out_features": 4,
                 "rigl": training_pb.Rigl(alpha=0.3, interval=0, end_step=10)}, "rigl"),
               ({"in_features": 4, "out_features": 4, "name": "bad\x01name"}, "name")]
        for kw, field in bad:
            details = self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                                        lambda: self.t.create(**kw), field)
            print("  %s -> %s" % (field, details))
        self.assertEqual(len(self.t.training.ListLayers(training_pb.ListLayersRequest()).layers),
                         count)

    def test_unknown_layer_and_call(self):
        self.expect_error(grpc.StatusCode.NOT_FOUND, lambda: self.t.info("no-such-layer"),
                          "no-such-layer")
        self.expect_error(grpc.StatusCode.NOT_FOUND,
                          lambda: self.t.forward("l-0123456789abcdef", rand((2, 4), 1)),
                          "l-0123456789abcdef")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                          lambda: self.t.training.GetLayer(training_pb.LayerRef()), "layer")
        info = self.t.create(name="le-calls", in_features=4, out_features=3, sparsity=0.5)
        self.expect_error(grpc.StatusCode.NOT_FOUND,
                          lambda: self.t.backward(info, rand((2, 3), 2), "never"), "never")
        self.expect_error(grpc.StatusCode.NOT_FOUND, lambda: self.t.training.ForgetCall(
            training_pb.ForgetCallRequest(layer=self.t.ref(info), call_id="never")), "never")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                          lambda: self.t.backward(info, rand((2, 3), 2), ""), "call_id")
        # Activations of the wrong shape name the operand and the width.
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                          lambda: self.t.forward(info, rand((2, 5), 3)), "x", "in_features")
        self.t.forward(info, rand((2, 4), 3), call_id="k")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                          lambda: self.t.backward(info, rand((2, 4), 3), "k"), "dy",
                          "out_features")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                          lambda: self.t.param(info, "weights"), "parameter", "weights")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT,
                          lambda: self.t.param(info, "bias"), "bias")
        # The daemon keeps serving.
        self.assertEqual(self.t.info("le-calls").pending_calls, 1)

    def test_pending_bound(self):
        info = self.t.create(name="le-pending", in_features=4, out_features=3, sparsity=0.5,
                             max_pending=2)
        x = rand((2, 4), 5)
        self.t.forward(info, x, call_id="a")
        self.t.forward(info, x, call_id="b")
        self.expect_error(grpc.StatusCode.ALREADY_EXISTS,
                          lambda: self.t.forward(info, x, call_id="a"), "a")
        self.expect_error(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          lambda: self.t.forward(info, x, call_id="c"))
        # Inference needs no slot.
        self.t.forward(info, x)
        self.t.training.ForgetCall(training_pb.ForgetCallRequest(layer=self.t.ref(info),
                                                                  call_id="a"))
        self.t.forward(info, x, call_id="c")
        self.assertEqual(self.t.info(info).pending_calls, 2)


class TrainingOpsTest(DaemonCase):
    def pattern(self, m, n, density, seed, name):
        p = scipy.sparse.random(m, n, density, format="csr", dtype=np.float32,
                                random_state=seed)
        p.sort_indices()
        return p, self.client.upload(p, name=name)

    def test_sddmm(self):
        p, held = self.pattern(9, 6, 0.4, 1, "ops-pattern")
        r, c = positions(p)
        a, b = rand((9, 5), 2), rand((5, 6), 3)
        for ta, tb in [(False, False), (True, False), (False, True), (True, True)]:
            aa = a.T.copy() if ta else a
            bb = b.T.copy() if tb else b
            res = self.t.ops.Sddmm(training_pb.SddmmRequest(
                a=Operand(inline=sc.inline(aa)), b=Operand(inline=sc.inline(bb)),
                transpose_a=ta, transpose_b=tb, pattern=Operand(ref=sc.ref(held)), alpha=0.5,
                output=Output(inline=True)))
            got = sc.from_inline(res.inline)
            self.assertTrue(scipy.sparse.isspmatrix_csr(got))
            np.testing.assert_array_equal(got.indptr, p.indptr)
            np.testing.assert_array_equal(got.indices, p.indices)
            want = 0.5 * (dense(a) @ dense(b))[r, c]
            assert_close(self, got.data, want, "sddmm ta=%s tb=%s" % (ta, tb))
        # beta * C, and a held result.
        cvec = rand((p.nnz,), 4)
        res = self.t.ops.Sddmm(training_pb.SddmmRequest(
            a=Operand(inline=sc.inline(a)), b=Operand(inline=sc.inline(b)),
            pattern=Operand(ref=sc.ref(held)), beta=2.0, c=Operand(inline=sc.inline(cvec)),
            output=Output(name="ops-sddmm-out")))
        self.assertEqual(res.tensor.name, "ops-sddmm-out")
        got = self.client.download("ops-sddmm-out")
        assert_close(self, got.data, (dense(a) @ dense(b))[r, c] + 2 * dense(cvec), "beta")
        # beta without C names c.
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: self.t.ops.Sddmm(
            training_pb.SddmmRequest(a=Operand(inline=sc.inline(a)),
                                     b=Operand(inline=sc.inline(b)),
                                     pattern=Operand(ref=sc.ref(held)), beta=1.0,
                                     output=Output(inline=True))), "c")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: self.t.ops.Sddmm(
            training_pb.SddmmRequest(a=Operand(inline=sc.inline(a.T.copy())),
                                     b=Operand(inline=sc.inline(b)),
                                     pattern=Operand(ref=sc.ref(held)),
                                     output=Output(inline=True))))

    def test_dense_matmul(self):
        a, b = rand((8, 5), 6), rand((7, 5), 7)
        full = dense(a) @ dense(b).T
        for begin, end, want in [(0, 0, full), (0, -1, full), (2, 5, full[2:5]),
                                 (6, 8, full[6:8])]:
            res = self.t.ops.DenseMatmul(training_pb.DenseMatmulRequest(
                a=Operand(inline=sc.inline(a)), b=Operand(inline=sc.inline(b)), transpose_b=True,
                row_begin=begin, row_end=end, output=Output(inline=True)))
            assert_close(self, sc.from_inline(res.inline), want, "rows %d-%d" % (begin, end))
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: self.t.ops.DenseMatmul(
            training_pb.DenseMatmulRequest(a=Operand(inline=sc.inline(a)),
                                           b=Operand(inline=sc.inline(b)), transpose_b=True,
                                           row_begin=3, row_end=20,
                                           output=Output(inline=True))), "row_end")
        self.expect_error(grpc.StatusCode.INVALID_ARGUMENT, lambda: self.t.ops.DenseMatmul(
            training_pb.DenseMatmulRequest(a=Operand(inline=sc.inline(a)),
                                           output=Output(inline=True))), "b")


class LayerCheckpointTest(unittest.TestCase):
    """A layer trained, saved, and restored by a restarted daemon computes
    exactly what the daemon that kept running computes."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sparsed-layer-ckpt-")
        self.data = os.path.join(self.dir, "data")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @staticmethod
    def train_step(t, k):
        x, dy = rand((4, 10), 100 + k), rand((4, 6), 200 + k)
        t.forward("ck-layer", x, call_id="k%d" % k)
        t.backward("ck-layer", dy, "k%d" % k, want_dx=False)
        return t.step("ck-layer")

    def test_layer_round_trip(self):
        x_eval = rand((3, 10), 7)
        with Daemon(ARGS.sparsed, data_dir=self.data) as d1:
            c1 = sc.Client(d1.address)
            t1 = Trainer(c1)
            t1.create(name="ck-layer", in_features=10, out_features=6, sparsity=0.5, bias=True,
                      seed=9, optimizer=training_pb.OptimizerConfig(kind=training_pb.ADAM,
                                                                    lr=0.01))
            unnamed = t1.create(in_features=5, out_features=4, sparsity=0.25, seed=1)
            c1.upload(rand((2, 2), 1), name="plain")
            for k in range(3):
                self.train_step(t1, k)
            saved = c1.checkpoints.SaveCheckpoint(sc.checkpoint_pb.SaveCheckpointRequest(
                name="ck"))
            self.assertEqual((saved.tensors, saved.layers), (1, 2))
            y_kept = t1.forward("ck-layer", x_eval)
            self.train_step(t1, 3)
            w_kept = t1.param("ck-layer", "weight")
            b_kept = t1.param("ck-layer", "bias")
            w_unnamed = t1.param(unnamed, "weight")
            c1.close()
            self.assertEqual(d1.stop(), 0)

        with Daemon(ARGS.sparsed, ["--restore", "ck"], data_dir=self.data) as d2:
            c2 = sc.Client(d2.address)
            t2 = Trainer(c2)
            info = t2.info("ck-layer")
            self.assertEqual((info.step, info.in_features, info.out_features), (3, 10, 6))
            layers = t2.training.ListLayers(training_pb.ListLayersRequest()).layers
            self.assertEqual(len(layers), 2)
            restored_unnamed = [l for l in layers if not l.name][0]
            self.assertNotEqual(restored_unnamed.id, unnamed.id)  # new ids, as tensors
            np.testing.assert_array_equal(
                t2.param(restored_unnamed.id, "weight").toarray(), w_unnamed.toarray())
            # The layer's arrays did not come back as tensors.
            self.assertEqual([x.name for x in c2.list()], ["plain"])
            np.testing.assert_array_equal(t2.forward("ck-layer", x_eval), y_kept)
            rep = self.train_step(t2, 3)
            self.assertEqual(rep.step, 4)
            w = t2.param("ck-layer", "weight")
            np.testing.assert_array_equal(w.indptr, w_kept.indptr)
            np.testing.assert_array_equal(w.indices, w_kept.indices)
            np.testing.assert_array_equal(w.data, w_kept.data)
            np.testing.assert_array_equal(t2.param("ck-layer", "bias"), b_kept)
            # Restoring again into the same daemon clashes on the layer name
            # (the tensor's name is freed first): nothing is added.
            c2.delete("plain")
            with self.assertRaises(grpc.RpcError) as cm:
                c2.checkpoints.RestoreCheckpoint(sc.checkpoint_pb.RestoreCheckpointRequest(
                    name="ck"))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS)
            self.assertIn("ck-layer", cm.exception.details())
            self.assertEqual(len(t2.training.ListLayers(training_pb.ListLayersRequest()).layers),
                             2)
            self.assertEqual(len(c2.list()), 0)
            c2.close()
            self.assertEqual(d2.stop(), 0)


class LayerCliTest(DaemonCase):
    def ctl(self, *args, ok=True):
        p = subprocess.run([ARGS.sparsectl, "--server", self.daemon.address, "--timeout", "60"] +
                           [str(a) for a in args], capture_output=True, text=True, timeout=120)
        if ok:
            self.assertEqual(p.returncode, 0, "sparsectl %s:\n%s%s" % (args, p.stdout, p.stderr))
        return p

    def test_layer_commands(self):
        tmp = tempfile.mkdtemp(prefix="sparsectl-layer-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        out = self.ctl("layer", "create", "--in", 8, "--out", 3, "--sparsity", 0.5, "--name",
                       "cli-l", "--relu", "--seed", 2).stdout
        lid = re.search(r"l-[0-9a-f]{16}", out).group(0)
        self.assertIn("name=cli-l 8 -> 3", out)
        listed = self.ctl("layer", "ls").stdout
        self.assertIn(lid, listed)
        self.assertIn("SPARSITY", listed)
        info = self.ctl("layer", "info", lid).stdout
        self.assertIn("cli-l", info)
        self.assertIn("8 -> 3, bias, relu", info)

        x = rand((4, 8), 60)
        np.save(os.path.join(tmp, "x.npy"), x)
        self.ctl("layer", "forward", "cli-l", os.path.join(tmp, "x.npy"), "-o",
                 os.path.join(tmp, "y.npy"))
        w = dense(self.t.param("cli-l", "weight"))
        b = dense(self.t.param("cli-l", "bias"))
        assert_close(self, np.load(os.path.join(tmp, "y.npy")),
                     np.maximum(dense(x) @ w.T + b, 0), "sparsectl layer forward")
        held = self.ctl("layer", "forward", "cli-l", os.path.join(tmp, "x.npy"), "--name",
                        "cli-y").stdout
        self.assertIn("name=cli-y", held)

        step = self.ctl("layer", "step", "cli-l").stdout
        self.assertIn("step 1: nnz=%d" % self.t.info("cli-l").nnz, step)

        # sddmm against the layer's weight pattern, uploaded as a tensor.
        pattern = self.t.param("cli-l", "weight")
        self.client.upload(pattern, name="cli-pattern")
        a, bb = rand((3, 5), 61), rand((5, 8), 62)
        np.save(os.path.join(tmp, "a.npy"), a)
        np.save(os.path.join(tmp, "b.npy"), bb)
        self.ctl("sddmm", os.path.join(tmp, "a.npy"), os.path.join(tmp, "b.npy"), "cli-pattern",
                 "--alpha", 3, "-o", os.path.join(tmp, "s.npy"))
        r, c = positions(pattern)
        want = np.zeros((3, 8))
        want[r, c] = 3 * (dense(a) @ dense(bb))[r, c]
        assert_close(self, np.load(os.path.join(tmp, "s.npy")), want, "sparsectl sddmm")

        saved = self.ctl("checkpoint", "save", "cli-ck").stdout
        self.assertRegex(saved, r"saved checkpoint cli-ck: \d+ tensors, \d+ layers, ")

        out = self.ctl("layer", "create", "--in", 16, "--out", 3, "--nm", "1:4", "--name",
                       "cli-nm").stdout
        self.assertIn("nnz=12 sparsity=75", out)
        self.assertIn('"nm_n":1', self.ctl("layer", "info", "cli-nm").stdout.replace(" ", ""))
        bad = self.ctl("layer", "create", "--in", 16, "--out", 3, "--nm", "two:4", ok=False)
        self.assertEqual(bad.returncode, 2)
        self.assertIn("'two:4' is not N:M", bad.stderr)
        bad = self.ctl("layer", "create", "--in", 16, "--out", 3, "--nm", "2:4", "--sparsity",
                       0.9, ok=False)
        self.assertIn("sparsity = 0.9 but an 2:4 layer", bad.stderr)
        self.ctl("layer", "rm", "cli-nm")

        bad = self.ctl("layer", "create", "--in", 0, "--out", 3, ok=False)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("INVALID_ARGUMENT: in_features = 0", bad.stderr)
        self.ctl("layer", "rm", "cli-l")
        gone = self.ctl("layer", "info", "cli-l", ok=False)
        self.assertEqual(gone.returncode, 1)
        self.assertIn("NOT_FOUND", gone.stderr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sparsed", required=True)
    parser.add_argument("--sparsectl")
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
