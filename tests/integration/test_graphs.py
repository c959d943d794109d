#!/usr/bin/env python3
"""Op graphs (Graphs.Run, issue 16) through the real daemon: a graph against
the same ops called one by one (bit-identical on the CPU backend), the DNN
example against float64 NumPy and against single Spmm calls, failures
mid-graph and deadlines that hold nothing and change nothing, every
validation error naming its op and field, held and inline outputs, and
`sparsectl run` on the DNN example."""

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

import grpc
import numpy as np
import scipy.sparse
from google.protobuf import json_format

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, os.path.join(ROOT, "bench", "dnn_graph"))
sys.path.insert(0, HERE)

import sparsed_client as sc  # noqa: E402
import make_dnn  # noqa: E402
from daemon_util import Daemon  # noqa: E402
from sparsed.v1 import compute_pb2, compute_pb2_grpc  # noqa: E402
from sparsed.v1 import graph_pb2, graph_pb2_grpc  # noqa: E402
from sparsed.v1 import training_pb2, training_pb2_grpc  # noqa: E402

ARGS = None


def ref(name):
    return {"ref": {"name": name}}


def out(name):
    return {"output": name}


def inline(x):
    return {"inline": json_format.MessageToDict(sc.inline(x))}


def request(d):
    return json_format.ParseDict(d, graph_pb2.RunRequest())


def parts_of(msg):
    """(desc, {component: bytes}) of an InlineTensor."""
    return msg.desc, {c.name: c.data for c in msg.components}


class DaemonTestCase(unittest.TestCase):
    extra_args = ()

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(ARGS.sparsed, extra_args=cls.extra_args)
        cls.client = sc.Client(cls.daemon.address)
        cls.graphs = graph_pb2_grpc.GraphsStub(cls.client.channel)

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.daemon.__exit__(None, None, None)

    def run_graph(self, d, **kwargs):
        return self.graphs.Run(request(d), **kwargs)

    def held(self, handle):
        """(desc, {component: bytes}) of a held tensor."""
        info, parts = self.client.download_raw(handle)
        return info.desc, parts

    def assert_same(self, a, b, what):
        self.assertEqual(json_format.MessageToDict(a[0]), json_format.MessageToDict(b[0]), what)
        self.assertEqual(sorted(a[1]), sorted(b[1]), what)
        for name in a[1]:
            self.assertEqual(a[1][name], b[1][name], "%s: component %s differs" % (what, name))

    def snapshot(self):
        """What the tenant holds and the daemon's memory in use."""
        tensors = sorted((t.id, t.name, t.bytes) for t in self.client.list())
        status = self.client.status()
        return tensors, status.tensor_count, status.memory_in_use_bytes

    def wait_for(self, snapshot, timeout=15):
        """Polls until the daemon is back at `snapshot` (a call stopped by its
        deadline may still be finishing its current op)."""
        deadline = time.time() + timeout
        while self.snapshot() != snapshot and time.time() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.snapshot(), snapshot)

    def expect_error(self, d, code, *pieces, **kwargs):
        with self.assertRaises(grpc.RpcError) as cm:
            self.run_graph(d, **kwargs)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for p in pieces:
            self.assertIn(p, cm.exception.details())
        return cm.exception.details()


class GraphVsSingleCallsTest(DaemonTestCase):
    """Every op kind in a graph against the same op called on its own."""

    def test_ops_equal_single_calls_bit_for_bit(self):
        c = self.client
        rng = np.random.default_rng(1)
        a = rng.standard_normal((32, 24)).astype(np.float32)
        a[rng.random(a.shape) < 0.6] = 0
        x = rng.standard_normal((32, 16)).astype(np.float32)
        cin = rng.standard_normal((24, 16)).astype(np.float32)
        bias = rng.standard_normal(16).astype(np.float32)
        c.upload(x, name="g/x")
        c.upload(cin, name="g/c")
        graph = {
            "ops": [
                {"name": "s", "convert": {"source": inline(a), "to": "CSR"}},
                {"name": "st", "transpose": {"source": out("s")}},
                {"name": "p", "prune": {"source": out("st"), "magnitude": {"sparsity": 0.8}}},
                {"name": "y", "spmm": {"a": out("p"), "b": ref("g/x"), "alpha": 0.5, "beta": 1,
                                       "c": ref("g/c"), "bias": inline(bias), "relu": True,
                                       "clampMax": 1.5}},
                {"name": "z", "spmm": {"a": out("s"), "b": out("y"), "outDtype": "BF16"}},
                {"name": "sd", "sddmm": {"a": ref("g/x"), "b": out("y"), "transposeB": True,
                                         "pattern": out("s"), "alpha": 2}},
                {"name": "dm", "denseMatmul": {"a": ref("g/x"), "b": out("y"),
                                               "transposeB": True, "rowBegin": 4,
                                               "rowEnd": 20}},
            ],
            "outputs": [{"output": "y", "inline": True}, {"output": "z", "name": "g/z"},
                        {"output": "p", "name": "g/p"}, {"output": "sd", "inline": True},
                        {"output": "dm", "inline": True}],
        }
        r = self.run_graph(graph)
        self.assertEqual([t.op for t in r.ops], ["s", "st", "p", "y", "z", "sd", "dm"])
        self.assertEqual([t.kind for t in r.ops],
                         ["convert", "transpose", "prune", "spmm", "spmm", "sddmm",
                          "dense_matmul"])

        compute = compute_pb2_grpc.ComputeStub(c.channel)
        train = training_pb2_grpc.TrainingOpsStub(c.channel)
        O = compute_pb2.Operand

        def held_out(name):
            return compute_pb2.Output(name=name)
        compute.Convert(compute_pb2.ConvertRequest(source=O(inline=sc.inline(a)), to=3,
                                                   output=held_out("1/s")))
        compute.Transpose(compute_pb2.TransposeRequest(source=O(ref=sc.ref("1/s")),
                                                       output=held_out("1/st")))
        compute.Prune(compute_pb2.PruneRequest(
            source=O(ref=sc.ref("1/st")), magnitude=compute_pb2.MagnitudePrune(sparsity=0.8),
            output=held_out("1/p")))
        req = compute_pb2.SpmmRequest(a=O(ref=sc.ref("1/p")), b=O(ref=sc.ref("g/x")), alpha=0.5,
                                      beta=1, c=O(ref=sc.ref("g/c")), output=held_out("1/y"))
        req.epilogue.bias.CopyFrom(O(inline=sc.inline(bias)))
        req.epilogue.relu = True
        req.epilogue.clamp_max = 1.5
        compute.Spmm(req)
        compute.Spmm(compute_pb2.SpmmRequest(a=O(ref=sc.ref("1/s")), b=O(ref=sc.ref("1/y")),
                                             out_dtype=3, output=held_out("1/z")))
        sd = train.Sddmm(training_pb2.SddmmRequest(
            a=O(ref=sc.ref("g/x")), b=O(ref=sc.ref("1/y")), transpose_b=True,
            pattern=O(ref=sc.ref("1/s")), alpha=2, output=compute_pb2.Output(inline=True)))
        dm = train.DenseMatmul(training_pb2.DenseMatmulRequest(
            a=O(ref=sc.ref("g/x")), b=O(ref=sc.ref("1/y")), transpose_b=True, row_begin=4,
            row_end=20, output=compute_pb2.Output(inline=True)))

        self.assert_same(parts_of(r.results[0].inline), self.held("1/y"), "y")
        self.assertEqual(r.results[1].tensor.name, "g/z")
        self.assert_same(self.held("g/z"), self.held("1/z"), "z")
        self.assert_same(self.held("g/p"), self.held("1/p"), "p")
        self.assert_same(parts_of(r.results[3].inline), parts_of(sd.inline), "sd")
        self.assert_same(parts_of(r.results[4].inline), parts_of(dm.inline), "dm")
        # Only the outputs asked to be held were kept.
        names = {t.name for t in c.list()}
        self.assertTrue({"g/z", "g/p"} <= names)
        self.assertFalse({"s", "st", "y", "sd", "dm"} & names)

    def test_elementwise_ops_against_numpy(self):
        rng = np.random.default_rng(2)
        x = rng.standard_normal((7, 9)).astype(np.float32)
        y = rng.standard_normal((7, 9)).astype(np.float32)
        v = rng.standard_normal(9).astype(np.float32)
        r = self.run_graph({
            "ops": [
                {"name": "s", "scale": {"x": inline(x), "factor": -2.5}},
                {"name": "a", "add": {"x": out("s"), "y": inline(y), "alpha": 1, "beta": 3}},
                {"name": "r", "relu": {"x": out("a")}},
                {"name": "c", "clamp": {"x": out("a"), "min": 0, "max": 0.75}},
                {"name": "m", "clamp": {"x": inline(v), "max": 0.1}},
                {"name": "h", "cast": {"x": out("a"), "dtype": "F16"}},
            ],
            "outputs": [{"output": o, "inline": True} for o in ("s", "a", "r", "c", "m", "h")],
        })
        got = {o.output: sc.from_inline(o.inline) for o in r.results}
        s = (np.float64(-2.5) * x).astype(np.float32)
        a = (s.astype(np.float64) + 3.0 * y.astype(np.float64)).astype(np.float32)
        np.testing.assert_array_equal(got["s"], s)
        np.testing.assert_array_equal(got["a"], a)
        np.testing.assert_array_equal(got["r"], np.maximum(a, 0))
        np.testing.assert_array_equal(got["c"], np.minimum(np.maximum(a, 0), 0.75))
        np.testing.assert_array_equal(got["m"], np.minimum(v, np.float32(0.1)))
        self.assertEqual(r.results[5].inline.desc.dtype, 2)  # F16
        np.testing.assert_array_equal(got["h"], a.astype(np.float16))


def layer_state(c, layer):
    """What a graph may change in a layer: its parameters (exact bytes), the
    gradient accumulators, its step and its kept calls."""
    w = c.layer_parameter(layer, "weight")
    info = c.get_layer(layer)
    return (w.indptr.tobytes(), w.indices.tobytes(), w.data.tobytes(),
            c.layer_parameter(layer, "bias").tobytes(),
            c.layer_parameter(layer, "weight_grad").tobytes(),
            c.layer_parameter(layer, "bias_grad").tobytes(),
            info.step, info.pending_calls)


def training_graph(layer, x, target, call_id, step=None, outputs=("y", "g", "dx")):
    """forward(call_id) -> the MSE loss gradient 2/N (y - target) -> backward
    -> step, one Run; y, g (the gradient) and dX inline."""
    step = {} if step is None else step
    return {
        "ops": [
            {"name": "y", "layer_forward": {"layer": layer, "x": x, "callId": call_id}},
            {"name": "d", "add": {"x": out("y"), "y": target, "beta": -1}},
            {"name": "g", "scale": {"x": out("d"), "factor": 2.0 / 60}},
            {"name": "dx", "layer_backward": {"layer": layer, "callId": call_id,
                                              "gradOut": out("g")}},
            {"name": "s", "layer_step": dict({"layer": layer}, **step)},
        ],
        "outputs": [{"output": o, "inline": True} for o in outputs],
    }


class LayerForwardTest(DaemonTestCase):
    """Training layers inside a graph: two layers in one Run against the same
    two Training.Forward calls (bit for bit), both against NumPy; a whole
    training step (forward, loss gradient, backward, step) in one Run against
    the same Training calls one by one (bit for bit) and against NumPy; every
    rule of layer_backward and layer_step refused before anything runs."""

    def test_two_layers_in_one_run(self):
        c = self.client
        l1 = c.create_layer(12, 20, sparsity=0.5, name="g/fc1", relu=True, seed=3)
        l2 = c.create_layer(20, 4, sparsity=0.5, name="g/fc2", seed=4)
        x = np.random.default_rng(5).standard_normal((9, 12)).astype(np.float32)
        r = self.run_graph({
            "ops": [
                {"name": "h", "layer_forward": {"layer": {"name": "g/fc1"}, "x": inline(x)}},
                {"name": "y", "layer_forward": {"layer": {"id": l2.id}, "x": out("h")}},
            ],
            "outputs": [{"output": "y", "inline": True}],
        })
        got = sc.from_inline(r.results[0].inline)
        h = c.layer_forward("g/fc1", x)
        y = c.layer_forward("g/fc2", h)
        np.testing.assert_array_equal(got, y)
        w1 = c.layer_parameter("g/fc1", "weight").toarray().astype(np.float64)
        b1 = c.layer_parameter("g/fc1", "bias").astype(np.float64)
        w2 = c.layer_parameter("g/fc2", "weight").toarray().astype(np.float64)
        b2 = c.layer_parameter("g/fc2", "bias").astype(np.float64)
        want = np.maximum(x @ w1.T + b1, 0) @ w2.T + b2
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        self.assertEqual([o.kind for o in r.ops], ["layer_forward", "layer_forward"])

    def test_unknown_layer_and_wrong_width(self):
        x = np.zeros((2, 7), np.float32)
        self.expect_error({"ops": [{"name": "y", "layer_forward": {
            "layer": {"name": "g/none"}, "x": inline(x)}}], "outputs": [{"output": "y"}]},
            grpc.StatusCode.NOT_FOUND, "ops[0].layer_forward.layer")
        self.client.create_layer(12, 3, name="g/fc3")
        self.expect_error({"ops": [{"name": "y", "layer_forward": {
            "layer": {"name": "g/fc3"}, "x": inline(x)}}], "outputs": [{"output": "y"}]},
            grpc.StatusCode.INVALID_ARGUMENT, "ops[0].layer_forward.x", "in_features")


    def test_training_step_in_one_run_equals_training_calls(self):
        c = self.client
        kw = dict(sparsity=0.5, relu=True, seed=21, optimizer={"kind": "sgd", "lr": 0.05,
                                                                "momentum": 0.9})
        c.create_layer(12, 5, name="g/ta", **kw)
        c.create_layer(12, 5, name="g/tb", **kw)
        rng = np.random.default_rng(8)
        adam = {"kind": "adam", "lr": 0.02}
        for it in range(3):
            x = rng.standard_normal((6, 12)).astype(np.float32)
            t = rng.standard_normal((6, 5)).astype(np.float32)
            # Iteration 1 switches to Adam, as Step's optimizer field does.
            step = {"gradScale": 0.5, "optimizer": {"kind": "ADAM", "lr": 0.02}} if it == 1 else {}
            call_id = "step%d" % it
            r = self.run_graph(training_graph({"name": "g/ta"}, inline(x), inline(t), call_id,
                                              step))
            y, g, dx = (sc.from_inline(res.inline) for res in r.results)
            self.assertEqual([o.kind for o in r.ops], ["layer_forward", "add", "scale",
                                                       "layer_backward", "layer_step"])
            # The same step through Training, fed the graph's loss gradient.
            np.testing.assert_array_equal(c.layer_forward("g/tb", x, call_id=call_id), y)
            np.testing.assert_array_equal(
                c.layer_backward("g/tb", g, call_id, want_dx=True), dx)
            want = c.layer_step("g/tb", grad_scale=0.5 if it == 1 else 1.0,
                                optimizer=adam if it == 1 else None)
            self.assertEqual(len(r.layer_steps), 1)
            self.assertEqual(r.layer_steps[0].op, "s")
            self.assertEqual(r.layer_steps[0].layer, c.get_layer("g/ta").id)
            self.assertEqual(r.layer_steps[0].step, want)
            self.assertEqual(layer_state(c, "g/ta"), layer_state(c, "g/tb"), "iteration %d" % it)
            # The loss gradient itself against NumPy.
            np.testing.assert_allclose(g, (2.0 / 60) * (y.astype(np.float64) - t),
                                       rtol=1e-6, atol=1e-7)
        self.assertEqual(c.get_layer("g/ta").step, 3)
        self.assertEqual(c.get_layer("g/ta").pending_calls, 0)

    def test_training_step_against_numpy(self):
        c = self.client
        info = c.create_layer(10, 4, sparsity=0.6, name="g/np", relu=True, seed=5,
                              optimizer={"kind": "sgd", "lr": 0.1})
        rng = np.random.default_rng(9)
        x = rng.standard_normal((7, 10)).astype(np.float32)
        g = rng.standard_normal((7, 4)).astype(np.float32)
        w0 = c.layer_parameter(info, "weight")
        b0 = c.layer_parameter(info, "bias").astype(np.float64)
        # The loss gradient as an input; the layer by its LayerInfo (client.run).
        r = c.run({"ops": [
            {"name": "y", "layer_forward": {"layer": info, "x": x, "callId": "k"}},
            {"name": "dx", "layer_backward": {"layer": info, "callId": "k", "gradOut": g}},
            {"name": "s", "layer_step": {"layer": info}}],
            "outputs": [{"output": "y", "inline": True}, {"output": "dx", "inline": True}]})
        y, dx = r[0], r[1]
        self.assertEqual(r.layer_steps["s"].step, 1)
        w = w0.toarray().astype(np.float64)
        mask = w0.toarray() != 0
        y_ref = np.maximum(x @ w.T + b0, 0)
        dz = g * (y_ref > 0)
        np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dx, dz @ w, rtol=1e-5, atol=1e-6)
        w1 = c.layer_parameter(info, "weight")
        np.testing.assert_array_equal(w1.indices, w0.indices)  # the pattern stays
        np.testing.assert_allclose(w1.toarray(), (w - 0.1 * (dz.T @ x)) * mask,
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c.layer_parameter(info, "bias"), b0 - 0.1 * dz.sum(0),
                                   rtol=1e-5, atol=1e-6)

    def test_backward_of_a_call_kept_by_training_forward(self):
        c = self.client
        c.create_layer(8, 3, sparsity=0.5, name="g/early", seed=2)
        x = np.ones((4, 8), np.float32)
        c.layer_forward("g/early", x, call_id="e")
        before = layer_state(c, "g/early")
        bad = {"ops": [{"name": "dx", "layer_backward": {
            "layer": {"name": "g/early"}, "callId": "e",
            "gradOut": inline(np.ones((2, 3), np.float32))}}], "outputs": [{"output": "dx"}]}
        self.expect_error(bad, grpc.StatusCode.INVALID_ARGUMENT,
                          "ops[0].layer_backward.grad_out", "[2, 3]", "[4, 3]")
        self.assertEqual(layer_state(c, "g/early"), before)
        good = copy.deepcopy(bad)
        good["ops"][0]["layer_backward"]["gradOut"] = inline(np.ones((4, 3), np.float32))
        good["outputs"][0]["inline"] = True
        r = self.run_graph(good)
        self.assertEqual(sc.from_inline(r.results[0].inline).shape, (4, 8))
        self.assertEqual(c.get_layer("g/early").pending_calls, 0)

    def test_training_rules_refused_before_anything_runs(self):
        c = self.client
        c.create_layer(12, 5, sparsity=0.5, name="g/tv", relu=True, seed=6)
        x, t = inline(np.ones((6, 12), np.float32)), inline(np.zeros((6, 5), np.float32))
        g3 = inline(np.ones((3, 5), np.float32))
        layer = {"name": "g/tv"}
        fwd = {"name": "y", "layer_forward": {"layer": layer, "x": x, "callId": "c"}}

        def bwd(name="dx", call_id="c", grad=None, on=layer):
            return {"name": name, "layer_backward": {"layer": on, "callId": call_id,
                                                     "gradOut": grad or out("g")}}
        valid = training_graph(layer, x, t, "c")
        before = layer_state(c, "g/tv")
        inv, nf = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
        cases = [
            ({"ops": [fwd, bwd(on={"name": "g/none"}, grad=t)]}, nf,
             ["ops[1].layer_backward.layer", "g/none"]),
            ({"ops": [{"name": "s", "layer_step": {"layer": {"name": "g/none"}}}]}, nf,
             ["ops[0].layer_step.layer", "g/none"]),
            ({"ops": [fwd, bwd(grad=g3)]}, inv,
             ["ops[1].layer_backward.grad_out", "[3, 5]", "[6, 5]"]),
            ({"ops": [fwd, bwd(grad=x)]}, inv,
             ["ops[1].layer_backward.grad_out is dense f32 [6, 12]", "out_features = 5"]),
            ({"ops": [fwd, bwd(call_id="ghost", grad=t)]}, nf,
             ["ops[1].layer_backward.call_id = 'ghost'"]),
            ({"ops": [fwd, bwd(call_id="", grad=t)]}, inv, ["ops[1].layer_backward.call_id"]),
            ({"ops": [fwd, bwd("d1", grad=t), bwd("d2", grad=t)]}, inv,
             ["ops[2].layer_backward.call_id = 'c': ops[1] consumes this call"]),
            ({"ops": [{"name": "s", "layer_step": {"layer": layer,
                                                   "optimizer": {"lr": -1}}}]}, inv,
             ["ops[0].layer_step.optimizer.lr"]),
            (dict(valid, outputs=[{"output": "s"}]), inv,
             ["outputs[0].output = 's'", "layer_step, which has no result"]),
            # A valid training step whose last op is refused: nothing runs.
            (dict(valid, ops=valid["ops"] + [{"name": "z", "relu": {"x": out("s")}}]), inv,
             ["ops[5].relu.x: 's' is ops[4], a layer_step"]),
        ]
        for graph, code, pieces in cases:
            graph.setdefault("outputs", [])
            self.expect_error(graph, code, *pieces)
            self.assertEqual(layer_state(c, "g/tv"), before, graph)
        # And the valid one runs once.
        self.run_graph(valid)
        self.assertEqual(c.get_layer("g/tv").step, 1)


class DnnTest(DaemonTestCase):
    """The DNN example, small: 6 layers of 256 neurons."""

    LAYERS, NEURONS, BATCH = 6, 256, 96

    def test_one_run_equals_reference_and_single_calls(self):
        c = self.client
        y0, ws, b = make_dnn.make_network(self.NEURONS, self.LAYERS, 32, self.BATCH, seed=7)
        c.upload(y0, name="dnn/y0")
        c.upload(b, name="dnn/bias")
        for i, w in enumerate(ws):
            c.upload(w, name="dnn/w%03d" % i)
        graph = make_dnn.run_request(self.LAYERS, ref("dnn/y0"),
                                     lambda i: ref("dnn/w%03d" % i), ref("dnn/bias"))
        r = self.run_graph(graph)
        self.assertEqual(len(r.ops), self.LAYERS)
        self.assertEqual([t.op for t in r.ops], ["out[%d].layer" % i for i in range(self.LAYERS)])
        self.assertGreater(r.compute_ms, 0)
        self.assertGreaterEqual(r.elapsed_ms, r.compute_ms)
        got = sc.from_inline(r.results[0].inline)
        expected = make_dnn.reference(y0, ws, b)
        self.assertGreater((expected > 0).mean(), 0.2)  # the network is not dead
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

        # The same layers as single Spmm calls on held tensors.
        prev = "dnn/y0"
        for i in range(self.LAYERS):
            last = i == self.LAYERS - 1
            res = c.spmm(prev, "dnn/w%03d" % i, bias="dnn/bias", relu=True, clamp_max=32.0,
                         inline=last, name="" if last else "dnn/h%d" % i)
            prev = "dnn/h%d" % i
        np.testing.assert_array_equal(got, res)
        self.assertEqual(got.tobytes(), np.asarray(res, np.float32).tobytes())

        # The package's client.run: the same graph as a dict with data and
        # TensorInfo operands, the result decoded; held outputs join a scope.
        import sparsed
        with sparsed.Client(self.daemon.address) as pc:
            y0_info = pc.info("dnn/y0")
            dict_graph = copy.deepcopy(graph)
            dict_graph["ops"][0]["repeat"]["init"] = y0_info  # a TensorInfo operand
            result = pc.run(dict_graph)
            self.assertEqual(len(result), 1)
            np.testing.assert_array_equal(result[0], got)
            self.assertGreater(result.compute_ms, 0)
            with pc.scope():
                small = pc.run({"ops": [{"name": "t", "transpose": {"source": y0}}],
                                "outputs": [{"output": "t", "name": "dnn/t"}]})
                self.assertEqual(small[0].name, "dnn/t")
            self.assertNotIn("dnn/t", [t.name for t in pc.list()])


class OutputsTest(DaemonTestCase):
    def test_held_outputs_have_names_labels_and_lifetimes(self):
        c = self.client
        x = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
        before = {t.name for t in c.list()}
        r = self.run_graph({
            "ops": [{"name": "r", "relu": {"x": inline(x)}},
                    {"name": "s", "scale": {"x": out("r"), "factor": 2}}],
            "outputs": [{"output": "s", "name": "o/s", "labels": {"k": "v"}},
                        {"output": "r", "inline": True}]},
            metadata=(("sparsed-ttl-seconds", "3600"),))
        held = r.results[0].tensor
        self.assertEqual(r.results[0].output, "s")
        self.assertEqual(held.name, "o/s")
        self.assertEqual(dict(held.labels), {"k": "v"})
        self.assertTrue(held.id.startswith("t-"))
        self.assertGreater(held.expires_unix_ms, time.time() * 1000)  # the call's TTL
        self.assertEqual(list(held.desc.shape), [3, 4])
        np.testing.assert_array_equal(c.download("o/s"), 2 * np.maximum(x, 0))
        np.testing.assert_array_equal(sc.from_inline(r.results[1].inline), np.maximum(x, 0))
        self.assertEqual({t.name for t in c.list()} - before, {"o/s"})
        self.assertEqual(c.info("o/s").labels["k"], "v")
        # Unnamed held outputs are held too.
        r = self.run_graph({"ops": [{"name": "r", "relu": {"x": inline(x)}}],
                            "outputs": [{"output": "r"}]})
        self.assertEqual(c.info(r.results[0].tensor.id).name, "")


class FailureTest(DaemonTestCase):
    """Failures hold nothing and change nothing held."""

    def setUp(self):
        c = self.client
        rng = np.random.default_rng(3)
        self.x = rng.standard_normal((64, 32)).astype(np.float32)
        if "f/x" not in {t.name for t in c.list()}:
            c.upload(self.x, name="f/x")
            c.upload(scipy.sparse.random(32, 32, density=0.2, random_state=4, format="csr",
                                         dtype=np.float32), name="f/w")

    def test_failure_mid_graph_holds_nothing(self):
        before = self.snapshot()
        x_bytes = self.held("f/x")
        # ops[0] and ops[1] run (and ask to be held); ops[2] fails on the data:
        # a dense tensor with more than one non-zero in a pair is not 1:2.
        self.expect_error({
            "ops": [{"name": "h", "spmm": {"a": ref("f/x"), "b": ref("f/w")}},
                    {"name": "r", "relu": {"x": out("h")}},
                    {"name": "n", "convert": {"source": ref("f/x"), "to": "NM", "n": 1,
                                              "m": 2}}],
            "outputs": [{"output": "h", "name": "f/h"}, {"output": "r", "name": "f/r"},
                        {"output": "n", "inline": True}]},
            grpc.StatusCode.INVALID_ARGUMENT, "ops[2].convert ('n'): ")
        self.assertEqual(self.snapshot(), before)
        self.assert_same(self.held("f/x"), x_bytes, "f/x")

    def deep_graph(self, name):
        """40 layers of 3000 x 1024 activations (about a second or more)."""
        c = self.client
        if "f/big" not in {t.name for t in c.list()}:
            rng = np.random.default_rng(5)
            c.upload(rng.random((3000, 1024), dtype=np.float32), name="f/big")
            _, ws, _ = make_dnn.make_network(1024, 1, 32, 1, seed=5)
            c.upload(ws[0], name="f/w1024")
        return make_dnn.run_request(40, ref("f/big"), lambda i: ref("f/w1024"), inline(
            np.full(1024, -0.3, np.float32)), output="deep", inline=False, name=name)

    def test_name_taken_while_running_holds_nothing(self):
        # Both names are free when the graph is validated; while it runs another
        # call takes the second one: delivering it fails, and the first held
        # output is removed again.
        graph = self.deep_graph("f/a")
        graph["ops"].append({"name": "t", "relu": {"x": ref("f/x")}})
        graph["outputs"].append({"output": "t", "name": "f/b"})
        before = self.snapshot()
        future = self.graphs.Run.future(request(graph))
        time.sleep(0.3)
        taken = self.client.upload(np.zeros(3, np.float32), name="f/b")
        with self.assertRaises(grpc.RpcError) as cm:
            future.result()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ALREADY_EXISTS,
                         cm.exception.details())
        self.assertIn("outputs[1]", cm.exception.details())
        names = {t.name: t.id for t in self.client.list()}
        self.assertNotIn("f/a", names)
        self.assertEqual(names["f/b"], taken.id)
        self.client.delete("f/b")
        self.assertEqual(self.snapshot(), before)

    def test_deadline_shorter_than_the_graph(self):
        c = self.client
        graph = self.deep_graph("f/deep")
        before = self.snapshot()
        t0 = time.time()
        details = self.expect_error(graph, grpc.StatusCode.DEADLINE_EXCEEDED, timeout=0.3)
        self.assertLess(time.time() - t0, 5, details)
        self.wait_for(before)
        self.assertNotIn("f/deep", {t.name for t in c.list()})

    def test_cancelled_call_holds_nothing(self):
        c = self.client
        graph = self.deep_graph("f/deep2")
        before = self.snapshot()
        future = self.graphs.Run.future(request(graph))
        time.sleep(0.2)
        future.cancel()
        with self.assertRaises(grpc.FutureCancelledError):
            future.result()
        self.wait_for(before)
        self.assertNotIn("f/deep2", {t.name for t in c.list()})

    def test_validation_errors_name_op_and_field(self):
        before = self.snapshot()
        cases = [
            ({"ops": [{"name": "h", "spmm": {"a": ref("f/x"), "b": ref("f/w")}},
                      {"name": "g", "spmm": {"a": out("h"), "b": ref("f/x")}}],
              "outputs": [{"output": "g"}]},
             grpc.StatusCode.INVALID_ARGUMENT,
             ["ops[1].spmm", "exactly one of a, b must be sparse"]),
            ({"ops": [{"name": "h", "spmm": {"a": ref("f/x"), "b": ref("f/w"),
                                             "transposeB": True}},
                      {"name": "g", "spmm": {"a": ref("f/x"), "b": ref("f/w"),
                                             "transposeA": True}}],
              "outputs": [{"output": "g"}]},
             grpc.StatusCode.INVALID_ARGUMENT,
             ["ops[1].spmm.b: tensor 'f/w' is 32x32 but a (tensor 'f/x') is 64x32",
              "op(a) has 64 columns"]),
            ({"ops": [{"name": "h", "relu": {"x": out("g")}},
                      {"name": "g", "relu": {"x": ref("f/x")}}],
              "outputs": [{"output": "h"}]},
             grpc.StatusCode.INVALID_ARGUMENT,
             ["ops[0].relu.x: output 'g' is defined by ops[1], after this op"]),
            ({"ops": [{"name": "h", "relu": {"x": ref("f/nope")}}],
              "outputs": [{"output": "h"}]},
             grpc.StatusCode.NOT_FOUND, ["ops[0].relu.x.ref", "f/nope"]),
            ({"ops": [{"name": "y", "repeat": {
                "times": 2, "init": ref("f/x"), "carry": "c", "params": ["w"],
                "bindings": [{"operands": [ref("f/w")]}],
                "body": [{"name": "o", "spmm": {"a": out("c"), "b": out("w")}}]}}],
              "outputs": [{"output": "y"}]},
             grpc.StatusCode.INVALID_ARGUMENT,
             ["ops[0].repeat.bindings has 1 entries but times = 2"]),
            ({"ops": [{"name": "h", "relu": {"x": ref("f/x")}}],
              "outputs": [{"output": "nothing"}]},
             grpc.StatusCode.INVALID_ARGUMENT,
             ["outputs[0].output = 'nothing': no op is named so"]),
            ({"ops": [], "outputs": []}, grpc.StatusCode.INVALID_ARGUMENT, ["ops is empty"]),
        ]
        for d, code, pieces in cases:
            with self.subTest(pieces[0]):
                self.expect_error(d, code, *pieces)
        self.assertEqual(self.snapshot(), before)


class MemoryLimitTest(unittest.TestCase):
    """RESOURCE_EXHAUSTED from --memory-limit-bytes: by the estimate before
    anything runs, and at run time when an op needs scratch the estimate does
    not count (16-bit operands computed on f32 copies) — after an earlier op
    ran. Neither holds anything."""

    def upload(self, c):
        c.upload(np.ones((8, 8), np.float32), name="m/small")
        c.upload(np.ones((512, 512), np.float32), name="m/x16", dtype="bf16")
        c.upload(scipy.sparse.identity(512, dtype=np.float32, format="csr"), name="m/id")
        c.upload(np.ones((512, 512), np.float32), name="m/d")

    def graph(self):
        return {"ops": [{"name": "a", "scale": {"x": ref("m/small"), "factor": 2}},
                        {"name": "b", "spmm": {"a": ref("m/x16"), "b": ref("m/id"),
                                               "outDtype": "F32"}}],
                "outputs": [{"output": "a", "name": "m/a"}, {"output": "b", "inline": True}]}

    def test_memory_limit(self):
        with Daemon(ARGS.sparsed) as d:  # what the held tensors take
            c = sc.Client(d.address)
            self.upload(c)
            held = c.status().memory_in_use_bytes
            c.close()
        # Room for the estimate (256 + 1 MiB of results) but not for the
        # f32 copy of the bf16 operand as well.
        limit = held + 256 + (1 << 20) + (256 << 10)
        with Daemon(ARGS.sparsed, extra_args=("--memory-limit-bytes", str(limit))) as d:
            c = sc.Client(d.address)
            graphs = graph_pb2_grpc.GraphsStub(c.channel)
            self.upload(c)
            self.assertEqual(c.status().memory_in_use_bytes, held)
            before = sorted((t.id, t.name) for t in c.list())
            with self.assertRaises(grpc.RpcError) as cm:
                graphs.Run(request(self.graph()))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED,
                             cm.exception.details())
            self.assertIn("ops[1].spmm ('b')", cm.exception.details())
            self.assertEqual(sorted((t.id, t.name) for t in c.list()), before)
            self.assertEqual(c.status().memory_in_use_bytes, held)
            # Three 1 MiB results kept at once do not fit the estimate.
            with self.assertRaises(grpc.RpcError) as cm:
                graphs.Run(request({
                    "ops": [{"name": n, "denseMatmul": {"a": ref("m/d"), "b": ref("m/d")}}
                            for n in ("p", "q", "r")],
                    "outputs": [{"output": n} for n in ("p", "q", "r")]}))
            self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertIn("the graph's results need an estimated 3145728 bytes",
                          cm.exception.details())
            self.assertIn("memory_limit_bytes = %d" % limit, cm.exception.details())
            self.assertEqual(c.status().memory_in_use_bytes, held)
            c.close()


class SparsectlRunTest(unittest.TestCase):
    def test_run_the_dnn_example(self):
        work = tempfile.mkdtemp(prefix="sparsed-graphs-")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "dnn_graph", "make_dnn.py"),
                        "--out", work, "--neurons", "256", "--layers", "6", "--batch", "64"],
                       check=True, capture_output=True)
        with Daemon(ARGS.sparsed) as d:
            env = dict(os.environ, SPARSED_ADDR=d.address, SPARSECTL=ARGS.sparsectl)
            subprocess.run(["sh", os.path.join(work, "upload.sh")], env=env, check=True,
                           capture_output=True)
            ctl = [ARGS.sparsectl]
            r = subprocess.run(ctl + ["run", os.path.join(work, "graph.json"), "-o",
                                      os.path.join(work, "held"), "--timings"],
                               env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("ran 6 ops", r.stdout)
            self.assertIn("out[5].layer", r.stdout)
            y = np.load(os.path.join(work, "held", "out.npy"))
            np.testing.assert_allclose(y, np.load(os.path.join(work, "y_ref.npy")), rtol=1e-5,
                                       atol=1e-5)
            # The self-contained variant (weights from their files) gives the same bits.
            r = subprocess.run(ctl + ["run", os.path.join(work, "graph_inline.json"), "-o",
                                      os.path.join(work, "files")],
                               env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(np.load(os.path.join(work, "files", "out.npy")).tobytes(),
                             y.tobytes())
            # --json: the RunResponse, inline data left out.
            r = subprocess.run(ctl + ["--json", "run", os.path.join(work, "graph.json")],
                               env=env, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            doc = json.loads(r.stdout)
            self.assertEqual(len(doc["ops"]), 6)
            self.assertEqual(doc["results"][0]["output"], "out")
            # Errors come back with the op and field, exit status 1.
            with open(os.path.join(work, "graph.json")) as f:
                bad = json.load(f)
            bad["ops"][0]["repeat"]["bindings"].pop()
            with open(os.path.join(work, "bad.json"), "w") as f:
                json.dump(bad, f)
            r = subprocess.run(ctl + ["run", os.path.join(work, "bad.json")], env=env,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("INVALID_ARGUMENT: ops[0].repeat.bindings has 5 entries but times = 6",
                          r.stderr)
            # A file operand that is not there.
            bad["ops"][0]["repeat"]["init"] = {"file": "missing.npy"}
            with open(os.path.join(work, "bad.json"), "w") as f:
                json.dump(bad, f)
            r = subprocess.run(ctl + ["run", os.path.join(work, "bad.json")], env=env,
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 1)
            self.assertIn("ops[0].repeat.init", r.stderr)


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("--sparsed", required=True)
    p.add_argument("--sparsectl", required=True)
    ARGS, rest = p.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
