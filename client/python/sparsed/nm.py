"""NMTensor: an N:M structured sparse matrix as the daemon holds it.

In every group of m consecutive columns of a row exactly n slots are stored
(values[row, group, slot]), each with its column offset inside the group
(positions[row, group, slot], 0 <= p < m, strictly increasing within a
group). Slots may hold zeros (a group with fewer than n non-zeros is padded).
On the wire (tensor.proto) the positions travel as the `meta` component: for
2:4 packed as PTX mma.sp reads it (a nibble per group, eight groups per
32-bit word, the two positions in its low and high 2 bits, unused high
nibbles of a row's last word zero), for every other n:m one int32 position
per slot.
"""

import numpy as np
import scipy.sparse

from sparsed import dtypes
from sparsed.proto import pb, VALUE_DTYPES


class NMTensor:
    """An N:M tensor: shape (rows, cols), n, m, values (rows, cols // m, n)
    in the storage dtype (float32, float16, or bf16 as described in
    sparsed.dtypes), positions (rows, cols // m, n) int64, and value_type
    ("f32", "f16", "bf16"; default: from the values' dtype) — so bf16 held
    as uint16 bit patterns goes back up as bf16 without dtype=.

    Round trips exactly: client.download of an NM tensor returns one, and
    client.upload / operands accept one and send it as NM again."""

    def __init__(self, shape, n, m, values, positions, value_type=None):
        rows, cols = (int(s) for s in shape)
        if not (1 <= n < m <= 32) or cols % m:
            raise ValueError("n:m = %d:%d does not fit shape %s (1 <= n < m <= 32, m divides "
                             "the columns)" % (n, m, (rows, cols)))
        groups = cols // m
        self.shape, self.n, self.m = (rows, cols), int(n), int(m)
        self.values = np.asarray(values).reshape(rows, groups, n)
        self.positions = np.asarray(positions, dtype=np.int64).reshape(rows, groups, n)
        self.value_type = value_type or dtypes.native_name(self.values.dtype)

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def nnz(self):
        """Stored slots (rows * groups * n), as TensorDesc.nnz counts them."""
        return self.values.size

    def __repr__(self):
        return "NMTensor(shape=%s, %d:%d, %s as %s)" % (self.shape, self.n, self.m,
                                                        self.value_type, self.values.dtype)

    # ---- wire form --------------------------------------------------------
    @classmethod
    def from_components(cls, desc, values, meta):
        """From a TensorDesc (format NM) and its decoded `values` (1-D) and
        raw `meta` (int32 array)."""
        rows, cols = (int(s) for s in desc.shape)
        n, m = desc.n, desc.m
        groups = cols // m
        meta = np.asarray(meta, dtype="<i4")
        if (n, m) == (2, 4):
            words = meta.view("<u4").reshape(rows, -1) if rows else np.zeros((0, 1), "<u4")
            g = np.arange(groups)
            nib = (words[:, g // 8] >> (4 * (g % 8)).astype(np.uint32)) & 0xF
            positions = np.stack([nib & 3, nib >> 2], axis=-1)
        else:
            positions = meta.reshape(rows, groups, n)
        return cls((rows, cols), n, m, np.asarray(values).reshape(rows, groups, n), positions,
                   {v: k for k, v in VALUE_DTYPES.items()}.get(desc.dtype))

    def meta(self):
        """The `meta` component (int32 array) for these positions."""
        rows, groups = self.values.shape[:2]
        if (self.n, self.m) == (2, 4):
            words_per_row = -(-groups // 8)
            words = np.zeros((rows, words_per_row), np.uint32)
            nib = (self.positions[..., 0] | (self.positions[..., 1] << 2)).astype(np.uint32)
            for g in range(groups):  # one pass per group column, vectorised over rows
                words[:, g // 8] |= nib[:, g] << np.uint32(4 * (g % 8))
            return words.view("<i4").ravel()
        return self.positions.astype("<i4").ravel()

    def desc(self, dtype):
        """Its TensorDesc with value type `dtype` (a pb enum)."""
        return pb.TensorDesc(format=pb.NM, dtype=dtype, shape=list(self.shape), nnz=self.nnz,
                             n=self.n, m=self.m)

    # ---- conversions ------------------------------------------------------
    @classmethod
    def from_dense(cls, a, n, m, value_type=None):
        """The n:m form of a 2-D array whose every group of m columns holds at
        most n non-zeros (ValueError naming the first row and group that
        holds more). Groups with fewer non-zeros are padded with zero slots
        at the smallest free positions. value_type: as for the constructor
        ("bf16" for uint16 bit patterns)."""
        a = np.asarray(a)
        rows, cols = a.shape
        if cols % m:
            raise ValueError("m = %d does not divide the %d columns" % (m, cols))
        groups = cols // m
        g = a.reshape(rows, groups, m)
        nonzero = _nonzero(g)
        counts = nonzero.sum(axis=2)
        if rows and groups and counts.max() > n:
            r, gi = np.argwhere(counts > n)[0]
            raise ValueError("row %d, group %d holds %d non-zeros; n:m = %d:%d keeps at most %d"
                             % (r, gi, counts[r, gi], n, m, n))
        # Non-zeros first (in column order), then zeros; keep n, sort the positions.
        order = np.argsort(~nonzero, axis=2, kind="stable")[..., :n]
        positions = np.sort(order, axis=2)
        values = np.take_along_axis(g, positions, axis=2)
        return cls((rows, cols), n, m, values, positions, value_type)

    def _columns(self):
        groups = self.values.shape[1]
        return np.arange(groups)[None, :, None] * self.m + self.positions

    def to_dense(self):
        """The full (rows, cols) array in the values' dtype."""
        rows, cols = self.shape
        out = np.zeros((rows, cols), dtype=self.values.dtype)
        r = np.broadcast_to(np.arange(rows)[:, None, None], self.values.shape)
        out[r, self._columns()] = self.values
        return out

    toarray = to_dense  # scipy-style alias

    def to_scipy(self, sparse="matrix"):
        """A scipy CSR of the slots that hold a non-zero (the zero padding is
        dropped, as the daemon's conversion from N:M does); sparse="array"
        gives a csr_array. Entries are in row-major order."""
        rows, cols = self.shape
        keep = _nonzero(self.values).ravel()
        col = self._columns().ravel()[keep]
        data = self.values.ravel()[keep]
        row_len = keep.reshape(rows, -1).sum(axis=1)
        indptr = np.concatenate([[0], np.cumsum(row_len)]).astype(np.int32)
        cls = scipy.sparse.csr_array if sparse == "array" else scipy.sparse.csr_matrix
        out = cls((np.zeros(len(data), np.float32), col.astype(np.int32), indptr),
                  shape=(rows, cols))
        out.data = data  # keep the storage dtype (scipy would upcast float16 and others)
        return out


def _nonzero(values):
    """Elementwise "is not zero"; for bf16 bit patterns (uint16) ±0 is zero."""
    v = np.asarray(values)
    if v.dtype == np.uint16:
        return (v & 0x7FFF) != 0
    return v != 0
