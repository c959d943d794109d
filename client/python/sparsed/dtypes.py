"""Value types: which NumPy arrays the daemon's f32 / f16 / bf16 take as they
are, explicit casts, and bfloat16 without or with ml_dtypes.

The daemon stores values as F32, F16 or BF16. NumPy's float32 and float16
map to the first two. NumPy has no bfloat16: when the `ml_dtypes` package is
importable its `ml_dtypes.bfloat16` arrays are bf16; without it bf16 values
are carried as their raw bit patterns, a uint16 array, which is sent as bf16
only when the caller says so with dtype="bf16" (a uint16 array is never
taken for bf16 on its own).

Any other value type (float64, integers, bool) is refused with a TypeError
naming it, unless the caller asks for a conversion with dtype="f32", "f16"
or "bf16". Conversions round to nearest even, as the daemon does; to bf16
from float64 they round through float32 first (the daemon's own casts start
from f32). Complex values are always refused.
"""

import numpy as np

from sparsed.proto import pb, VALUE_DTYPES

_BF16_UNSET = object()
_bf16 = _BF16_UNSET


def bfloat16():
    """ml_dtypes.bfloat16 as a NumPy dtype, or None when ml_dtypes is not
    importable (checked once)."""
    global _bf16
    if _bf16 is _BF16_UNSET:
        try:
            import ml_dtypes
            _bf16 = np.dtype(ml_dtypes.bfloat16)
        except ImportError:
            _bf16 = None
    return _bf16


def is_bfloat16(dtype):
    """True for ml_dtypes.bfloat16 (or any NumPy dtype named bfloat16)."""
    return np.dtype(dtype).name == "bfloat16"


def float32_to_bf16_bits(a):
    """float32 values -> bfloat16 bit patterns (uint16), round to nearest
    even, NaN kept NaN (the daemon's FloatToBf16)."""
    u = np.ascontiguousarray(a, dtype="<f4").view("<u4")
    rounded = ((u + (0x7FFF + ((u >> 16) & 1))) >> 16).astype("<u2")
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 0x40).astype("<u2"), rounded)


def bf16_bits_to_float32(bits):
    """bfloat16 bit patterns (uint16) -> float32, exactly."""
    return (np.asarray(bits, dtype="<u2").astype("<u4") << 16).view("<f4")


def value_dtype_name(dtype):
    """'f32', 'f16' or 'bf16' for a requested dtype: one of those names (or
    'float32', 'float16', 'bfloat16'), a pb enum (pb.F32, ...), a NumPy dtype
    float32 / float16 / ml_dtypes.bfloat16; None stays None. ValueError
    otherwise."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}.get(dtype.lower(),
                                                                            dtype.lower())
        if name in VALUE_DTYPES:
            return name
    elif isinstance(dtype, int) and not isinstance(dtype, bool):
        for k, v in VALUE_DTYPES.items():
            if v == dtype:
                return k
    else:
        try:
            d = np.dtype(dtype)
        except TypeError:
            d = None
        if d is not None:
            if d == np.float32:
                return "f32"
            if d == np.float16:
                return "f16"
            if is_bfloat16(d):
                return "bf16"
    raise ValueError("dtype = %r is not a value type (f32, f16 or bf16)" % (dtype,))


def native_name(dtype):
    """'f32' / 'f16' / 'bf16' when arrays of this NumPy dtype are stored as
    they are, else None."""
    d = np.dtype(dtype)
    if d == np.float32:
        return "f32"
    if d == np.float16:
        return "f16"
    if is_bfloat16(d):
        return "bf16"
    return None


def encode_values(values, dtype=None, bf16_bits=False, what="values"):
    """(enum, little-endian array) the daemon stores for `values`.

    dtype: None keeps float32 / float16 / bfloat16 as they are and refuses
    anything else with a TypeError that names the type; 'f32', 'f16' or
    'bf16' (see value_dtype_name) converts to that type.
    bf16_bits: `values` is a uint16 array of bfloat16 bit patterns (torch
    bfloat16 tensors arrive this way); a uint16 array with dtype='bf16' is
    taken as bit patterns too.
    The result array is flattened only by the caller; its shape is kept."""
    values = np.asarray(values)
    want = value_dtype_name(dtype)
    if values.dtype == np.uint16 and (bf16_bits or want == "bf16"):
        if want in (None, "bf16"):
            return pb.BF16, values.astype("<u2", copy=False)
        values, bf16_bits = bf16_bits_to_float32(values), False  # bits -> f32, then cast
    have = native_name(values.dtype)
    if want is None:
        if have is None:
            raise TypeError(
                "%s have dtype %s; sparsed stores f32, f16 or bf16 and does not convert "
                "silently: pass dtype='f32' (or 'f16', 'bf16') to convert them%s"
                % (what, values.dtype, _bf16_hint(values.dtype)))
        want = have
    if np.iscomplexobj(values):
        raise TypeError("%s have dtype %s; complex values cannot be stored" % (what,
                                                                               values.dtype))
    if want == "f32":
        return pb.F32, values.astype("<f4", copy=False)
    if want == "f16":
        if have == "bf16":
            values = values.astype(np.float32)
        return pb.F16, values.astype("<f2", copy=False)
    if have == "bf16":
        return pb.BF16, values.view("<u2")
    return pb.BF16, float32_to_bf16_bits(values.astype(np.float32, copy=False)).reshape(
        values.shape)


def _bf16_hint(dtype):
    if np.dtype(dtype) == np.uint16:
        return " (if they are bfloat16 bit patterns, dtype='bf16' sends them as such)"
    return ""


BF16_MODES = ("auto", "ml_dtypes", "bits", "float32")


def decode_values(dtype, raw, bf16="auto"):
    """The values bytes of a tensor (`raw`, bytes or bytearray; a bytearray
    gives a writable array without a copy) as a 1-D NumPy array:
    F32 float32, F16 float16, BF16 according to `bf16`:
      "auto"      ml_dtypes.bfloat16 when ml_dtypes is importable, else "bits"
      "ml_dtypes" ml_dtypes.bfloat16 (ImportError without ml_dtypes)
      "bits"      uint16 bit patterns (send them back with dtype="bf16")
      "float32"   widened to float32 (exact)."""
    if dtype == pb.F16:
        return np.frombuffer(raw, dtype="<f2")
    if dtype == pb.BF16:
        if bf16 not in BF16_MODES:
            raise ValueError("bf16 = %r is not one of %s" % (bf16, ", ".join(BF16_MODES)))
        bits = np.frombuffer(raw, dtype="<u2")
        if bf16 == "float32":
            return bf16_bits_to_float32(bits)
        if bf16 == "bits":
            return bits
        bt = bfloat16()
        if bt is None:
            if bf16 == "ml_dtypes":
                raise ImportError("bf16='ml_dtypes' needs the ml_dtypes package")
            return bits
        return bits.view(bt)
    if dtype in (pb.F32, pb.DTYPE_UNSPECIFIED):
        return np.frombuffer(raw, dtype="<f4")
    raise ValueError("dtype %d is not a value type" % dtype)


def widen(values, dtype):
    """Stored values (as encode_values returns them) as float64, exactly."""
    if dtype == pb.BF16:
        return bf16_bits_to_float32(values).astype(np.float64)
    return np.asarray(values).astype(np.float64)


def narrow(values64, dtype):
    """float64 values -> storage of `dtype`, rounding to float32 first and
    then (F16, BF16) to the 16-bit type, as the daemon's canonicalisation
    does."""
    f32 = np.asarray(values64).astype("<f4")
    if dtype == pb.F16:
        return f32.astype("<f2")
    if dtype == pb.BF16:
        return float32_to_bf16_bits(f32).reshape(f32.shape)
    return f32
