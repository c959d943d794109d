"""Options: how a client turns Python data into tensors and tensors back
into Python data. A client holds one (its defaults); methods that take the
same keywords override them for one call."""

from dataclasses import dataclass, fields, replace
from typing import Optional

from sparsed import dtypes


@dataclass(frozen=True)
class Options:
    """dtype: value type data is sent as: None keeps float32 / float16 /
    bfloat16 and refuses every other type (TypeError naming it); "f32",
    "f16" or "bf16" converts everything sent to that type.
    canonicalize: non-canonical sparse data (unsorted or repeated indices):
    None sorts it and sums duplicates with a CanonicalizeWarning, True does
    so silently, False sends it as it is (the daemon refuses it).
    sparse: "matrix" (csr_matrix, ...) or "array" (csr_array, ...) for
    sparse results.
    bf16: how bf16 values come back: "auto" (ml_dtypes.bfloat16 when
    importable, else uint16 bit patterns), "ml_dtypes", "bits", "float32"
    (widened exactly)."""

    dtype: Optional[str] = None
    canonicalize: Optional[bool] = None
    sparse: str = "matrix"
    bf16: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "dtype", dtypes.value_dtype_name(self.dtype))
        if self.canonicalize not in (None, True, False):
            raise ValueError("canonicalize = %r is not None, True or False"
                             % (self.canonicalize,))
        if self.sparse not in ("matrix", "array"):
            raise ValueError("sparse = %r is not 'matrix' or 'array'" % (self.sparse,))
        if self.bf16 not in dtypes.BF16_MODES:
            raise ValueError("bf16 = %r is not one of %s" % (self.bf16,
                                                             ", ".join(dtypes.BF16_MODES)))

    def override(self, **kw):
        """A copy with the given fields replaced; None values leave a field as
        it is (so a method's keyword left at None keeps the client's default)."""
        names = {f.name for f in fields(self)}
        unknown = set(kw) - names
        if unknown:
            raise TypeError("unknown option(s): %s" % ", ".join(sorted(unknown)))
        given = {k: v for k, v in kw.items() if v is not None}
        return replace(self, **given) if given else self
