#!/usr/bin/env python3
"""Times the DNN example (make_dnn.py) through the daemon: the whole network
in one Graphs.Run call, next to the same layers as single Compute.Spmm calls
(each result held, fed to the next call and deleted after it; the last one
inline), from the Python client. Checks that both give the same bits (on the
CPU backend), or agree within 1e-5 relative (on a GPU, where the Y·W form
scatters with atomics and the last bits vary).

    bench/dnn_graph/time_dnn.py --sparsed build/server/sparsed --layers 30
    bench/dnn_graph/time_dnn.py --server 127.0.0.1:50051 --layers 30

With --sparsed it starts that daemon (CPU backend unless --device says
otherwise) on a free port; with --server it uses a running one. Prints the
median and minimum wall time per forward pass of each way, the server's
compute time, and the time of one call per layer.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "client", "python"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)

import make_dnn  # noqa: E402
import sparsed_client as sc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from sparsed.v1 import graph_pb2, graph_pb2_grpc  # noqa: E402


def measure(args, client):
    y0, ws, b = make_dnn.make_network(args.neurons, args.layers, args.nnz_per_row, args.batch,
                                      args.seed)
    client.upload(y0, name="time/y0")
    client.upload(b, name="time/bias")
    for i, w in enumerate(ws):
        client.upload(w, name="time/w%03d" % i)
    graphs = graph_pb2_grpc.GraphsStub(client.channel)
    request = json_format.ParseDict(make_dnn.run_request(
        args.layers, {"ref": {"name": "time/y0"}},
        lambda i: {"ref": {"name": "time/w%03d" % i}}, {"ref": {"name": "time/bias"}}),
        graph_pb2.RunRequest())

    def one_run():
        r = graphs.Run(request)
        return sc.from_inline(r.results[0].inline), r.compute_ms, r.elapsed_ms

    def single_calls():
        prev = "time/y0"
        for i in range(args.layers):
            last = i == args.layers - 1
            name = "" if last else "time/h%d" % i
            res = client.spmm(prev, "time/w%03d" % i, bias="time/bias", relu=True,
                              clamp_max=32.0, inline=last, name=name)
            if prev != "time/y0":
                client.delete(prev)
            prev = name
        return res

    rows = []
    for label, fn in (("one Run", one_run), ("%d Spmm calls" % args.layers, single_calls)):
        fn()  # warm-up
        walls, server = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            out = fn()
            walls.append((time.perf_counter() - t) * 1e3)
            if isinstance(out, tuple):
                server.append(out[1])
        rows.append((label, statistics.median(walls), min(walls),
                     statistics.median(server) if server else None))
    graph_out = one_run()[0]
    calls_out = single_calls()
    g = np.asarray(graph_out, np.float32)
    c = np.asarray(calls_out, np.float32)
    same = g.tobytes() == c.tobytes()
    diff = float(np.max(np.abs(g.astype(np.float64) - c) / np.maximum(1.0, np.abs(c))))
    return rows, (same, diff)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sparsed", help="start this daemon binary")
    g.add_argument("--server", help="address of a running daemon")
    p.add_argument("--device", default="cpu", help="--device of a started daemon")
    p.add_argument("--neurons", type=int, default=1024)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--nnz-per-row", type=int, default=32)
    p.add_argument("--batch", type=int, default=1200)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    if a.sparsed:
        os.environ.setdefault("SPARSED_TEST_DEVICE", a.device)
        from daemon_util import Daemon
        with Daemon(a.sparsed) as d:
            with sc.Client(d.address) as client:
                rows, same = measure(a, client)
    else:
        with sc.Client(a.server) as client:
            rows, same = measure(a, client)
    print("DNN: %d layers, %d neurons, %d non-zeros per row, batch %d" %
          (a.layers, a.neurons, a.nnz_per_row, a.batch))
    print("%-16s %12s %12s %16s %14s" % ("way", "median ms", "min ms", "server compute ms",
                                         "ms per layer"))
    for label, med, low, server in rows:
        print("%-16s %12.2f %12.2f %16s %14.2f" % (label, med, low,
                                                   "%.2f" % server if server else "-",
                                                   med / a.layers))
    same, diff = same
    print("results bit-identical: %s (max relative difference %.2e)" % ("yes" if same else "no",
                                                                         diff))
    ok = same or (a.device != "cpu" and diff <= 1e-5)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
