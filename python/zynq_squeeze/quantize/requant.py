"""Requantization: the one rounding rule of the accelerator, in numpy.

An int32 accumulator ``acc`` of output channel ``o`` becomes int8 as::

    a = acc >> t[o]                                   # arithmetic shift (floor), t in [0, 15]
    y = (a * mult[o] + 2**(shift[o] - 1)) >> shift[o] # arithmetic shift: round half up
    y = max(y, 0)                                     # if ReLU
    y = clip(y, -128, 127)

Why this shape: on the Zynq-7020 each requantization lane must be ONE DSP48E1, whose
multiplier is 25 x 18 bits (signed). ``a`` is kept inside the 25-bit port (``|a| <
2**24``, :data:`A_MAX`) by the per-channel pre-shift ``t``, chosen at compile time from the
worst-case accumulator (:func:`pre_shift`); ``mult`` in [2**14, 2**15) is a 16-bit
multiplier (15 magnitude bits, the 18-bit port with room to spare); the rounding constant
enters through the DSP's C port and the 41-bit result fits its 48-bit P register. (A
32 x 32 multiply costs 4 DSP48E1 per lane.)

The arithmetic right shift floors, so ties round half toward +infinity (2.5 -> 3,
-2.5 -> -2). ``shift`` is in [1, :data:`SHIFT_MAX` = 40]; ``|a * mult| < 2**39``.
The effective multiplier on ``acc`` is ``mult * 2**-(shift + t)``: the compiler
quantizes ``real * 2**t`` (:func:`quantize_multiplier`). The same operation with ``t =
0`` and no ReLU divides average-pool window sums (:func:`pool_multiplier`).

A QDQ model's multipliers are 22 bits wide (``bits=WIDE_MULT_BITS``: mult in [2**21,
2**22), shift in [1, 47], relative error <= 2**-22, as onnxruntime's float32 multiplier
nearly is): the lane keeps one DSP48E1 for ``a x mult[21:5]`` and adds ``a x mult[4:0]``
from fabric (``DaeConfig.wide_rq``; docs/ENGINE.md "The wide multiplier"). The rule is the
same; only the ranges grow. Bit-exact with ``zsqd_requant`` in ``src/zsq_dae.h``.
"""
from __future__ import annotations

import numpy as np

MULT_BITS = 15                    # magnitude bits of the multiplier (mult < 2**15)
MULT_MIN = 1 << (MULT_BITS - 1)   # 16384: normalized, m in [0.5, 1) times 2**15
MULT_MAX = (1 << MULT_BITS) - 1   # 32767
SHIFT_MIN = 1
# Largest shift: with |a| < 2**24 and mult < 2**15, |a * mult| < 2**39, so every shift >=
# 40 rounds every a to 0. 40 is therefore both the largest useful shift and the shift of
# the zero encoding (mult 2**14: |a * 2**14| < 2**38 <= 2**39 = the rounding constant).
SHIFT_MAX = 40
A_BITS = 25                       # DSP48E1 A port: signed 25-bit operand
A_MAX = (1 << (A_BITS - 1)) - 1   # |a| <= 2**24 - 1
PRE_SHIFT_MAX = 15                # t is 4 bits in the params word
# |x * w| <= 128 * 128 for int8 x and w: ConvParams admits weight -128 (the quantizer
# itself produces [-127, 127]); the same bound guards the int32 accumulator.
MAX_PRODUCT = 128 * 128

# The fixed encodings of multipliers too small / too large to represent (see
# quantize_multiplier): every |a| <= A_MAX -> 0, every nonzero a -> saturation.
ZERO_ENCODING = (MULT_MIN, SHIFT_MAX)
SATURATE_ENCODING = (MULT_MAX, SHIFT_MIN)

# --- wide requantization multiplier (DaeConfig.wide_rq, issue 11: QDQ models) ----------
# mult in [2**21, 2**22): relative error <= 2**-22, as onnxruntime's float32 multiplier
# (24-bit mantissa) nearly is. The lane splits it: a x mult[21:5] (17 bits) on its DSP48E1,
# a x mult[4:0] in fabric; |a * mult| < 2**46, so every shift >= 47 rounds every a to 0
# and |a * mult| + 2**46 fits the lane's 48-bit fabric sum ((hi << 5) + lo + the rounding
# constant: the DSP48E1 cannot shift its product before its post-adder).
WIDE_MULT_BITS = 22
WIDE_MULT_MIN = 1 << (WIDE_MULT_BITS - 1)
WIDE_MULT_MAX = (1 << WIDE_MULT_BITS) - 1
WIDE_SHIFT_MAX = 47
WIDE_ZERO_ENCODING = (WIDE_MULT_MIN, WIDE_SHIFT_MAX)
WIDE_SATURATE_ENCODING = (WIDE_MULT_MAX, SHIFT_MIN)
PARAM_MULT_BITS = WIDE_MULT_BITS  # the params word's mult field (both widths)


def ranges(bits: int = MULT_BITS) -> tuple[int, int, int]:
    """``(mult_min, mult_max, shift_max)`` of the multiplier of ``bits`` magnitude bits
    (:data:`MULT_BITS` or :data:`WIDE_MULT_BITS`)."""
    if bits == MULT_BITS:
        return MULT_MIN, MULT_MAX, SHIFT_MAX
    if bits == WIDE_MULT_BITS:
        return WIDE_MULT_MIN, WIDE_MULT_MAX, WIDE_SHIFT_MAX
    raise ValueError(f"multiplier bits must be {MULT_BITS} or {WIDE_MULT_BITS}, got {bits}")


def needs_wide(mult, shift) -> bool:
    """True when some (mult, shift) is outside the narrow lane's ranges (mult above
    :data:`MULT_MAX` or shift above :data:`SHIFT_MAX`): only the wide lane executes it.
    (The wide lane executes every narrow pair exactly: mult < 2**22.)"""
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    return bool((m.size and int(m.max()) > MULT_MAX) or (s.size and int(s.max()) > SHIFT_MAX))


def valid_multiplier(mult, shift) -> bool:
    """True when every (mult, shift) is within the wide lane's ranges (mult in [2**14,
    2**22), shift in [1, 47]): the params word's fields; :func:`needs_wide` says which
    engine runs it."""
    m = np.asarray(mult, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    return bool(np.all((m >= MULT_MIN) & (m <= WIDE_MULT_MAX))
                and np.all((s >= SHIFT_MIN) & (s <= WIDE_SHIFT_MAX)))


def quantize_multiplier(real, bits: int = MULT_BITS) -> tuple[np.ndarray, np.ndarray]:
    """Integer (mult, shift) with ``mult * 2**-shift ~= real`` for each element.

    ``real = m * 2**e`` with m in [0.5, 1): ``mult = round(m * 2**15)`` (a carry to
    2**15 renormalizes to 2**14 and e + 1), ``shift = 15 - e``; the relative error is at
    most 2**-15. Clamping (the product is only ever applied to ``|a| <= 2**24 - 1``):

    * every multiplier whose encoding would map all ``|a| <= 2**24 - 1`` to 0 (``real <=
      2**-25``, including 0; that is every shift >= 40, and (2**14, 39)) gets the fixed
      encoding ``(2**14, 40)``, which maps them to exactly 0 -- as the real multiplier
      does, since ``|real * a| < 0.5``.
    * ``shift < 1`` (``real >= 2**14`` after rounding): ``(2**15 - 1, 1)``: every
      nonzero ``a`` saturates (``|a * mult| >> 1 >= 16383``), exactly as the real
      multiplier would.

    ``bits`` = :data:`WIDE_MULT_BITS` (the wide lane, DaeConfig.wide_rq): ``mult =
    round(m * 2**22)`` in [2**21, 2**22), shift up to 47, the zero encoding ``(2**21, 47)``
    and saturation ``(2**22 - 1, 1)``; relative error at most 2**-22.

    Raises ``ValueError`` for negative, NaN or infinite multipliers.
    Returns int32 arrays of the input's shape.
    """
    mult_min, mult_max, shift_max = ranges(bits)
    r = np.asarray(real, dtype=np.float64)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("requantization multipliers must be finite and >= 0")
    m, e = np.frexp(r)
    mult = np.round(m * float(1 << bits)).astype(np.int64)
    carry = mult == (1 << bits)
    mult = np.where(carry, mult_min, mult)
    e = np.where(carry, e + 1, e).astype(np.int64)
    shift = bits - e
    # all-zero encodings: A_MAX * mult < 2**(shift - 1), i.e. even the largest |a| rounds to 0
    small = np.clip(shift, SHIFT_MIN, shift_max)
    tiny = (r == 0) | (shift >= shift_max) | (A_MAX * mult < (np.int64(1) << (small - 1)))
    huge = ~tiny & (shift < SHIFT_MIN)
    mult = np.where(tiny, mult_min, np.where(huge, mult_max, mult))
    shift = np.where(tiny, shift_max, np.where(huge, SHIFT_MIN, shift))
    return mult.astype(np.int32), shift.astype(np.int32)


def acc_bound(bias, reduction: int) -> np.ndarray:
    """Worst-case ``|acc|`` per channel: ``|bias| + 128*128 * reduction`` (int64).

    ``reduction`` is the number of products per output (``I * KH * KW``).
    """
    if reduction < 0:
        raise ValueError("reduction length must be >= 0")
    return np.abs(np.asarray(bias, dtype=np.int64)) + np.int64(MAX_PRODUCT) * int(reduction)


def pre_shift(bias, reduction: int) -> np.ndarray:
    """Per-channel pre-shift ``t``: the smallest t in [0, 15] with ``|acc >> t| <= 2**24-1``
    for every accumulator ``|acc| <= acc_bound(bias, reduction)``.

    ``acc >> t`` floors, so the most negative ``a`` is ``-ceil(B / 2**t)``; the condition
    is ``B <= (2**24 - 1) * 2**t``. Raises ``ValueError`` when no t <= 15 suffices.
    Returns int32 of ``bias``'s shape.
    """
    b = acc_bound(bias, reduction)
    t = np.zeros(b.shape, dtype=np.int64)
    while True:
        over = b > (np.int64(A_MAX) << t)
        if not np.any(over):
            return t.astype(np.int32)
        t = np.where(over, t + 1, t)
        if np.any(t > PRE_SHIFT_MAX):
            raise ValueError("accumulator bound too large for a 4-bit pre-shift "
                             f"(max {int(b.max())} > (2**24 - 1) * 2**{PRE_SHIFT_MAX})")


def pool_multiplier(divisor: int, bits: int = MULT_BITS) -> tuple[int, int]:
    """``(m_d, s_d) = quantize_multiplier(1 / divisor)``: the average pool's constant.

    ``avg = clip((sum * m_d + 2**(s_d - 1)) >> s_d, -128, 127)`` (t = 0, no ReLU).
    """
    if int(divisor) < 1:
        raise ValueError(f"pool divisor must be >= 1, got {divisor}")
    m, s = quantize_multiplier(1.0 / int(divisor), bits)
    return int(m), int(s)


def table_multiplier(real: float, values, targets, search: int = 256,
                     bits: int = MULT_BITS) -> tuple[int, int]:
    """``(mult, shift)`` near ``quantize_multiplier(real)`` whose rounding rule (t = 0, no
    ReLU, saturation) maps each int8 ``values[k]`` to ``targets[k]``.

    A requantization of int8 values has only 256 inputs, so the rule can reproduce another
    one's arithmetic exactly (e.g. onnxruntime's float ``rint(q * s_in / s_out)``, round
    half to even): the multipliers ``mult +- search`` at ``real``'s shift are tried, nearest
    first, and the first that maps every value to its target wins; when none does, the
    one with the fewest misses (``real``'s own on a tie).
    """
    v = np.asarray(values, dtype=np.int64)
    want = np.asarray(targets, dtype=np.int64)
    mult_min, mult_max, shift_max = ranges(bits)
    m0, s0 = (int(a[0]) for a in quantize_multiplier(np.asarray([real]), bits))
    if (m0, s0) in ((mult_min, shift_max), (mult_max, SHIFT_MIN)):
        return m0, s0
    half = np.int64(1) << (s0 - 1)
    best, best_miss = (m0, s0), None
    for dm in sorted(range(-search, search + 1), key=lambda d: (abs(d), d)):
        m = m0 + dm
        if not mult_min <= m <= mult_max:
            continue
        miss = int(np.count_nonzero(np.clip((v * m + half) >> s0, -128, 127) != want))
        if miss == 0:
            return m, s0
        if best_miss is None or miss < best_miss:
            best, best_miss = (m, s0), miss
    return best


def _per_channel(v, ndim: int, axis: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    if v.ndim == 1 and ndim > 1:
        shape = [1] * ndim
        shape[axis] = -1
        v = v.reshape(shape)
    return v


def round_shift(acc, mult, shift, axis: int = 0, pre: int | np.ndarray = 0) -> np.ndarray:
    """The rounding rule before ReLU and saturation: int64 ``((acc >> pre) * mult +
    2**(shift-1)) >> shift`` (per channel along ``axis``). Checks as :func:`requantize`.
    The residual add sums two of these (``reference.conv_add``)."""
    a = np.asarray(acc).astype(np.int64)
    m = _per_channel(mult, a.ndim, axis)
    s = _per_channel(shift, a.ndim, axis)
    t = _per_channel(pre, a.ndim, axis)
    # either width's ranges (the narrow engine refuses a wide word: dae_program, the sim)
    if np.any(s < SHIFT_MIN) or np.any(s > WIDE_SHIFT_MAX):
        raise ValueError(f"shift must be in [{SHIFT_MIN}, {WIDE_SHIFT_MAX}]")
    if np.any(m < MULT_MIN) or np.any(m > WIDE_MULT_MAX):
        raise ValueError(f"mult must be in [{MULT_MIN}, {WIDE_MULT_MAX}]")
    if np.any(t < 0) or np.any(t > PRE_SHIFT_MAX):
        raise ValueError(f"pre-shift must be in [0, {PRE_SHIFT_MAX}]")
    a = a >> t
    if a.size and int(np.abs(a).max()) > A_MAX:
        raise ValueError(f"pre-shifted accumulator {int(np.abs(a).max())} does not fit the "
                         f"{A_BITS}-bit multiplier input (|a| <= {A_MAX})")
    return (a * m + (np.int64(1) << (s - 1))) >> s


def requantize(acc, mult, shift, relu: bool, axis: int = 0, pre: int | np.ndarray = 0,
               zp: int = 0) -> np.ndarray:
    """Apply the rounding rule to int32 accumulators; per-channel along ``axis``.

    ``zp``: the output's zero point (``RQ_ZP_OUT``), added after ReLU and before the
    saturation: ``y = clip(max(R, 0) + zp, -128, 127)`` (ReLU means ``y >= zp``).

    ``mult``, ``shift`` and ``pre`` (the pre-shift t) are scalars or 1-D arrays of the
    length of ``acc``'s ``axis``. Raises ``ValueError`` for parameters outside the
    hardware's ranges, and when a pre-shifted accumulator does not fit the 25-bit
    multiplier input (the hardware would wrap: t was chosen too small).
    Returns int8 of ``acc``'s shape.
    """
    y = round_shift(acc, mult, shift, axis, pre)
    return saturate(y, relu, zp)


def saturate(y, relu: bool, zp: int = 0) -> np.ndarray:
    """The end of every requantization: ReLU (``y >= 0``), plus the output's zero point
    ``zp``, saturated to int8."""
    if relu:
        y = np.maximum(y, 0)
    return np.clip(np.asarray(y, dtype=np.int64) + int(zp), -128, 127).astype(np.int8)
