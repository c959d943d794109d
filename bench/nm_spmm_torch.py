#!/usr/bin/python3
"""PyTorch's peers for bench_nm_spmm, on the same shapes: Y = X·Wᵀ (F.linear),
W [O, K] 2:4 along K, bf16.

Contenders (each where this PyTorch has it):
  torch_dense        F.linear on the dense W (cuBLAS)
  cslt_default       torch._cslt_sparse_mm (cuSPARSELt), default algorithm
  cslt_searched      the same with the algorithm torch._cslt_sparse_mm_search picks
  semi_structured    F.linear on to_sparse_semi_structured(W) (PyTorch's default
                     backend for it)
Timing: CUDA events, interleaved rounds after warm-up, median; W rotated
among copies so that it is read from device memory. Each contender's output
is checked against torch_dense's (relative Frobenius error).

  python3 bench/nm_spmm_torch.py [--weights 4096x4096,...] [--tokens 1,16,...]
                                 [--rounds 20] [--quick] [--csv out.csv]
"""
import argparse
import math
import statistics
import sys

import torch
import torch.nn.functional as F


def prune24(w):
    """Keeps the two largest |w| of every group of four along K."""
    o, k = w.shape
    g = w.reshape(o, k // 4, 4)
    idx = g.abs().topk(2, dim=-1).indices
    mask = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True)
    return (g * mask).reshape(o, k)


def time_rounds(fns, rounds, warmup):
    times = [[] for _ in fns]
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for r in range(warmup + rounds):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            torch.cuda._sleep(200000)  # covers the host's launch work
            start.record()
            fn(r)
            stop.record()
            stop.synchronize()
            if r >= warmup:
                times[i].append(start.elapsed_time(stop))
    return [statistics.median(t) if t else math.nan for t in times]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="4096x4096,8192x8192,11008x4096,4096x11008")
    ap.add_argument("--tokens", default="1,16,64,256,2048,8192")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--csv")
    a = ap.parse_args()
    if a.quick:
        a.weights, a.tokens, a.rounds = "4096x4096", "1,64,2048", 8
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 50 << 20)
    print(f"GPU {props.name}, torch {torch.__version__}, cuSPARSELt "
          f"{'yes' if hasattr(torch, '_cslt_sparse_mm') else 'no'}")
    have_ss = True
    try:
        from torch.sparse import to_sparse_semi_structured
    except ImportError:
        have_ss = False
    csv = open(a.csv, "w") if a.csv else None
    if csv:
        csv.write("o,k,tokens,contender,median_ms,tflops_dense_equiv,ratio_vs_dense,rel_error\n")
    print(f"{'O':>6} {'K':>6} {'T':>6}  {'contender':<16} {'median_ms':>10} {'TFLOP/s':>9} "
          f"{'x_dense':>8} {'rel_err':>9}")
    torch.manual_seed(1)
    for shape in a.weights.split(","):
        o, k = map(int, shape.split("x"))
        copies = max(1, min(8, math.ceil(4 * l2 / (o * k * 2))))
        ws = [prune24(torch.randn(o, k, device=dev)).to(torch.bfloat16) for _ in range(copies)]
        compressed = [torch._cslt_compress(w) for w in ws] if hasattr(torch, "_cslt_compress") else None
        semi = None
        if have_ss:
            try:
                semi = [to_sparse_semi_structured(w) for w in ws]
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"  to_sparse_semi_structured unavailable: {e}", file=sys.stderr)
        for t in map(int, a.tokens.split(",")):
            x = torch.randn(t, k, device=dev).to(torch.bfloat16)
            names, fns = ["torch_dense"], [lambda r: F.linear(x, ws[r % copies])]
            alg = None
            if compressed is not None:
                names.append("cslt_default")
                fns.append(lambda r: torch._cslt_sparse_mm(compressed[r % copies], x.t(),
                                                           transpose_result=True))
                try:
                    found = torch._cslt_sparse_mm_search(compressed[0], x.t(), transpose_result=True)
                    alg = found[0] if isinstance(found, tuple) else found
                    names.append("cslt_searched")
                    fns.append(lambda r: torch._cslt_sparse_mm(compressed[r % copies], x.t(),
                                                               transpose_result=True, alg_id=alg))
                except Exception as e:  # noqa: BLE001
                    print(f"  cuSPARSELt search failed at T={t}: {e}", file=sys.stderr)
            if semi is not None:
                names.append("semi_structured")
                fns.append(lambda r: F.linear(x, semi[r % copies]))
            ref = F.linear(x, ws[0]).float()
            errors = []
            for i, fn in enumerate(fns):
                try:
                    got = fn(0).float()
                    if got.shape != ref.shape:
                        got = got.reshape(ref.shape)
                    errors.append(((got - ref).norm() / ref.norm()).item())
                except Exception as e:  # noqa: BLE001
                    print(f"  {names[i]} failed at T={t}: {e}", file=sys.stderr)
                    errors.append(math.nan)
                    fns[i] = None
            meds = time_rounds(fns, a.rounds, a.warmup)
            flops = 2.0 * o * k * t
            for name, med, err in zip(names, meds, errors):
                ratio = meds[0] / med if med == med else math.nan
                tfl = flops / med * 1e-9 if med == med else math.nan
                extra = f"  (alg {alg})" if name == "cslt_searched" else ""
                print(f"{o:>6} {k:>6} {t:>6}  {name:<16} {med:>10.4f} {tfl:>9.1f} {ratio:>8.2f} "
                      f"{err:>9.2e}{extra}", flush=True)
                if csv:
                    csv.write(f"{o},{k},{t},{name},{med},{tfl},{ratio},{err}\n")
    if csv:
        csv.close()


if __name__ == "__main__":
    main()
