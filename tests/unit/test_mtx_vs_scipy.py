#!/usr/bin/python3
"""Checks sparsed's Matrix Market reader against scipy.io.mmread.

For every .mtx in --data, runs `mtx_dump FILE` (sparsed::io::ReadMatrixMarket,
printing 0-based COO triplets) and compares with scipy's reading of the same
file: same shape, same number of stored entries after symmetric expansion,
entries sorted row-major, and, after summing duplicates on both sides, the same
CSR pattern and values equal at f32 precision.
"""
import argparse
import pathlib
import subprocess
import sys

import numpy as np
import scipy.io
import scipy.sparse as sp


def read_dump(dump, path):
    out = subprocess.run([dump, str(path)], check=True, capture_output=True, text=True).stdout
    tokens = out.split()
    rows, cols, nnz = (int(t) for t in tokens[:3])
    trip = np.array(tokens[3:], dtype=np.float64).reshape(-1, 3)
    if trip.shape[0] != nnz:
        raise AssertionError(f"dump says nnz={nnz} but prints {trip.shape[0]} entries")
    r = trip[:, 0].astype(np.int64)
    c = trip[:, 1].astype(np.int64)
    # %.9g of an f32 parses back to exactly that f32.
    v = trip[:, 2].astype(np.float32)
    return (rows, cols), r, c, v


def canonical(m):
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    m.sort_indices()
    return m


def check(dump, path):
    shape, r, c, v = read_dump(dump, path)
    ref = scipy.io.mmread(str(path))
    ref = sp.coo_matrix(ref)
    if shape != ref.shape:
        return f"shape {shape} != scipy {ref.shape}"
    if len(v) != ref.nnz:
        return f"{len(v)} stored entries != scipy {ref.nnz}"
    key = r * shape[1] + c
    if np.any(np.diff(key) < 0):
        return "entries are not sorted row-major"
    ours = canonical(sp.coo_matrix((v.astype(np.float64), (r, c)), shape=shape))
    theirs = canonical(ref.astype(np.float64))
    if not np.array_equal(ours.indptr, theirs.indptr):
        return "row pointers differ"
    if not np.array_equal(ours.indices, theirs.indices):
        return "column indices differ"
    want = theirs.data.astype(np.float32)
    if ours.nnz == len(v):
        # No duplicates: each value is one f32 rounding of the file's text.
        bad = np.flatnonzero(ours.data.astype(np.float32) != want)
    else:
        bad = np.flatnonzero(~np.isclose(ours.data, theirs.data, rtol=1e-6, atol=0))
    if bad.size:
        k = bad[0]
        return f"{bad.size} values differ, first at csr position {k}: {ours.data[k]!r} vs {want[k]!r}"
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    files = sorted(pathlib.Path(args.data).glob("*.mtx"))
    if not files:
        print(f"no .mtx files in {args.data}", file=sys.stderr)
        return 1
    failures = 0
    for path in files:
        try:
            err = check(args.dump, path)
        except (subprocess.CalledProcessError, AssertionError, ValueError) as e:
            detail = getattr(e, "stderr", "") or ""
            err = f"{e} {detail}".strip()
        print(f"{'FAIL' if err else 'ok  '} {path.name}" + (f": {err}" if err else ""))
        failures += err is not None
    print(f"{len(files) - failures}/{len(files)} files match scipy")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
