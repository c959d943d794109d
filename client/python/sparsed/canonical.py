"""Canonical order of sparse index arrays: the check, and the fix for data
the daemon cannot fix itself.

Canonical (what the daemon accepts without `sort_and_sum_duplicates`): COO
entries strictly increasing in row-major order; CSR column indices strictly
increasing within each row (CSC: row indices within each column); BSR block
columns strictly increasing within each block row.

Uploads of non-canonical COO/CSR/CSC data are fixed by the daemon (the
client sets `sort_and_sum_duplicates`). Inline operands have no such flag,
and BSR has no daemon-side fix, so `canonicalize` below does the same here:
a stable sort by (major, minor) index, duplicates summed in float64 of the
values widened to float32, rounded to float32 and then to the storage type
(sparsed.dtypes.narrow), which is what the daemon computes.
"""

import numpy as np

from sparsed import dtypes


def is_sorted_unique(major, minor):
    """True when the (major, minor) pairs are strictly increasing
    lexicographically (COO in row-major order)."""
    if len(major) < 2:
        return True
    dm = np.diff(np.asarray(major, np.int64))
    dn = np.diff(np.asarray(minor, np.int64))
    return bool(np.all((dm > 0) | ((dm == 0) & (dn > 0))))


def is_compressed_canonical(indptr, indices):
    """True when the indices inside every segment [indptr[i], indptr[i+1])
    are strictly increasing (CSR rows, CSC columns, BSR block rows)."""
    indices = np.asarray(indices, np.int64)
    if len(indices) < 2:
        return True
    step_ok = np.diff(indices) > 0
    # A step into the first entry of a segment compares two segments: ignore it.
    starts = np.asarray(indptr, np.int64)[1:-1]
    starts = starts[(starts > 0) & (starts < len(indices))]
    step_ok[starts - 1] = True
    return bool(np.all(step_ok))


def expand_ptr(indptr):
    """The segment number of every entry of a compressed index (CSR row of
    each entry)."""
    indptr = np.asarray(indptr, np.int64)
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def compress(major, segments, dtype):
    """indptr (length segments + 1, `dtype`) for sorted segment numbers."""
    counts = np.bincount(np.asarray(major, np.int64), minlength=segments)
    return np.concatenate([[0], np.cumsum(counts)]).astype(dtype)


def sort_and_sum(major, minor, values, value_dtype):
    """(major, minor, values) sorted by (major, minor) with the values of
    equal pairs summed. values: stored values as sparsed.dtypes.encode_values
    returns them (first axis = entries; BSR blocks sum elementwise);
    value_dtype: their pb enum. Index arrays keep their dtypes."""
    major, minor, values = np.asarray(major), np.asarray(minor), np.asarray(values)
    if len(major) == 0:
        return major, minor, values
    order = np.lexsort((minor, major))  # stable: equal pairs keep their order
    major, minor, values = major[order], minor[order], values[order]
    new = np.ones(len(major), bool)
    new[1:] = (major[1:] != major[:-1]) | (minor[1:] != minor[:-1])
    starts = np.flatnonzero(new)
    sums = np.add.reduceat(dtypes.widen(values, value_dtype), starts, axis=0)
    return major[starts], minor[starts], dtypes.narrow(sums, value_dtype)
