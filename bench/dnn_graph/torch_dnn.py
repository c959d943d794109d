#!/usr/bin/env python3
"""The DNN example (make_dnn.py) as PyTorch's in-process cuSPARSE chain: the
peer for Graphs.Run on the GPU (issue 16).

Every layer is Y = clamp(relu(Y · W_i + b), 0, 32). PyTorch multiplies a CSR
matrix on the left, so the chain runs on Yᵀ: Yᵀ ← clamp(relu(W_iᵀ · Yᵀ + bᵀ)),
with each W_iᵀ a torch.sparse_csr_tensor on the GPU (torch.sparse.mm goes to
cuSPARSE SpMM). Prints the GPU time of one forward pass (CUDA events around
the whole chain, after warm-up; median and minimum of --repeats) and the
wall time of the same, and checks the output against make_dnn.reference
(float64).

    python3 bench/dnn_graph/torch_dnn.py --layers 30
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_dnn  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=int, default=1024)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--nnz-per-row", type=int, default=32)
    p.add_argument("--batch", type=int, default=1200)
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--repeats", type=int, default=30)
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not importable: nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    y0, ws, b = make_dnn.make_network(a.neurons, a.layers, a.nnz_per_row, a.batch, a.seed)
    dev = torch.device("cuda")
    wts = []
    for w in ws:
        t = w.T.tocsr()
        t.sort_indices()
        wts.append(torch.sparse_csr_tensor(torch.from_numpy(t.indptr.astype(np.int64)),
                                           torch.from_numpy(t.indices.astype(np.int64)),
                                           torch.from_numpy(t.data), size=t.shape,
                                           device=dev))
    bias = torch.from_numpy(b).to(dev).reshape(-1, 1)
    yt0 = torch.from_numpy(np.ascontiguousarray(y0.T)).to(dev)

    def forward():
        y = yt0
        for wt in wts:
            y = torch.clamp(torch.relu(torch.sparse.mm(wt, y) + bias), max=32.0)
        return y

    for _ in range(3):
        forward()
    torch.cuda.synchronize()
    gpu, wall = [], []
    for _ in range(a.repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        t = time.perf_counter()
        start.record()
        out = forward()
        stop.record()
        torch.cuda.synchronize()
        wall.append((time.perf_counter() - t) * 1e3)
        gpu.append(start.elapsed_time(stop))
    got = out.T.cpu().double().numpy()
    want = make_dnn.reference(y0, ws, b)
    err = float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))
    print("torch %s, %s: DNN %d layers, %d neurons, %d non-zeros per row, batch %d" %
          (torch.__version__, torch.cuda.get_device_name(), a.layers, a.neurons, a.nnz_per_row,
           a.batch))
    print("torch cuSPARSE chain: GPU median %.3f ms (min %.3f), wall median %.3f ms (min %.3f), "
          "%d repeats; max rel err vs float64 %.2e" %
          (statistics.median(gpu), min(gpu), statistics.median(wall), min(wall), a.repeats, err))
    return 0 if err < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
