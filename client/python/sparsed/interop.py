"""Python data <-> the daemon's tensors (a TensorDesc plus named component
arrays, tensor.proto).

Accepted as data (`to_components`, and so every upload and inline operand):
  - NumPy arrays (1-D or 2-D) -> DENSE
  - SciPy sparse matrices and sparse arrays: csr -> CSR, csc -> CSC,
    coo -> COO, bsr -> BSR (block = blocksize); dia, lil, dok -> CSR
  - sparsed.NMTensor -> NM
  - torch tensors (sparsed.torch_interop) and other objects with __dlpack__
    (host memory through NumPy, device memory through torch)
Values keep their type (float32, float16, bfloat16: sparsed.dtypes); any
other type is refused unless dtype= asks for a conversion. Index arrays keep
int32 (-> I32) or int64 (-> I64); index_dtype="i32"/"i64" converts.

Non-canonical sparse data (unsorted or repeated indices; see
sparsed.canonical), by the `canonicalize` option:
  None (default)  fixed, with a CanonicalizeWarning saying so
  True            fixed silently
  False           sent as it is (the daemon refuses it: INVALID_ARGUMENT)
"Fixed" means the upload asks the daemon to sort and sum duplicates
(UploadHeader.sort_and_sum_duplicates); inline operands and BSR, which have
no such flag, are sorted and summed here the way the daemon would.

Returned as data (`from_components`): DENSE -> ndarray; CSR / CSC / COO /
BSR -> the scipy type of the same name (csr_matrix ... by default,
csr_array ... with sparse="array"; a BSR whose shape is not a whole number of
blocks comes back as CSR, which scipy's BSR cannot represent); NM ->
NMTensor. Values come back in their stored type (bf16: see
sparsed.dtypes.decode_values); index arrays keep their stored width.
"""

import os
import sys
import warnings
from typing import NamedTuple

import numpy as np
import scipy.sparse

from sparsed import canonical, dtypes, torch_interop
from sparsed.nm import NMTensor
from sparsed.proto import pb, FORMATS, INDEX_DTYPES, enum


class CanonicalizeWarning(UserWarning):
    """Sparse data was not in canonical order and was sorted (duplicates
    summed) on the way; pass canonicalize=True to silence, False to refuse."""


class Encoded(NamedTuple):
    """A tensor ready to send: desc, parts [(component name, little-endian
    ndarray)], and whether the daemon must sort and sum duplicates."""
    desc: object
    parts: list
    sort_and_sum_duplicates: bool


class _Source(NamedTuple):
    format: str          # dense, coo, csr, csc, bsr, nm
    shape: tuple
    indices: dict        # component name -> integer array, in wire order
    values: np.ndarray   # dense: the array; bsr: (nnz, R, C); nm: (rows, groups, n)
    bf16_bits: bool      # values are bfloat16 bit patterns (uint16)
    block: tuple         # bsr: (R, C)
    nm: NMTensor         # nm: the tensor


_SCIPY_COMPONENTS = {"csr": ("row_ptr", "col_idx"), "csc": ("col_ptr", "row_idx"),
                     "bsr": ("block_row_ptr", "block_col_idx")}


def is_handle(x):
    """True for what names a held tensor (id or name string, TensorInfo,
    TensorRef) rather than carrying data."""
    return isinstance(x, (str, pb.TensorInfo, pb.TensorRef))


def _source(x):
    if isinstance(x, NMTensor):
        bits = x.value_type == "bf16" and x.values.dtype == np.uint16
        return _Source("nm", x.shape, {}, x.values, bits, None, x)
    if torch_interop.is_tensor(x):
        return _Source(*torch_interop.source_parts(x))
    if scipy.sparse.issparse(x):
        fmt = x.format
        if fmt not in ("csr", "csc", "coo", "bsr"):
            x, fmt = x.tocsr(), "csr"
        shape = tuple(int(s) for s in x.shape)
        if fmt == "coo":
            return _Source("coo", shape, {"row_idx": x.row, "col_idx": x.col}, x.data, False,
                           None, None)
        ptr, idx = _SCIPY_COMPONENTS[fmt]
        block = tuple(int(b) for b in x.blocksize) if fmt == "bsr" else None
        return _Source(fmt, shape, {ptr: x.indptr, idx: x.indices}, x.data, False, block, None)
    if not isinstance(x, np.ndarray) and hasattr(x, "__dlpack__"):
        try:
            x = np.from_dlpack(x)
        except (RuntimeError, TypeError, ValueError, BufferError):
            return _source(torch_interop.from_dlpack(x))  # device memory, or a dtype NumPy lacks
    if isinstance(x, (list, tuple)) or np.isscalar(x):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise TypeError("cannot send %s as a tensor (NumPy arrays, SciPy sparse, NMTensor, "
                        "torch tensors and __dlpack__ objects can be sent)" % type(x).__name__)
    return _Source("dense", x.shape, {}, x, False, None, None)


def _index_dtype(arrays, requested):
    """(pb enum, NumPy dtype) for the index arrays."""
    if requested is not None:
        code = enum(INDEX_DTYPES, requested, "index_dtype")
        if code not in (pb.I32, pb.I64):
            raise ValueError("index_dtype = %r is not i32 or i64" % (requested,))
        if code == pb.I32:
            for a in arrays:
                if len(a) and a.max() > np.iinfo(np.int32).max:
                    raise ValueError("index_dtype = 'i32' cannot hold index %d" % a.max())
        return code, np.dtype("<i4" if code == pb.I32 else "<i8")
    wide = any(a.dtype.itemsize > 4 or a.dtype == np.uint32 for a in arrays)
    return (pb.I64, np.dtype("<i8")) if wide else (pb.I32, np.dtype("<i4"))


def _warn(msg):
    """warnings.warn attributed to the first caller outside this package."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    level, frame = 2, sys._getframe(1)  # stacklevel 2 is our caller, sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here):
        level, frame = level + 1, frame.f_back
    warnings.warn(msg, CanonicalizeWarning, stacklevel=level)


_ORDER_NOTE = {"coo": "entries not in strictly increasing row-major order",
               "csr": "column indices unsorted or repeated within a row",
               "csc": "row indices unsorted or repeated within a column",
               "bsr": "block column indices unsorted or repeated within a block row"}


def _is_canonical(src):
    ix = src.indices
    if src.format == "coo":
        return canonical.is_sorted_unique(ix["row_idx"], ix["col_idx"])
    ptr, idx = list(ix.values())
    return canonical.is_compressed_canonical(ptr, idx)


def _fix_locally(src, indices, values, value_dtype):
    """Sorted, duplicate-free (indices, values) of a COO/CSR/CSC/BSR source."""
    names = list(indices)
    if src.format == "coo":
        major, minor = indices["row_idx"], indices["col_idx"]
    else:
        major, minor = canonical.expand_ptr(indices[names[0]]), indices[names[1]]
    major, minor, values = canonical.sort_and_sum(major, minor, values, value_dtype)
    if src.format == "coo":
        return {"row_idx": major, "col_idx": minor}, values
    segments = len(indices[names[0]]) - 1
    ptr = canonical.compress(major, segments, indices[names[0]].dtype)
    return {names[0]: ptr, names[1]: minor}, values


def to_components(x, dtype=None, index_dtype=None, canonicalize=None, inline=False):
    """Encoded(desc, parts, sort_and_sum_duplicates) for data `x` (see the
    module docstring for what is accepted and the options). inline: the
    tensor travels inside a request (an operand), where the daemon cannot be
    asked to canonicalise, so it is done here."""
    src = _source(x)
    value_code, values = dtypes.encode_values(src.values, dtype, bf16_bits=src.bf16_bits)
    desc = pb.TensorDesc(format=FORMATS[src.format], dtype=value_code)
    desc.shape.extend(int(s) for s in src.shape)
    if src.format == "dense":
        return Encoded(desc, [("values", np.ascontiguousarray(values).ravel())], False)
    if src.format == "nm":
        desc.CopyFrom(src.nm.desc(value_code))
        return Encoded(desc, [("values", np.ascontiguousarray(values).ravel()),
                              ("meta", src.nm.meta())], False)
    code, idx_dt = _index_dtype([np.asarray(a) for a in src.indices.values()], index_dtype)
    desc.index_dtype = code
    indices = {k: np.asarray(a).astype(idx_dt, copy=False) for k, a in src.indices.items()}
    sort_flag = False
    if canonicalize is not False and not _is_canonical(src):
        local = inline or src.format == "bsr"
        if local:
            indices, values = _fix_locally(src, indices, values, value_code)
        else:
            sort_flag = True
        if canonicalize is None:
            _warn("sparsed: the %s data sent has %s; %s. Pass canonicalize=True to do this "
                  "without a warning, or canonicalize=False to send it as it is (the daemon "
                  "then refuses it)." % (
                      src.format.upper(), _ORDER_NOTE[src.format],
                      "it was sorted and its duplicates summed before sending, as the daemon "
                      "does" if local else "the daemon sorts it and sums duplicates "
                      "(sort_and_sum_duplicates)"))
    if src.format == "bsr":
        desc.block.extend(src.block)
    desc.nnz = len(values)  # BSR: blocks
    parts = [(k, np.ascontiguousarray(a)) for k, a in indices.items()]
    parts.append(("values", np.ascontiguousarray(values).ravel()))
    return Encoded(desc, parts, sort_flag)


def inline_tensor(x, **options):
    """An InlineTensor of data `x` (options as for to_components; always
    canonicalised here unless canonicalize=False)."""
    enc = to_components(x, inline=True, **options)
    return pb.InlineTensor(desc=enc.desc, components=[
        pb.Component(name=n, data=a.tobytes()) for n, a in enc.parts])


# ---- decoding -------------------------------------------------------------

_INDEX_NP = {pb.I32: "<i4", pb.I64: "<i8", pb.DTYPE_UNSPECIFIED: "<i4"}
_SCIPY = {("csr", "matrix"): scipy.sparse.csr_matrix, ("csr", "array"): scipy.sparse.csr_array,
          ("csc", "matrix"): scipy.sparse.csc_matrix, ("csc", "array"): scipy.sparse.csc_array,
          ("coo", "matrix"): scipy.sparse.coo_matrix, ("coo", "array"): scipy.sparse.coo_array,
          ("bsr", "matrix"): scipy.sparse.bsr_matrix, ("bsr", "array"): scipy.sparse.bsr_array}


def _array(buf, dt):
    a = np.frombuffer(buf, dtype=dt) if buf else np.zeros(0, dt)
    return a if a.flags.writeable else a.copy()


def _scipy(fmt, sparse, shape, data, index_arrays, blocksize=None):
    """A scipy object holding exactly these arrays: built from placeholders,
    then given the arrays (scipy's constructors would narrow int64 indices
    that fit int32, and upcast float16 or bfloat16 values)."""
    if sparse not in ("matrix", "array"):
        raise ValueError("sparse = %r is not 'matrix' or 'array'" % (sparse,))
    cls = _SCIPY[(fmt, sparse)]
    if fmt == "coo":
        row, col = index_arrays
        out = cls((np.zeros(len(data), np.float32), (row, col)), shape=shape)
        out.row, out.col = row, col
    else:
        indptr, indices = index_arrays
        placeholder = np.zeros((len(indices),) + (blocksize or ()), np.float32)
        kw = {"blocksize": blocksize} if fmt == "bsr" else {}
        out = cls((placeholder, indices, indptr), shape=shape, **kw)
        out.indices, out.indptr = indices, indptr
    out.data = data
    return out


def _bsr_as_csr(shape, block, data, indptr, indices, sparse):
    """CSR (rows x cols) of a BSR whose edge blocks are partial, dropping the
    padding beyond the shape; every other stored value is kept."""
    rows, cols = shape
    r, c = block
    brow = canonical.expand_ptr(indptr)
    ii, jj = np.meshgrid(np.arange(r), np.arange(c), indexing="ij")
    row = (brow[:, None, None] * r + ii).ravel()
    col = (np.asarray(indices, np.int64)[:, None, None] * c + jj).ravel()
    vals = data.reshape(-1)
    keep = (row < rows) & (col < cols)
    row, col, vals = row[keep], col[keep], vals[keep]
    order = np.lexsort((col, row))
    idx_dt = np.asarray(indices).dtype
    return _scipy("csr", sparse, shape, vals[order],
                  (canonical.compress(row[order], rows, idx_dt), col[order].astype(idx_dt)))


def from_components(desc, parts, sparse="matrix", bf16="auto"):
    """The Python form of a tensor given its TensorDesc and {component name:
    bytes or bytearray} (a missing component is empty). sparse: "matrix" or
    "array" (scipy container); bf16: see sparsed.dtypes.decode_values."""
    shape = tuple(int(s) for s in desc.shape)
    raw = parts.get("values", b"")
    values = dtypes.decode_values(desc.dtype, raw, bf16)
    if raw and not values.flags.writeable:
        values = values.copy()
    if desc.format == pb.DENSE:
        return values.reshape(shape)
    idx = _INDEX_NP[desc.index_dtype]
    get = lambda name: _array(parts.get(name, b""), idx)  # noqa: E731
    if desc.format == pb.CSR:
        return _scipy("csr", sparse, shape, values, (get("row_ptr"), get("col_idx")))
    if desc.format == pb.CSC:
        return _scipy("csc", sparse, shape, values, (get("col_ptr"), get("row_idx")))
    if desc.format == pb.COO:
        return _scipy("coo", sparse, shape, values, (get("row_idx"), get("col_idx")))
    if desc.format == pb.BSR:
        block = tuple(int(b) for b in desc.block)
        data = values.reshape((-1,) + block)
        ptr, ind = get("block_row_ptr"), get("block_col_idx")
        if shape[0] % block[0] or shape[1] % block[1]:
            return _bsr_as_csr(shape, block, data, ptr, ind, sparse)
        return _scipy("bsr", sparse, shape, data, (ptr, ind), blocksize=block)
    if desc.format == pb.NM:
        return NMTensor.from_components(desc, values, _array(parts.get("meta", b""), "<i4"))
    raise ValueError("unknown format %d" % desc.format)


def from_inline(msg, sparse="matrix", bf16="auto"):
    """from_components of an InlineTensor."""
    return from_components(msg.desc, {c.name: c.data for c in msg.components}, sparse, bf16)


def decode(desc, parts, options, torch_device=None):
    """from_components with a client's Options; with torch_device (not
    None) the result becomes a torch tensor there (a device, or True for the
    CPU)."""
    if torch_device is None:
        return from_components(desc, parts, options.sparse, options.bf16)
    obj = from_components(desc, parts, options.sparse, "bits")
    return torch_interop.to_torch(obj, desc, None if torch_device is True else torch_device)


def torch_target(as_torch, operands):
    """Where a result goes as a torch tensor, or None for NumPy/SciPy:
    as_torch False -> None; None -> the device of the first torch operand
    (None if there is none); True -> that device, else the CPU (True); a
    device (string or torch.device) -> that device."""
    if as_torch is False:
        return None
    if as_torch is None or as_torch is True:
        for x in operands:
            if torch_interop.is_tensor(x):
                return torch_interop.device_of(x)
        return None if as_torch is None else True
    return as_torch
