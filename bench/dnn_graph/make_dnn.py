#!/usr/bin/env python3
"""A sparse DNN in the shape of the Sparse DNN Graph Challenge, scaled, and
the op graph that runs it in one Graphs.Run call (docs/API.md, "Graphs").

Every layer is Y = clamp(relu(Y · W_i + b), 0, 32): W_i is neurons x neurons
CSR with exactly `nnz_per_row` non-zeros per row (columns drawn at random),
b = -0.3 in every neuron, Y starts as `batch` x neurons activations of 0 and 1
(a fraction `input_density` of ones). Weights are "uniform" (U[0, 1/8), mean
1/16: values stay varied) or "challenge" (all 1/16, as published for 1024
neurons: rows saturate at 32 or die). Everything comes from one seed.

    bench/dnn_graph/make_dnn.py --out /tmp/dnn --layers 30

writes into OUT:
  y0.npy                   the input (float32)
  w000.mtx ... wNNN.mtx    the weights (Matrix Market, float32 values exactly)
  bias.npy                 b (float32)
  y_ref.npy                the network's output computed in float64 (numpy/scipy)
  graph.json               the RunRequest (protobuf JSON) over held weights
                           PREFIXw000..., bias PREFIXbias, input from y0.npy
  graph_inline.json        the same with every weight and the bias sent from
                           their files (no upload needed)
  upload.sh                the sparsectl put commands graph.json needs

Then:
  sh /tmp/dnn/upload.sh && sparsectl run /tmp/dnn/graph.json -o /tmp/dnn/out
  sparsectl run /tmp/dnn/graph_inline.json -o /tmp/dnn/out

The module's functions (make_network, reference, run_request, write_example)
are used by tests/integration/test_graphs.py and time_dnn.py.
"""

import argparse
import json
import os
import sys

import numpy as np
import scipy.sparse


def make_network(neurons=1024, layers=30, nnz_per_row=32, batch=1200, seed=16,
                 input_density=0.3, weights="uniform", bias=-0.3):
    """(y0 float32 [batch, neurons], [W_i float32 CSR], b float32 [neurons])."""
    if not 0 < nnz_per_row <= neurons:
        raise ValueError("nnz_per_row must be in [1, neurons]")
    rng = np.random.default_rng(seed)
    y0 = (rng.random((batch, neurons)) < input_density).astype(np.float32)
    rows = np.repeat(np.arange(neurons), nnz_per_row)
    ws = []
    for _ in range(layers):
        cols = np.concatenate([np.sort(rng.choice(neurons, nnz_per_row, replace=False))
                               for _ in range(neurons)])
        if weights == "challenge":
            vals = np.full(rows.size, 1.0 / 16, np.float32)
        elif weights == "uniform":
            vals = rng.uniform(0.0, 1.0 / 8, rows.size).astype(np.float32)
        else:
            raise ValueError("weights must be uniform or challenge")
        w = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(neurons, neurons),
                                    dtype=np.float32)
        w.sort_indices()
        ws.append(w)
    return y0, ws, np.full(neurons, bias, np.float32)


def reference(y0, ws, b, clamp=32.0):
    """The network in float64."""
    y = y0.astype(np.float64)
    for w in ws:
        y = np.minimum(np.maximum(np.asarray(y @ w.astype(np.float64)) + b, 0.0), clamp)
    return y


def run_request(layers, init, weight, bias, clamp=32.0, output="out", inline=True, name=""):
    """The RunRequest as a dict (protobuf's JSON mapping): one repeat of
    `layers` iterations, carry "y" from `init`, param "w" bound to weight(i),
    body Y · W + bias, relu, clamp. init, weight(i) and bias are GraphOperand
    dicts ({"ref": {"name": ...}}, {"file": ...}, {"inline": ...})."""
    out = {"output": output, "inline": inline}
    if name:
        out["name"] = name
    return {
        "ops": [{
            "name": output,
            "repeat": {
                "times": layers,
                "init": init,
                "carry": "y",
                "params": ["w"],
                "bindings": [{"operands": [weight(i)]} for i in range(layers)],
                "body": [{
                    "name": "layer",
                    "spmm": {"a": {"output": "y"}, "b": {"output": "w"}, "bias": bias,
                             "relu": True, "clampMax": clamp},
                }],
            },
        }],
        "outputs": [out],
    }


def write_mtx(path, w):
    """Matrix Market coordinate real general, values as float32 exactly (%.9g)."""
    coo = w.tocoo()
    with open(path, "w") as f:
        f.write("%%MatrixMarket matrix coordinate real general\n")
        f.write("%d %d %d\n" % (coo.shape[0], coo.shape[1], coo.nnz))
        for r, c, v in zip(coo.row, coo.col, coo.data):
            f.write("%d %d %.9g\n" % (r + 1, c + 1, v))


def write_example(out, y0, ws, b, prefix="dnn/", clamp=32.0):
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "y0.npy"), y0)
    np.save(os.path.join(out, "bias.npy"), b)
    for i, w in enumerate(ws):
        write_mtx(os.path.join(out, "w%03d.mtx" % i), w)
    np.save(os.path.join(out, "y_ref.npy"), reference(y0, ws, b, clamp))
    held = run_request(len(ws), {"file": "y0.npy"},
                       lambda i: {"ref": {"name": "%sw%03d" % (prefix, i)}},
                       {"ref": {"name": prefix + "bias"}}, clamp)
    files = run_request(len(ws), {"file": "y0.npy"}, lambda i: {"file": "w%03d.mtx" % i},
                        {"file": "bias.npy"}, clamp)
    with open(os.path.join(out, "graph.json"), "w") as f:
        json.dump(held, f, indent=1)
    with open(os.path.join(out, "graph_inline.json"), "w") as f:
        json.dump(files, f, indent=1)
    here = os.path.abspath(out)
    with open(os.path.join(out, "upload.sh"), "w") as f:
        f.write("#!/bin/sh\n"
                "# The held tensors graph.json names (sparsectl on PATH or $SPARSECTL).\n")
        f.write("set -e\nS=${SPARSECTL:-sparsectl}\n")
        f.write('"$S" put %s/bias.npy --name %sbias -q\n' % (here, prefix))
        for i in range(len(ws)):
            f.write('"$S" put %s/w%03d.mtx --name %sw%03d -q\n' % (here, i, prefix, i))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write into")
    p.add_argument("--neurons", type=int, default=1024)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--nnz-per-row", type=int, default=32)
    p.add_argument("--batch", type=int, default=1200)
    p.add_argument("--input-density", type=float, default=0.3)
    p.add_argument("--weights", choices=["uniform", "challenge"], default="uniform")
    p.add_argument("--bias", type=float, default=-0.3)
    p.add_argument("--clamp", type=float, default=32.0)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--prefix", default="dnn/", help="name prefix of the held tensors")
    a = p.parse_args(argv)
    y0, ws, b = make_network(a.neurons, a.layers, a.nnz_per_row, a.batch, a.seed,
                             a.input_density, a.weights, a.bias)
    write_example(a.out, y0, ws, b, a.prefix, a.clamp)
    y = np.load(os.path.join(a.out, "y_ref.npy"))
    print("wrote %s: %d layers of %d neurons (%d non-zeros per row), input %dx%d; "
          "output: %.1f%% non-zero, max %.3g" % (a.out, a.layers, a.neurons, a.nnz_per_row,
                                                  a.batch, a.neurons, 100.0 * (y > 0).mean(),
                                                  y.max()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
