"""Requantization: the one rounding rule of the accelerator, in numpy.

An int32 accumulator ``acc`` of output channel ``o`` becomes int8 as::

    y = (int64(acc) * mult[o] + 2**(shift[o] - 1)) >> shift[o]   # arithmetic shift
    y = max(y, 0)                   # if ReLU
    y = clip(y, -128, 127)

The arithmetic right shift floors, so ties round half toward +infinity (2.5 -> 3,
-2.5 -> -2). ``mult`` is in [2**30, 2**31) and ``shift`` in [1, 62], so
``|acc * mult| < 2**62`` and nothing overflows int64. This is bit-exact with
``zsq_requant`` in ``src/zsq_requant.h``.
"""
from __future__ import annotations

import numpy as np

MULT_MIN = 1 << 30
MULT_MAX = (1 << 31) - 1
SHIFT_MIN = 1
SHIFT_MAX = 62


def quantize_multiplier(real) -> tuple[np.ndarray, np.ndarray]:
    """Integer (mult, shift) with ``mult * 2**-shift ~= real`` for each element.

    ``real = m * 2**e`` with m in [0.5, 1): ``mult = round(m * 2**31)`` (a carry to
    2**31 renormalizes to 2**30 and e + 1), ``shift = 31 - e``. Clamping:

    * ``real < 2**-32`` (including 0): ``mult = 2**30, shift = 62``, which maps every
      int32 accumulator to exactly 0 (the correctly rounded result of such a product
      is 0 too, up to ties).
    * ``real >= 2**30``: ``mult = 2**31 - 1, shift = 1`` (~2**30): every nonzero
      accumulator saturates, exactly as the real multiplier would.

    Raises ``ValueError`` for negative, NaN or infinite multipliers.
    Returns int32 arrays of the input's shape.
    """
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("requantization multipliers must be finite and >= 0")
    m, e = np.frexp(r)
    mult = np.round(m * float(1 << 31)).astype(np.int64)
    carry = mult == (1 << 31)
    mult = np.where(carry, 1 << 30, mult)
    e = np.where(carry, e + 1, e).astype(np.int64)
    shift = 31 - e
    tiny = (r == 0) | (shift > SHIFT_MAX)
    huge = shift < SHIFT_MIN
    mult = np.where(tiny, MULT_MIN, np.where(huge, MULT_MAX, mult))
    shift = np.where(tiny, SHIFT_MAX, np.where(huge, SHIFT_MIN, shift))
    return mult.astype(np.int32), shift.astype(np.int32)


def requantize(acc, mult, shift, relu: bool, axis: int = 0) -> np.ndarray:
    """Apply the rounding rule to int32 accumulators; per-channel along ``axis``.

    ``mult`` and ``shift`` are scalars or 1-D arrays of the length of ``acc``'s ``axis``.
    Returns int8 of ``acc``'s shape.
    """
    a = np.asarray(acc).astype(np.int64)
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    if np.any(s < SHIFT_MIN) or np.any(s > SHIFT_MAX):
        raise ValueError(f"shift must be in [{SHIFT_MIN}, {SHIFT_MAX}]")
    if m.ndim == 1 and a.ndim > 1:
        shape = [1] * a.ndim
        shape[axis] = -1
        m = m.reshape(shape)
        s = s.reshape(shape)
    y = (a * m + (np.int64(1) << (s - 1))) >> s
    if relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127).astype(np.int8)
