"""Independent references for the convert / prune / inspect integration tests:
naive decoders of every format's components, pruning, statistics and spy
grids computed with plain loops and numpy, and a small PNG decoder (zlib).
Nothing here uses the daemon or the client library."""

import math
import struct
import zlib

import numpy as np

INDEX = {0: "<i4", 4: "<i4", 5: "<i8"}  # DTYPE_UNSPECIFIED, I32, I64 -> numpy


def decode_dense(desc, parts):
    """The dense float64 matrix a downloaded tensor stands for (format numbers
    as in tensor.proto), decoded entry by entry from its raw components."""
    fmt = desc.format
    shape = tuple(desc.shape)
    idx = INDEX[desc.index_dtype]
    # An empty component sends no chunk at all.
    arr = lambda name, dt: np.frombuffer(parts.get(name, b""), dtype=dt)
    values = arr("values", "<f4").astype(np.float64)
    if fmt == 1:  # DENSE
        return values.reshape(shape).copy()
    rows, cols = shape
    out = np.zeros(shape)
    if fmt == 2:  # COO
        for r, c, v in zip(arr("row_idx", idx), arr("col_idx", idx), values):
            out[r, c] += v
    elif fmt == 3:  # CSR
        ptr, col = arr("row_ptr", idx), arr("col_idx", idx)
        assert len(ptr) == rows + 1 and ptr[0] == 0 and ptr[-1] == desc.nnz
        for r in range(rows):
            for k in range(ptr[r], ptr[r + 1]):
                out[r, col[k]] += values[k]
    elif fmt == 4:  # CSC
        ptr, row = arr("col_ptr", idx), arr("row_idx", idx)
        assert len(ptr) == cols + 1 and ptr[0] == 0 and ptr[-1] == desc.nnz
        for c in range(cols):
            for k in range(ptr[c], ptr[c + 1]):
                out[row[k], c] += values[k]
    elif fmt == 5:  # BSR
        br, bc = desc.block
        ptr, bcol = arr("block_row_ptr", idx), arr("block_col_idx", idx)
        assert len(ptr) == -(-rows // br) + 1 and ptr[-1] == desc.nnz
        assert len(values) == desc.nnz * br * bc
        for i in range(len(ptr) - 1):
            for k in range(ptr[i], ptr[i + 1]):
                blk = values[k * br * bc:(k + 1) * br * bc].reshape(br, bc)
                for a in range(br):
                    for b in range(bc):
                        r, c = i * br + a, bcol[k] * bc + b
                        if r < rows and c < cols:
                            out[r, c] += blk[a, b]
                        else:
                            assert blk[a, b] == 0, "padding outside the matrix must be zero"
    elif fmt == 6:  # NM
        n, m = desc.n, desc.m
        groups = cols // m
        assert desc.nnz == rows * groups * n and len(values) == desc.nnz
        meta = arr("meta", "<u4")
        words_per_row = -(-groups // 8)
        for r in range(rows):
            for g in range(groups):
                if (n, m) == (2, 4):
                    nib = (int(meta[r * words_per_row + g // 8]) >> (4 * (g % 8))) & 0xF
                    pos = [nib & 3, nib >> 2]
                else:
                    base = (r * groups + g) * n
                    pos = [int(p) for p in meta[base:base + n]]
                assert all(0 <= p < m for p in pos) and pos == sorted(set(pos)), (r, g, pos)
                for s in range(n):
                    out[r, g * m + pos[s]] += values[(r * groups + g) * n + s]
    else:
        raise ValueError("format %d" % fmt)
    return out


def _kept(total, sparsity):
    # round half away from zero, as C++ std::round; tests avoid exact halves
    return total - int(math.floor(sparsity * total + 0.5))


def prune_magnitude(a, sparsity, per_row=False):
    """Keep the largest |w| so that `sparsity` of the positions are zero;
    ties keep the smaller row-major position; zeros count as pruned first."""
    rows, cols = a.shape
    out = np.zeros_like(a)
    groups = [(r, [(r, c) for c in range(cols)]) for r in range(rows)] if per_row else \
        [(None, [(r, c) for r in range(rows) for c in range(cols)])]
    for _, cells in groups:
        keep = _kept(len(cells), sparsity)
        ranked = sorted((-abs(a[r, c]), r * cols + c, r, c) for r, c in cells if a[r, c] != 0)
        for _, _, r, c in ranked[:keep]:
            out[r, c] = a[r, c]
    return out


def prune_nm(a, n, m):
    """Keep the n largest |w| of every m consecutive entries of a row."""
    out = np.zeros_like(a)
    rows, cols = a.shape
    for r in range(rows):
        for g in range(0, cols, m):
            ranked = sorted(range(g, g + m), key=lambda c: (-abs(a[r, c]), c))
            for c in ranked[:n]:
                out[r, c] = a[r, c]
    return out


def prune_block(a, br, bc, sparsity):
    """Keep the br x bc blocks of largest Frobenius norm (edge blocks partial);
    `sparsity` of the block positions end up empty; ties keep the earlier block."""
    rows, cols = a.shape
    nbr, nbc = -(-rows // br), -(-cols // bc)
    norms = []
    for i in range(nbr):
        for j in range(nbc):
            blk = a[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
            norms.append((-math.sqrt(float((blk.astype(np.float64) ** 2).sum())), i * nbc + j, i, j))
    keep = _kept(nbr * nbc, sparsity)
    out = np.zeros_like(a)
    for norm, _, i, j in sorted(x for x in norms if x[0] != 0)[:keep]:
        out[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = a[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
    return out


def row_stats(dense):
    """min, max, mean, population std of non-zeros per row, histogram edges
    0, 1, 2, 4, ... up to just above max, and counts per bucket."""
    lengths = [int(np.count_nonzero(row)) for row in dense]
    mx = max(lengths) if lengths else 0
    edges = [0, 1]
    while edges[-1] <= mx:
        edges.append(edges[-1] * 2)
    counts = [sum(1 for x in lengths if edges[i] <= x < edges[i + 1]) for i in range(len(edges) - 1)]
    mean = sum(lengths) / len(lengths) if lengths else 0.0
    std = math.sqrt(sum((x - mean) ** 2 for x in lengths) / len(lengths)) if lengths else 0.0
    return dict(min=min(lengths) if lengths else 0, max=mx, mean=mean, std=std, edges=edges,
                counts=counts)


def spy_counts(mask, cell_rows, cell_cols):
    """Non-zeros per cell of cell_rows x cell_cols entries (edge cells partial)."""
    rows, cols = mask.shape
    h, w = -(-rows // cell_rows), -(-cols // cell_cols)
    counts = np.zeros((h, w), dtype=np.int64)
    for r, c in zip(*np.nonzero(mask)):
        counts[r // cell_rows, c // cell_cols] += 1
    return counts


def cell_area(rows, cols, cell_rows, cell_cols, i, j):
    return (min(cell_rows, rows - i * cell_rows)) * (min(cell_cols, cols - j * cell_cols))


def decode_png(data):
    """(width, height, rows of gray bytes) of an 8-bit grayscale PNG, chunk
    CRCs checked, every scanline filter undone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, "bad CRC in %s" % kind
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, color, _, _, interlace = ihdr
    assert (depth, color, interlace) == (8, 0, 0), "want 8-bit gray, not interlaced: %s" % (ihdr,)
    raw = zlib.decompress(idat)
    assert len(raw) == height * (width + 1)
    rows, prev = [], bytearray(width)
    for y in range(height):
        f = raw[y * (width + 1)]
        line = bytearray(raw[y * (width + 1) + 1:(y + 1) * (width + 1)])
        for x in range(width):
            left = line[x - 1] if x else 0
            up, ul = prev[x], (prev[x - 1] if x else 0)
            if f == 1:
                line[x] = (line[x] + left) & 0xFF
            elif f == 2:
                line[x] = (line[x] + up) & 0xFF
            elif f == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif f == 4:
                p = left + up - ul
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - ul)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else ul)
                line[x] = (line[x] + pred) & 0xFF
            else:
                assert f == 0, "filter %d" % f
        rows.append(bytes(line))
        prev = line
    return width, height, rows
