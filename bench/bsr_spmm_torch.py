#!/usr/bin/env python3
"""BSR x dense SpMM (bf16) in PyTorch: the cases of bench_bsr_spmm.

C[M, N] = A[M, K] @ B[K, N], A block-sparse with square R x R blocks, bf16
values, bf16 output. Contenders:
  torch_triton_bsr  torch.sparse._triton_ops.bsr_dense_mm on A as a
                    torch.sparse_bsr tensor (Tensor.to_sparse_bsr)
  torch_dense       torch.matmul on the dense equivalent of A (zeros filled),
                    bf16 with f32 reduction
Each is timed with triton.testing.do_bench (median; it clears the L2 before
every run). Before timing, each runs once into a NaN-filled output and 64
sampled rows are compared against a float64 reference (relative Frobenius
error must be < 2e-2). Block structure as in the C++ benchmark (its own RNG):
"balanced" chooses the blocks uniformly at random within each block row, the
same count per block row where possible; "random" chooses them uniformly over
the whole block grid. Values uniform in [-1, 1], never zero.

  python3 bench/bsr_spmm_torch.py [--cases square,llm] [--quick]
      [--pattern balanced|random] [--llm-block 64] [--seed 1] [--csv out.csv]
"""

import argparse
import csv
import math
import sys

import torch

TOLERANCE = 2e-2

try:
    import triton
    import triton.testing

    TRITON_ERROR = None
except Exception as e:  # noqa: BLE001 - report any import failure
    triton = None
    TRITON_ERROR = f"triton unavailable: {e!r}"

try:
    from torch.sparse._triton_ops import bsr_dense_mm

    BSR_ERROR = None
except Exception as e:  # noqa: BLE001
    bsr_dense_mm = None
    BSR_ERROR = f"torch.sparse._triton_ops.bsr_dense_mm unavailable: {e!r}"


def nonzero_bf16(shape, gen):
    """Uniform in [-1, 1] rounded to bf16, resampled where it rounds to 0."""
    v = (torch.rand(shape, generator=gen, device="cuda") * 2 - 1).to(torch.bfloat16)
    while True:
        zero = v == 0
        count = int(zero.sum())
        if count == 0:
            return v
        fresh = (torch.rand(count, generator=gen, device="cuda") * 2 - 1).to(torch.bfloat16)
        v[zero] = fresh


def block_mask(mb, kb, density, pattern, gen):
    """[mb, kb] bool: which blocks are present."""
    total = min(max(round(density * mb * kb), 1), mb * kb)
    if pattern == "balanced":
        counts = torch.full((mb,), total // mb, device="cuda", dtype=torch.int64)
        extra = torch.randperm(mb, generator=gen, device="cuda")[: total % mb]
        counts[extra] += 1
        # A random rank per cell within its row; keep the lowest `count`.
        keys = torch.rand((mb, kb), generator=gen, device="cuda")
        ranks = keys.argsort(dim=1).argsort(dim=1)
        return ranks < counts[:, None]
    cells = torch.randperm(mb * kb, generator=gen, device="cuda")[:total]
    mask = torch.zeros(mb * kb, dtype=torch.bool, device="cuda")
    mask[cells] = True
    return mask.view(mb, kb)


def make_case(m, k, n, r, density, pattern, seed):
    gen = torch.Generator(device="cuda")
    gen.manual_seed(seed)
    mb, kb = m // r, k // r
    mask = block_mask(mb, kb, density, pattern, gen)
    nnzb = int(mask.sum())
    full = mask.repeat_interleave(r, dim=0).repeat_interleave(r, dim=1)
    a = nonzero_bf16((m, k), gen) * full  # bf16: x * 1 and x * 0 are exact
    b = nonzero_bf16((k, n), gen)
    return a, b, nnzb, mask


def to_bsr(a, r, mask):
    """A as torch.sparse_bsr via to_sparse_bsr; built from the mask if that fails."""
    try:
        bsr = a.to_sparse_bsr((r, r))
        note = "to_sparse_bsr"
    except Exception as e:  # noqa: BLE001
        mb, kb = mask.shape
        counts = mask.sum(dim=1)
        crow = torch.zeros(mb + 1, dtype=torch.int64, device=a.device)
        crow[1:] = counts.cumsum(0)
        col = mask.nonzero()[:, 1]
        blocks = a.view(mb, r, kb, r).permute(0, 2, 1, 3)[mask].contiguous()
        bsr = torch.sparse_bsr_tensor(crow, col, blocks, size=a.shape)
        note = f"sparse_bsr_tensor (to_sparse_bsr failed: {e!r})"
    return bsr, note


def rel_error(ref, got):
    got = got.double()
    if not torch.isfinite(got).all():
        return float("nan")
    return float((got - ref).norm() / ref.norm().clamp_min(1e-300))


def median_ms(fn, warmup, rep):
    return float(triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="square,llm")
    p.add_argument("--quick", action="store_true", help="a small subset of the cases")
    p.add_argument("--pattern", choices=["balanced", "random"], default="balanced")
    p.add_argument("--llm-block", type=int, default=64)
    p.add_argument("--square-blocks", default=None, help="default 16,32,64,128")
    p.add_argument("--tokens", default=None, help="N of the llm cases; default 16,128,2048,8192")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check-rows", type=int, default=64)
    p.add_argument("--warmup-ms", type=int, default=25, help="do_bench warmup")
    p.add_argument("--rep-ms", type=int, default=100, help="do_bench rep")
    p.add_argument("--ref-size", type=int, default=8192)
    p.add_argument("--csv", default=None)
    args = p.parse_args()

    if not torch.cuda.is_available():
        print("no GPU", file=sys.stderr)
        return 1
    if triton is None:
        print(TRITON_ERROR, file=sys.stderr)
        return 1
    # f32 accumulation for the dense bf16 product, as in the C++ benchmark.
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False

    groups = [g for g in args.cases.split(",") if g]
    for g in groups:
        if g not in ("square", "llm"):
            print(f"unknown case group {g} (square, llm)", file=sys.stderr)
            return 1
    specs = []
    if "square" in groups:
        blocks = [16, 32, 64, 128] if not args.quick else [32, 128]
        if args.square_blocks:
            blocks = [int(x) for x in args.square_blocks.split(",")]
        specs += [("square", 4096, 4096, 4096, r, 0.125) for r in blocks]
    if "llm" in groups:
        shapes = [(4096, 4096), (11008, 4096), (4096, 11008)]
        sparsities = [0.5, 0.75, 0.9]
        ns = [16, 128, 2048, 8192]
        if args.quick:
            shapes, sparsities, ns = [(4096, 4096)], [0.5, 0.9], [16, 2048]
        if args.tokens:
            ns = [int(x) for x in args.tokens.split(",")]
        specs += [
            ("llm", m, k, n, args.llm_block, 1.0 - s) for (m, k) in shapes for s in sparsities for n in ns
        ]

    s = args.ref_size
    x = torch.rand((s, s), device="cuda").to(torch.bfloat16)
    dense_ref_ms = median_ms(lambda: torch.matmul(x, x), args.warmup_ms, args.rep_ms)
    dense_tflops = 2.0 * s**3 / (dense_ref_ms * 1e-3) / 1e12
    del x
    print(
        f"GPU {torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}"
    )
    print(f"dense reference: torch.matmul bf16 {s}^3 = {dense_tflops:.1f} TFLOP/s (do_bench median)")
    print(f"pattern {args.pattern}; seed {args.seed}; do_bench warmup {args.warmup_ms} ms, rep {args.rep_ms} ms")
    if BSR_ERROR:
        print(BSR_ERROR)

    rows = []
    for idx, (group, m, k, n, r, density) in enumerate(specs):
        if m % r or k % r:
            print(f"\n== {group} M={m} K={k} block={r}: skipped (block does not divide the shape)")
            continue
        seed = args.seed * 1000003 + idx
        a, b, nnzb, mask = make_case(m, k, n, r, density, args.pattern, seed)
        achieved = nnzb / ((m // r) * (k // r))
        print(f"\n== {group} M={m} K={k} N={n} block={r}: {nnzb} blocks (density {achieved:.4f})")
        gen = torch.Generator(device="cuda")
        gen.manual_seed(seed + 1)
        sample = torch.randperm(m, generator=gen, device="cuda")[: args.check_rows].sort().values
        ref = a[sample].double() @ b.double()
        flops = 2.0 * nnzb * r * r * n
        base = dict(case=group, M=m, K=k, N=n, block=r, density=achieved, nnz_blocks=nnzb)

        results = []
        # Dense.
        out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device="cuda")
        torch.matmul(a, b, out=out)
        err = rel_error(ref, out[sample])
        t = median_ms(lambda: torch.matmul(a, b), args.warmup_ms, args.rep_ms)
        results.append(("torch_dense", t, err, "OK" if err < TOLERANCE else "FAIL", "dense equivalent of A"))
        del out
        # Triton BSR.
        if bsr_dense_mm is None:
            results.append(("torch_triton_bsr", float("nan"), float("nan"), "n/a", BSR_ERROR))
        else:
            bsr, how = to_bsr(a, r, mask)
            try:
                if bsr.values().shape[0] != nnzb:
                    raise RuntimeError(f"BSR holds {bsr.values().shape[0]} blocks, expected {nnzb}")
                out = torch.full((m, n), float("nan"), dtype=torch.bfloat16, device="cuda")
                try:
                    got = bsr_dense_mm(bsr, b, out=out)
                except TypeError:  # no out= in this version
                    got = bsr_dense_mm(bsr, b)
                torch.cuda.synchronize()
                err = rel_error(ref, got[sample])
                del out, got
                t = median_ms(lambda: bsr_dense_mm(bsr, b), args.warmup_ms, args.rep_ms)
                results.append(("torch_triton_bsr", t, err, "OK" if err < TOLERANCE else "FAIL", how))
            except Exception as e:  # noqa: BLE001 - skip, keep going
                msg = f"{type(e).__name__}: {e}".splitlines()[0][:200]
                print(f"  torch_triton_bsr n/a: {msg}")
                results.append(("torch_triton_bsr", float("nan"), float("nan"), "n/a", msg))
            del bsr
        dense_ms = results[0][1]
        for name, t, err, status, note in results:
            tflops = flops / (t * 1e-3) / 1e12 if math.isfinite(t) else float("nan")
            row = dict(base)
            row.update(
                contender=name,
                median_ms=t,
                eff_tflops=tflops,
                t_vs_dense=t / dense_ms if math.isfinite(t) else float("nan"),
                frac_dense_tc=tflops / dense_tflops,
                check_rel_err=err,
                status=status,
                timing="triton.testing.do_bench median",
                note=note,
            )
            rows.append(row)
            print(f"  {name:<16} {t:9.4f} ms  {tflops:8.2f} TFLOP/s  check {err:.2e} {status}")
        del a, b, ref, mask
        torch.cuda.empty_cache()

    print(
        f"\n{'case':<6} {'M':>6} {'K':>6} {'N':>5} {'block':>5} {'density':>7}  {'contender':<16} "
        f"{'median ms':>10} {'TFLOP/s':>8} {'t/dense':>8} {'frac TC':>8} {'check err':>9} {'stat':<5} note"
    )
    for r_ in rows:
        print(
            f"{r_['case']:<6} {r_['M']:>6} {r_['K']:>6} {r_['N']:>5} {r_['block']:>5} {r_['density']:>7.4f}  "
            f"{r_['contender']:<16} {r_['median_ms']:>10.4f} {r_['eff_tflops']:>8.2f} {r_['t_vs_dense']:>8.3f} "
            f"{r_['frac_dense_tc']:>8.3f} {r_['check_rel_err']:>9.2e} {r_['status']:<5} {r_['note']}"
        )
    print(
        "\nTFLOP/s counts useful FLOPs only (2*blocks*R^2*N), dense included; t/dense = time / "
        f"torch dense time of the case; frac TC = TFLOP/s / the {s}^3 dense rate."
    )
    if args.csv:
        fields = [
            "case", "M", "K", "N", "block", "density", "nnz_blocks", "contender", "median_ms",
            "eff_tflops", "t_vs_dense", "frac_dense_tc", "check_rel_err", "status", "timing", "note",
        ]
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for r_ in rows:
                w.writerow(r_)
        print(f"CSV: {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
