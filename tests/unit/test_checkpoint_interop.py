#!/usr/bin/python3
"""Reads sparsed checkpoints with an independent safetensors reader.

For every .mtx in --data and for a few small matrices written here, runs
`checkpoint_tool FILE.mtx OUT.safetensors` (sparsed::checkpoint::Save of the
matrix as CSR "A", plus a dense "A_dense" when small) and reads OUT with the
reader below (json + numpy only, written from the safetensors layout): header
length, padding, contiguous arrays, CRC-32C checksums (a table-driven CRC in
pure Python), the sparsed metadata. The CSR rebuilt with scipy.sparse must
equal scipy.io.mmread of the same file (after summing duplicates) at f32
precision, and the dense array must equal its .toarray().
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import scipy.io
import scipy.sparse as sp

NP_DTYPES = {"F32": "<f4", "F16": "<f2", "I32": "<i4", "I64": "<i8", "BF16": "<u2"}
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8}
CRC_CHECK_LIMIT = 1 << 20  # pure-Python CRC is slow; bigger arrays are skipped


def crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def read_safetensors(path):
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert 2 <= n <= len(raw) - 8, f"header length {n}"
    assert (8 + n) % 8 == 0, "data region is not 8-byte aligned"
    text = raw[8:8 + n].decode("utf-8")
    body = text.rstrip(" ")
    assert body.startswith("{") and body.endswith("}"), "header is not a padded JSON object"
    header = json.loads(body)
    data = raw[8 + n:]
    meta = header.pop("__metadata__")
    assert all(isinstance(v, str) for v in meta.values()), "metadata values must be strings"
    spans = sorted((a["data_offsets"][0], a["data_offsets"][1], k) for k, a in header.items())
    at = 0
    for begin, end, key in spans:
        assert begin == at, f"array {key} starts at {begin}, expected {at}"
        at = end
    assert at == len(data), f"arrays cover {at} of {len(data)} bytes"
    checksums = json.loads(meta["sparsed.checksums"])
    assert crc32c(meta["sparsed.tensors"].encode()) == int(checksums["sparsed.tensors"], 16)
    arrays = {}
    for key, a in header.items():
        begin, end = a["data_offsets"]
        count = int(np.prod(a["shape"], dtype=np.int64))
        assert end - begin == count * SIZES[a["dtype"]], f"array {key} size"
        chunk = data[begin:end]
        if len(chunk) <= CRC_CHECK_LIMIT:
            assert crc32c(chunk) == int(checksums[key], 16), f"array {key} checksum"
        arrays[key] = np.frombuffer(chunk, dtype=NP_DTYPES[a["dtype"]]).reshape(a["shape"])
    return meta, arrays


def canonical(m):
    m = sp.csr_matrix(m)
    m.sum_duplicates()
    m.sort_indices()
    return m


def check(tool, path, tmp):
    out = pathlib.Path(tmp) / (path.stem + ".safetensors")
    subprocess.run([tool, str(path), str(out)], check=True, capture_output=True, text=True)
    meta, arrays = read_safetensors(out)
    if meta["format"] != "sparsed-checkpoint" or meta["version"] != "2":
        return f"metadata {meta['format']!r} {meta['version']!r}"
    # Version 2 keys arrays by tensor id; names live in the metadata.
    described = json.loads(meta["sparsed.tensors"])
    if any(t["key"] != t["id"] for t in described):
        return "a tensor is not keyed by its id"
    tensors = {t["name"] or t["id"]: t for t in described}
    a = tensors["A"]
    if (a["format"], a["dtype"], a["id"], a["name"]) != ("csr", "f32", "a-id", "A"):
        return f"tensor A described as {a}"
    if a["labels"] != {"source": str(path)}:
        return f"labels {a['labels']}"
    comps = a["components"]
    shape = tuple(a["shape"])
    ours = sp.csr_matrix((arrays[comps["values"]], arrays[comps["col_idx"]],
                          arrays[comps["row_ptr"]]), shape=shape)
    if ours.nnz != a["nnz"]:
        return f"nnz {ours.nnz} != metadata {a['nnz']}"
    ref = sp.coo_matrix(scipy.io.mmread(str(path)))
    if shape != ref.shape:
        return f"shape {shape} != scipy {ref.shape}"
    theirs = canonical(ref.astype(np.float64))
    if not np.array_equal(ours.indptr, theirs.indptr):
        return "row pointers differ"
    if not np.array_equal(ours.indices, theirs.indices):
        return "column indices differ"
    if ours.nnz == ref.nnz:
        # No duplicates: each value is one f32 rounding of the file's text.
        same = ours.data == theirs.data.astype(np.float32)
    else:
        same = np.isclose(ours.data.astype(np.float64), theirs.data, rtol=1e-6, atol=0)
    if not np.all(same):
        return f"{np.count_nonzero(~same)} values differ"
    if "A_dense" in tensors:
        d = tensors["A_dense"]
        if d["format"] != "dense" or tuple(d["shape"]) != shape:
            return f"dense described as {d}"
        dense = arrays[d["components"]["values"]]
        if dense.shape != shape or not np.array_equal(dense, ours.toarray()):
            return "dense array differs from the CSR"
    elif shape[0] * shape[1] <= (1 << 20):
        return "no dense array for a small matrix"
    return None


def write_small_matrices(tmp):
    rng = np.random.default_rng(1234)
    paths = []
    for rows, cols, density in [(5, 7, 0.4), (1, 1, 1.0), (6, 3, 0.0), (40, 33, 0.1)]:
        m = sp.random(rows, cols, density=density, format="coo", random_state=rng,
                      dtype=np.float64)
        m.data = m.data.astype(np.float32).astype(np.float64) - 0.5
        p = pathlib.Path(tmp) / f"small_{rows}x{cols}.mtx"
        scipy.io.mmwrite(str(p), m, precision=9)
        paths.append(p)
    return paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        files = write_small_matrices(tmp) + sorted(pathlib.Path(args.data).glob("*.mtx"))
        for path in files:
            try:
                err = check(args.tool, path, tmp)
            except (subprocess.CalledProcessError, AssertionError, ValueError, KeyError) as e:
                detail = getattr(e, "stderr", "") or ""
                err = f"{type(e).__name__} {e} {detail}".strip()
            print(f"{'FAIL' if err else 'ok  '} {path.name}" + (f": {err}" if err else ""))
            failures += err is not None
    print(f"{len(files) - failures}/{len(files)} checkpoints match scipy")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
