"""PyTorch tensors in and out. Used only when torch is in play: this module
never imports torch unless a result is asked for as a torch tensor
(as_torch=True) — a torch tensor given as an operand means torch is already
imported.

In: strided (dense) tensors; sparse_coo, sparse_csr, sparse_csc and
sparse_bsr layouts (2-D, no batch or dense dimensions); 2:4 semi-structured
tensors (torch.sparse.SparseSemiStructuredTensor, sent as N:M 2:4). Tensors
on any device are copied to the host first; autograd history is ignored.
float32, float16 and bfloat16 are kept; other dtypes follow the rules of
sparsed.dtypes (dtype= converts).

Out (to_torch): dense -> strided tensor; CSR / CSC / BSR / COO -> the
matching sparse layout (COO coalesced); an N:M 2:4 result on a CUDA device
becomes a semi-structured tensor where torch supports it, otherwise the
NMTensor is returned as it is. Results are moved to the requested device.
"""

import sys

import numpy as np

from sparsed.nm import NMTensor
from sparsed.proto import pb


def loaded():
    """The torch module if something already imported it, else None."""
    return sys.modules.get("torch")


def require():
    """import torch, with a clear message when it is not installed."""
    try:
        import torch
    except ImportError as e:
        raise ImportError("as_torch needs PyTorch (the torch package), which is not "
                          "importable: %s" % e) from e
    return torch


def is_tensor(x):
    """True for a torch.Tensor (including semi-structured subclasses)."""
    torch = loaded()
    return torch is not None and isinstance(x, torch.Tensor)


def device_of(x):
    """The device of a torch tensor operand."""
    return x.device


def _np(t):
    """A host tensor as a NumPy array, bfloat16 as uint16 bit patterns;
    returns (array, is_bf16_bits)."""
    torch = loaded()
    t = t.detach().to("cpu")
    if t.dtype == torch.bfloat16:
        return t.contiguous().view(torch.int16).numpy().view(np.uint16), True
    return t.contiguous().numpy(), False


def _semi_structured_class(torch):
    sparse = getattr(torch, "sparse", None)
    return getattr(sparse, "SparseSemiStructuredTensor", None)


def source_parts(x):
    """(format, shape, {component: index array}, values, bf16_bits, block, nm)
    for a torch tensor; nm is an NMTensor for semi-structured input."""
    torch = loaded()
    semi = _semi_structured_class(torch)
    if semi is not None and isinstance(x, semi):
        dense, bits = _np(x.to_dense())
        nmt = NMTensor.from_dense(dense, 2, 4, "bf16" if bits else None)
        return "nm", tuple(x.shape), {}, nmt.values, bits, None, nmt
    layout = x.layout
    if layout == torch.strided:
        values, bits = _np(x)
        return "dense", tuple(values.shape), {}, values, bits, None, None
    if x.dim() != 2:
        raise ValueError("a sparse torch tensor must be 2-D (no batch dimensions), got shape %s"
                         % (tuple(x.shape),))
    shape = tuple(int(s) for s in x.shape)
    if layout == torch.sparse_coo:
        if x.sparse_dim() != 2 or x.dense_dim() != 0:
            raise ValueError("hybrid sparse_coo tensors (dense dimensions) are not supported")
        idx = x._indices().detach().to("cpu").numpy()
        values, bits = _np(x._values())
        return "coo", shape, {"row_idx": idx[0], "col_idx": idx[1]}, values, bits, None, None
    if layout in (torch.sparse_csr, torch.sparse_csc, torch.sparse_bsr):
        if layout == torch.sparse_csc:
            ptr, idx = x.ccol_indices(), x.row_indices()
        else:
            ptr, idx = x.crow_indices(), x.col_indices()
        ptr, idx = ptr.detach().to("cpu").numpy(), idx.detach().to("cpu").numpy()
        values, bits = _np(x.values())
        if layout == torch.sparse_bsr:
            if values.ndim != 3:
                raise ValueError("hybrid sparse_bsr tensors are not supported")
            return ("bsr", shape, {"block_row_ptr": ptr, "block_col_idx": idx}, values, bits,
                    tuple(values.shape[1:]), None)
        if values.ndim != 1:
            raise ValueError("hybrid compressed sparse tensors are not supported")
        if layout == torch.sparse_csc:
            return "csc", shape, {"col_ptr": ptr, "row_idx": idx}, values, bits, None, None
        return "csr", shape, {"row_ptr": ptr, "col_idx": idx}, values, bits, None, None
    raise TypeError("torch layout %s is not supported (use strided, sparse_coo, sparse_csr, "
                    "sparse_csc or sparse_bsr)" % (layout,))


def _values(torch, arr, desc):
    """A torch tensor of stored values; bf16 (uint16 bit patterns) as bfloat16."""
    if desc.dtype == pb.BF16:
        return torch.from_numpy(np.ascontiguousarray(arr).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(arr))


def to_torch(obj, desc, device=None):
    """A decoded result (ndarray, scipy sparse, NMTensor; 16-bit bf16 values
    as uint16 bit patterns) as a torch tensor on `device` (None: CPU)."""
    torch = require()
    if isinstance(obj, NMTensor):
        semi = _semi_structured_class(torch)
        dev = torch.device(device) if device is not None else torch.device("cpu")
        if semi is not None and (obj.n, obj.m) == (2, 4) and dev.type == "cuda":
            dense = _values(torch, obj.to_dense(), desc).to(dev)
            return torch.sparse.to_sparse_semi_structured(dense)
        return obj
    if isinstance(obj, np.ndarray):
        t = _values(torch, obj, desc)
    else:
        fmt, shape = obj.format, tuple(obj.shape)
        ix = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
        values = _values(torch, obj.data, desc)
        if fmt == "csr":
            t = torch.sparse_csr_tensor(ix(obj.indptr), ix(obj.indices), values, size=shape)
        elif fmt == "csc":
            t = torch.sparse_csc_tensor(ix(obj.indptr), ix(obj.indices), values, size=shape)
        elif fmt == "bsr":
            t = torch.sparse_bsr_tensor(ix(obj.indptr), ix(obj.indices), values, size=shape)
        elif fmt == "coo":
            rc = np.vstack([obj.row, obj.col]).astype(np.int64)
            t = torch.sparse_coo_tensor(ix(rc), values, size=shape).coalesce()
        else:  # pragma: no cover - from_components makes no other format
            raise TypeError("cannot make a torch tensor of %s" % type(obj).__name__)
    return t.to(device) if device is not None else t


def from_dlpack(x):
    """A torch tensor from any __dlpack__ object (when torch is importable)."""
    torch = require()
    return torch.from_dlpack(x)
