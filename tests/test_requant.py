"""The rounding rule: 16-bit multiplier + pre-shift (one DSP48E1 per lane), numpy vs C."""
import ctypes
import subprocess
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from zynq_squeeze.quantize.requant import (
    A_MAX,
    MULT_MAX,
    MULT_MIN,
    PRE_SHIFT_MAX,
    SATURATE_ENCODING,
    SHIFT_MAX,
    WIDE_MULT_BITS,
    WIDE_MULT_MIN,
    WIDE_SATURATE_ENCODING,
    WIDE_ZERO_ENCODING,
    MULT_BITS,
    WIDE_MULT_MAX,
    WIDE_SHIFT_MAX,
    needs_wide,
    ranges,
    SHIFT_MIN,
    ZERO_ENCODING,
    acc_bound,
    pool_multiplier,
    pre_shift,
    quantize_multiplier,
    requantize,
)

HYP = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def exact(a: int, mult: int, shift: int, pre: int = 0, relu: bool = False) -> int:
    """The rule with Python integers: clip(floor((a >> t) * mult / 2**shift + 1/2))."""
    y = Fraction((a >> pre) * mult, 1 << shift) + Fraction(1, 2)
    y = y.numerator // y.denominator
    if relu:
        y = max(y, 0)
    return min(max(y, -128), 127)


def round_half_up(x: Fraction) -> int:
    x = x + Fraction(1, 2)
    return x.numerator // x.denominator


# ------------------------------------------------------------------ the rule in numpy

def test_ties_round_half_up():
    # mult/2**shift = 2**14/2**15 = 0.5 exactly
    acc = np.array([5, -5, 3, -3, 1, -1, 0, 4, -4], dtype=np.int32)
    y = requantize(acc, 1 << 14, 15, relu=False)
    assert y.tolist() == [3, -2, 2, -1, 1, 0, 0, 2, -2]


def test_relu_and_saturation():
    acc = np.array([-1000, 1000, 254, 255, -256, -257], dtype=np.int32)
    assert requantize(acc, 1 << 14, 15, relu=True).tolist() == [0, 127, 127, 127, 0, 0]
    assert requantize(acc, 1 << 14, 15, relu=False).tolist() == [-128, 127, 127, 127, -128, -128]


def test_per_channel_axis():
    acc = np.arange(-6, 6, dtype=np.int32).reshape(2, 2, 3)
    y = requantize(acc, np.array([1 << 14, 1 << 14]), np.array([14, 15]), relu=False, axis=0)
    assert y[0].tolist() == acc[0].tolist()
    assert y[1].tolist() == [[0, 1, 1], [2, 2, 3]]
    # per-channel pre-shift: channel 1 floors acc / 2 first (-3 >> 1 = -2, 3 >> 1 = 1)
    y = requantize(acc, 1 << 14, 14, relu=False, axis=0, pre=np.array([0, 1]))
    assert y[0].tolist() == acc[0].tolist()
    assert y[1].tolist() == [[0, 0, 1], [1, 2, 2]]


def test_quantize_multiplier_known():
    m, s = quantize_multiplier(np.array([0.5, 1.0, 0.75, 2.0 ** -10, 1 / 6]))
    assert m.tolist() == [1 << 14, 1 << 14, 3 << 13, 1 << 14, 21845]
    assert s.tolist() == [15, 14, 15, 24, 17]
    assert m.dtype == np.int32 and s.dtype == np.int32
    # rounding carry: m just below 1 rounds to 2**15 and renormalizes
    m, s = quantize_multiplier(np.array([1 - 2 ** -20]))
    assert m[0] == 1 << 14 and s[0] == 14


@HYP
@given(st.floats(0, 1e9, allow_nan=False, allow_infinity=False) |
       st.builds(lambda m, e: m * 2.0 ** e, st.floats(0.5, 1.0, exclude_max=True),
                 st.integers(-60, 40)))
@example(2.0 ** -25 * (1 + 2.0 ** -17))   # rounds to 2**-25: clamped to the zero encoding
@example(2.0 ** 14 * (1 - 2.0 ** -17))    # carries to 2**14: the saturation encoding
def test_quantize_multiplier_bounds_and_accuracy(real):
    m, s = (int(v) for v in quantize_multiplier(real))
    assert MULT_MIN <= m <= MULT_MAX and SHIFT_MIN <= s <= SHIFT_MAX
    if real <= 2.0 ** -25:
        assert (m, s) == ZERO_ENCODING
    elif (m, s) == ZERO_ENCODING:  # its 15-bit rounding is 2**-25: still all zeros
        assert real < 2.0 ** -25 * (1 + 2.0 ** -15)
    elif real >= 2.0 ** 14:
        assert (m, s) == SATURATE_ENCODING
    elif (m, s) != SATURATE_ENCODING:  # (just below 2**14, a carry can saturate too)
        # relative error of a mantissa rounded to 15 bits
        assert abs(Fraction(m, 1 << s) - Fraction(real)) <= Fraction(real) * Fraction(1, 1 << 15)


# --- the wide (22-bit) multiplier: a QDQ model's (DaeConfig.wide_rq)
@HYP
@given(st.floats(0, 1e9, allow_nan=False, allow_infinity=False) |
       st.builds(lambda m, e: m * 2.0 ** e, st.floats(0.5, 1.0, exclude_max=True),
                 st.integers(-60, 40)),
       st.integers(-A_MAX, A_MAX), st.booleans())
@example(2.0 ** -25 * (1 + 2.0 ** -24), A_MAX, False)  # rounds to 2**-25: the zero encoding
@example(2.0 ** 14 * (1 - 2.0 ** -24), 1, False)       # carries to 2**14: saturation
@example(2.0 ** -24, -A_MAX, False)                      # the smallest unclamped: reaches -1
def test_wide_multiplier_bounds_accuracy_and_encodings(real, a, relu):
    """22 bits: mult in [2**21, 2**22), shift in [1, 47], relative error <= 2**-22; the
    zero encoding maps every input to 0 (as real does: |real * a| < 0.5), saturation
    saturates every nonzero input, and the result is within one step of the real product
    (exactly it unless within |real * a| 2**-22 of a half)."""
    m, s = (int(v) for v in quantize_multiplier(real, WIDE_MULT_BITS))
    assert WIDE_MULT_MIN <= m <= WIDE_MULT_MAX and SHIFT_MIN <= s <= WIDE_SHIFT_MAX
    y = int(requantize(np.array([a]), m, s, relu)[0])
    want = round_half_up(Fraction(real) * a)
    if (m, s) == WIDE_ZERO_ENCODING:
        assert real < 2.0 ** -25 * (1 + 2.0 ** -22)
        assert requantize(np.array([A_MAX, -A_MAX]), m, s, False).tolist() == [0, 0]
    elif (m, s) == WIDE_SATURATE_ENCODING:
        assert real >= 2.0 ** 14 * (1 - 2.0 ** -22)
        assert y == (127 if a > 0 else (0 if relu or a == 0 else -128))
    else:
        assert abs(Fraction(m, 1 << s) - Fraction(real)) <= Fraction(real) * Fraction(1, 1 << 22)
        if -128 <= want <= 127:
            want = max(want, 0) if relu else want
            assert abs(y - want) <= 1
            if y != want:
                frac = Fraction(real) * a - (round_half_up(Fraction(real) * a) - Fraction(1, 2))
                assert min(frac, 1 - frac) <= abs(Fraction(real) * a) * Fraction(1, 1 << 22)
    assert not needs_wide(*quantize_multiplier(real))  # the narrow one never needs it
    assert needs_wide(m, s) == (m > MULT_MAX or s > SHIFT_MAX)


@HYP
@given(st.floats(0, 2.0 ** -25), st.integers(-A_MAX, A_MAX), st.booleans())
def test_zero_encoding_maps_every_input_to_zero(real, a, relu):
    m, s = quantize_multiplier(real)
    assert (int(m), int(s)) == ZERO_ENCODING
    assert requantize(np.array([a, A_MAX, -A_MAX, 1, -1]), m, s, relu).tolist() == [0] * 5
    # ... which is the correctly rounded result: |real * a| < 0.5
    assert round_half_up(Fraction(real) * a) == 0


def test_zero_encoding_is_exactly_the_all_zero_multipliers():
    """Every encoding that maps all inputs to 0 is replaced by the fixed one, no other."""
    for real in (2.0 ** -25, np.nextafter(2.0 ** -25, 1), 2.0 ** -25 * (1 - 2 ** -17)):
        m, s = (int(v) for v in quantize_multiplier(real))
        all_zero = A_MAX * m < 1 << (s - 1)
        y = requantize(np.array([A_MAX, -A_MAX]), m, s, False).tolist()
        assert ((m, s) == ZERO_ENCODING) == (y == [0, 0]), (real, m, s, y)
        assert all_zero == (y == [0, 0])


def test_zero_encoding_threshold():
    # the smallest multiplier that is not clamped still reaches 1 at the largest input
    m, s = quantize_multiplier(2.0 ** -24)
    assert (int(m), int(s)) == (1 << 14, 38)
    assert requantize(np.array([A_MAX, -A_MAX]), m, s, False).tolist() == [1, -1]
    assert int(quantize_multiplier(2.0 ** -25 * 0.999)[1]) == SHIFT_MAX


@HYP
@given(st.floats(2.0 ** 14, 1e30), st.integers(-A_MAX, A_MAX).filter(lambda a: a != 0),
       st.booleans())
def test_saturation_encoding(real, a, relu):
    m, s = quantize_multiplier(real)
    assert (int(m), int(s)) == SATURATE_ENCODING
    y = int(requantize(np.array([a]), m, s, relu)[0])
    assert y == (127 if a > 0 else (0 if relu else -128))
    assert int(requantize(np.array([0]), m, s, relu)[0]) == 0


@HYP
@given(st.integers(-(2 ** 31), 2 ** 31 - 1), st.integers(MULT_MIN, MULT_MAX),
       st.integers(SHIFT_MIN, SHIFT_MAX), st.integers(0, PRE_SHIFT_MAX), st.booleans())
def test_numpy_matches_exact_integers(acc, mult, shift, pre, relu):
    if abs(acc >> pre) > A_MAX:
        with pytest.raises(ValueError, match="25-bit"):
            requantize(np.array([acc]), mult, shift, relu, pre=pre)
        return
    y = requantize(np.array([acc], dtype=np.int32), mult, shift, relu, pre=pre)
    assert int(y[0]) == exact(acc, mult, shift, pre, relu)


@HYP
@given(st.floats(2.0 ** -25, 2.0 ** 14, exclude_max=True), st.integers(-A_MAX, A_MAX))
def test_rounding_error_against_the_real_multiplier(real, a):
    """Against round_half_up(real * a): at most one step off (the multiplier's 2**-15
    relative error), and only near a half-integer."""
    m, s = quantize_multiplier(real)
    y = int(requantize(np.array([a]), m, s, False)[0])
    want = round_half_up(Fraction(real) * a)
    if -128 <= want <= 127:
        assert abs(y - want) <= 1
        if y != want:
            frac = Fraction(real) * a - (want - Fraction(1, 2))
            assert min(frac, 1 - frac) <= abs(Fraction(real) * a) * Fraction(1, 1 << 15)


def test_requantize_rejects_out_of_range():
    with pytest.raises(ValueError, match="shift"):
        requantize(np.array([1]), 1 << 14, 0, relu=False)
    with pytest.raises(ValueError, match="shift"):  # the wide lane's ranges: shift <= 47
        requantize(np.array([1]), 1 << 14, 48, relu=False)
    with pytest.raises(ValueError, match="mult"):
        requantize(np.array([1]), 1 << 30, 31, relu=False)  # the old 32-bit encoding
    with pytest.raises(ValueError, match="mult"):
        requantize(np.array([1]), 1 << 22, 31, relu=False)
    with pytest.raises(ValueError, match="mult"):
        requantize(np.array([1]), (1 << 14) - 1, 14, relu=False)
    with pytest.raises(ValueError, match="pre-shift"):
        requantize(np.array([1]), 1 << 14, 14, relu=False, pre=16)
    with pytest.raises(ValueError, match="25-bit"):
        requantize(np.array([A_MAX + 1]), 1 << 14, 14, relu=False)
    # the pre-shift brings it back into range: (2 A_MAX + 1) >> 1 = A_MAX
    assert requantize(np.array([2 * A_MAX + 1]), 1 << 14, 25, False, pre=1).tolist() == [127]


def test_quantize_multiplier_rejects_bad():
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError):
            quantize_multiplier(np.array([bad]))


# ------------------------------------------------------------------ the pre-shift

@HYP
@given(st.integers(-(2 ** 31), 2 ** 31 - 1), st.integers(0, 1 << 20))
def test_pre_shift_is_minimal_and_sufficient(bias, reduction):
    bound = int(acc_bound(np.array([bias]), reduction)[0])
    assert bound == abs(bias) + 128 * 128 * reduction
    t = int(pre_shift(np.array([bias]), reduction)[0])
    assert 0 <= t <= PRE_SHIFT_MAX
    assert bound <= A_MAX << t                      # sufficient: |acc >> t| <= A_MAX ...
    assert abs((-bound) >> t) <= A_MAX and (bound >> t) <= A_MAX  # ... at both extremes
    assert t == 0 or bound > A_MAX << (t - 1)       # minimal


def test_pre_shift_limits():
    # 2**14 * 1023 + 16383 = 2**24 - 1 = A_MAX: fits; one more needs t = 1
    assert pre_shift(np.array([16383, -16383, 16384, -16384]), 1023).tolist() == [0, 0, 1, 1]
    assert pre_shift(np.array([2 ** 31 - 1]), 0).tolist() == [8]       # int32 needs t <= 8
    with pytest.raises(ValueError, match="pre-shift"):
        pre_shift(np.array([0]), 1 << 30)  # 2**44 > (2**24 - 1) * 2**15


def test_squeezenet_needs_no_pre_shift():
    """Every SqueezeNet 1.0 / 1.1 layer keeps t = 0 (the largest worst-case accumulator,
    |bias| + 2**14 * 576 in fire9's expand3x3, is ~0.56 of the 25-bit limit)."""
    import zynq_squeeze
    from zynq_squeeze.codegen.lower import lower_function
    from zynq_squeeze.schedule.instructions import layer_convs
    from zynq_squeeze.frontend import from_onnx
    from zynq_squeeze.frontend.models import squeezenet
    from zynq_squeeze.quantize.reference import conv_pre_shift

    rng = np.random.default_rng(10)
    for version in ("1.1", "1.0"):
        mod = from_onnx(squeezenet(version, seed=0))
        calib = [rng.standard_normal((1, 3, 224, 224)).astype(np.float32) for _ in range(2)]
        pmod, _ = zynq_squeeze.partition(zynq_squeeze.calibrate(mod, calib))
        funcs = [f for _, f in pmod.functions.items()
                 if f.attrs is not None and "Codegen" in f.attrs]
        convs = [c for f in funcs for layer, _, _ in lower_function(f).layers
                 for c in layer_convs(layer)]
        assert len(convs) == 26  # conv1, 8 x (squeeze, expand1, expand3), conv10
        worst = max(int(acc_bound(c.bias, int(np.prod(c.weight.shape[1:]))).max())
                    for c in convs)
        assert worst < 0.6 * A_MAX, worst
        assert all(not conv_pre_shift(c).any() for c in convs)


# ------------------------------------------------------------------ average pools

def test_pool_multiplier_known():
    assert pool_multiplier(1) == (1 << 14, 14)
    assert pool_multiplier(4) == (1 << 14, 16)
    assert pool_multiplier(6) == (21845, 17)
    assert pool_multiplier(169) == quantize_multiplier(1 / 169)  # SqueezeNet 1.1's 13 x 13
    with pytest.raises(ValueError):
        pool_multiplier(0)


def test_pool_divisor_limit_matches_the_multiplier_input():
    from zynq_squeeze.partitioning.pool_spec import AVG_MAX_DIVISOR

    assert 128 * AVG_MAX_DIVISOR <= A_MAX < 128 * (AVG_MAX_DIVISOR + 1)


@pytest.mark.parametrize("d", [1, 2, 3, 4, 6, 9, 25, 49, 169, 202, 225, 3025, 131071])
def test_pool_rule_against_exact_average(d):
    """Every window sum s in [-128 d, 127 d]: the result is round_half_up(s / d) up to one
    step; for d <= 202 it differs only at exact ties (s / d = k + 1/2, d even), where the
    rounded-down multiplier of 1/d lands just below the tie."""
    m, sh = pool_multiplier(d)
    s = np.arange(-128 * d, 127 * d + 1, dtype=np.int64)
    y = requantize(s, m, sh, False).astype(np.int64)
    want = np.clip((2 * s + d) // (2 * d), -128, 127)
    assert np.abs(y - want).max() <= 1
    tie = (2 * s) % (2 * d) == d
    if d <= 202:
        assert np.array_equal(y[~tie], want[~tie])
    if d & (d - 1) == 0:  # powers of two: 1/d is exact
        assert np.array_equal(y, want)


# ------------------------------------------------------------------ numpy vs C

SHIM = r"""
#include <stdint.h>
#include "zsq_dae.h"
#ifndef ZSQD_WIDE
#define ZSQD_WIDE 0
#endif
#ifndef __SYNTHESIS__
thread_local zsqd_charge zsqd_now;
#endif
extern "C" {
/* zsqd_requant per element (the engine's lane, Xilinx's ap_int types): acc with the
 * bias already added (bias 0 in the params word), mult, shift, pre as int32 arrays */
void rq_scalar(int n, const int32_t *acc, const int32_t *mult, const int32_t *shift,
               const int32_t *pre, int relu, int8_t *out) {
  for (int i = 0; i < n; i++) {
    zsqd_word p = 0;
    p.range(53, 32) = mult[i];
    p.range(59, 54) = shift[i];
    p.range(63, 60) = pre[i];
    out[i] = (int8_t)zsqd_requant<ZSQD_WIDE>(ap_int<32>(acc[i]), p, relu, false, 0, 1, false, 0, 0, 0).to_int();
  }
}
/* the residual add's lane: the same with the bypass byte b[i] rescaled by (bm, bs) */
void rq_add(int n, const int32_t *acc, const int32_t *mult, const int32_t *shift,
            const int32_t *pre, const int8_t *b, int bm, int bs, int relu, int8_t *out) {
  for (int i = 0; i < n; i++) {
    zsqd_word p = 0;
    p.range(53, 32) = mult[i];
    p.range(59, 54) = shift[i];
    p.range(63, 60) = pre[i];
    out[i] = (int8_t)zsqd_requant<ZSQD_WIDE>(ap_int<32>(acc[i]), p, relu, false, 0, 1, true, b[i], bm, bs).to_int();
  }
}
/* zero points (docs/ENGINE.md "Arithmetic: zero points"): the lane with zp_out and, when
 * add, the bypass byte's zero point bp_zp */
void rq_zp(int n, const int32_t *acc, const int32_t *mult, const int32_t *shift,
           const int32_t *pre, const int8_t *b, int bm, int bs, int relu, int add, int zp_out, int bp_zp,
           int8_t *out) {
  for (int i = 0; i < n; i++) {
    zsqd_word p = 0;
    p.range(53, 32) = mult[i];
    p.range(59, 54) = shift[i];
    p.range(63, 60) = pre[i];
    out[i] = (int8_t)zsqd_requant<ZSQD_WIDE>(ap_int<32>(acc[i]), p, relu, false, 0, 1, add, b[i], bm, bs, zp_out, bp_zp,
                                  0).to_int();
  }
}
/* the average with a sum offset (RQ_AVG_BIAS) and an output zero point */
void rq_avg_zp(int n, const int32_t *sum, int mult, int shift, int bias, int zp_out, int8_t *out) {
  for (int i = 0; i < n; i++)
    out[i] = (int8_t)zsqd_requant<ZSQD_WIDE>(ap_int<32>(sum[i]), zsqd_word(0), false, true, mult, shift, false, 0, 0,
                                  0, zp_out, 0, bias).to_int();
}
/* the average-pool form: constant (mult, shift), no bias, pre-shift or ReLU */
void rq_avg(int n, const int32_t *sum, int mult, int shift, int8_t *out) {
  for (int i = 0; i < n; i++)
    out[i] = (int8_t)zsqd_requant<ZSQD_WIDE>(ap_int<32>(sum[i]), zsqd_word(0), false, true, mult, shift, false, 0, 0,
                                  0).to_int();
}
}
"""


@pytest.fixture(scope="module", params=[MULT_BITS, WIDE_MULT_BITS], ids=["narrow", "wide"])
def rq_lib(tmp_path_factory, request):
    """The engine's requantization lane (src/zsq_dae.h) compiled against Xilinx's ap_int:
    the narrow (15-bit) and the wide (22-bit, ZSQD_WIDE_RQ) multiplier; ``.bits``."""
    from zynq_squeeze import native
    from zynq_squeeze.toolchain import compiler

    _, cxx, host_flags = compiler.toolchain(True)
    d = tmp_path_factory.mktemp("rq")
    (d / "shim.cpp").write_text(SHIM)
    so = d / "shim.so"
    subprocess.run([cxx, *host_flags, *compiler.WARN_FLAGS, "-std=c++17", "-shared",
                    f"-DZSQD_WIDE={int(request.param == WIDE_MULT_BITS)}",
                    "-isystem", str(native.ap_types_dir()), "-I", str(native.src_dir()),
                    str(d / "shim.cpp"), "-o", str(so)], check=True, capture_output=True)
    lib = ctypes.CDLL(str(so))
    lib.bits = request.param
    return lib


def _p(a: np.ndarray):
    return a.ctypes.data_as(ctypes.c_void_p)


def _random_case(rng, n, bits: int = MULT_BITS):
    """acc (int32, bias included) with |acc >> t| <= A_MAX, and random valid params of the
    ``bits``-wide multiplier (the wide lane's: over its whole ranges, narrow pairs too)."""
    pre = rng.integers(0, PRE_SHIFT_MAX + 1, n)
    a = rng.integers(-A_MAX, A_MAX + 1, n)
    a[: n // 8] = rng.choice([A_MAX, -A_MAX, 0, 1, -1], n // 8)  # the extremes
    acc = (a << pre) + rng.integers(0, 1 << 15, n) % (np.int64(1) << pre)  # floor back to a
    keep = (acc >= -(2 ** 31)) & (acc < 2 ** 31)
    acc, pre = acc[keep], pre[keep]
    _, mult_max, shift_max = ranges(bits)
    m = rng.integers(MULT_MIN, mult_max + 1, acc.size)
    s = rng.integers(SHIFT_MIN, shift_max + 1, acc.size)
    if bits == WIDE_MULT_BITS:  # mostly normalized 22-bit multipliers, their extremes too
        m[acc.size // 4:] = rng.integers(WIDE_MULT_MIN, mult_max + 1, acc.size - acc.size // 4)
        m[: acc.size // 16] = rng.choice([MULT_MIN, MULT_MAX, WIDE_MULT_MIN, mult_max],
                                         acc.size // 16)
    return acc.astype(np.int32), m.astype(np.int32), s.astype(np.int32), pre.astype(np.int32)


def test_c_lane_bit_exact(rq_lib):
    rng = np.random.default_rng(1)
    acc, m, s, pre = _random_case(rng, 200_000, rq_lib.bits)
    for relu in (0, 1):
        out = np.empty(acc.size, np.int8)
        rq_lib.rq_scalar(acc.size, _p(acc), _p(m), _p(s), _p(pre), relu, _p(out))
        want = requantize(acc, m, s, bool(relu), pre=pre)
        assert np.array_equal(out, want), np.argwhere(out != want)[:5]
        assert len(np.unique(want)) > 100  # outputs spread, not only saturation


@pytest.mark.parametrize("d", [1, 9, 169, 225, 3025])
def test_c_average_bit_exact(rq_lib, d):
    s = np.arange(-128 * d, 127 * d + 1, dtype=np.int32)
    m, sh = pool_multiplier(d, rq_lib.bits)
    out = np.empty(s.size, np.int8)
    rq_lib.rq_avg(s.size, _p(s), int(m), int(sh), _p(out))
    assert np.array_equal(out, requantize(s.astype(np.int64), m, sh, False))


@pytest.mark.parametrize("bm,bs", [(MULT_MIN, 15), (MULT_MAX, 1), (20000, 14), (MULT_MIN, SHIFT_MAX),
                                   (30000, 22), WIDE_ZERO_ENCODING, WIDE_SATURATE_ENCODING,
                                   (3_000_000, 29)])
def test_c_residual_add_lane_bit_exact(rq_lib, bm, bs):
    """The residual add's lane (zsqd_requant with add) against the numpy reference's
    formula: round_shift(acc) + round_shift(b), ReLU, saturation."""
    from zynq_squeeze.quantize.requant import round_shift

    rng = np.random.default_rng(bs)
    if rq_lib.bits == MULT_BITS and (bm > MULT_MAX or bs > SHIFT_MAX):
        pytest.skip("a wide bypass multiplier: only the wide lane takes it")
    acc, m, s, pre = _random_case(rng, 50_000, rq_lib.bits)
    b = rng.integers(-128, 128, acc.size).astype(np.int8)
    for relu in (0, 1):
        out = np.empty(acc.size, np.int8)
        rq_lib.rq_add(acc.size, _p(acc), _p(m), _p(s), _p(pre), _p(b), bm, bs, relu, _p(out))
        y = round_shift(acc, m, s, pre=pre) + round_shift(b, bm, bs)
        want = np.clip(np.maximum(y, 0) if relu else y, -128, 127).astype(np.int8)
        assert np.array_equal(out, want), np.argwhere(out != want)[:5]


def test_table_multiplier_reproduces_a_table_or_misses_least():
    """``table_multiplier``: a (mult, shift) whose rule gives the wanted table exactly
    (here: float round-half-even of q * 0.7071, which the nearest multiplier need not),
    and, for a table no multiplier gives, the candidate with the fewest misses."""
    from zynq_squeeze.quantize.requant import table_multiplier

    q = np.arange(-128, 128, dtype=np.int64)
    want = np.clip(np.rint(q.astype(np.float32) * np.float32(0.7071)), -128, 127).astype(np.int64)
    m, s = table_multiplier(0.7071, q, want)
    got = np.clip((q * m + (1 << (s - 1))) >> s, -128, 127)
    np.testing.assert_array_equal(got, want)
    noisy = want.copy()
    noisy[200] += 3  # no monotone rule maps 72 there
    m2, s2 = table_multiplier(0.7071, q, noisy)
    got2 = np.clip((q * m2 + (1 << (s2 - 1))) >> s2, -128, 127)
    assert int(np.count_nonzero(got2 != noisy)) == 1


# --- zero points (issue 11: unsigned activations)
@pytest.mark.parametrize("zp_out,bp_zp", [(-128, 0), (0, -128), (-128, -128), (5, -3)])
def test_c_lane_zero_points_bit_exact(rq_lib, zp_out, bp_zp):
    """The lane with an output zero point (after ReLU, before saturation) and a bypass
    zero point (b - bp_zp, 9 bits) against numpy: requantize(zp=) / conv_add's formula."""
    from zynq_squeeze.quantize.requant import round_shift, saturate

    rng = np.random.default_rng(abs(zp_out * 1000 + bp_zp))
    acc, m, s, pre = _random_case(rng, 50_000, rq_lib.bits)
    b = rng.integers(-128, 128, acc.size).astype(np.int8)
    bm, bs = 20000, 14
    for relu in (0, 1):
        for add in (0, 1):
            out = np.empty(acc.size, np.int8)
            rq_lib.rq_zp(acc.size, _p(acc), _p(m), _p(s), _p(pre), _p(b), bm, bs, relu, add,
                         zp_out, bp_zp, _p(out))
            y = round_shift(acc, m, s, pre=pre)
            if add:
                y = y + round_shift(b.astype(np.int64) - bp_zp, bm, bs)
            want = saturate(y, bool(relu), zp_out)
            assert np.array_equal(out, want), np.argwhere(out != want)[:5]
            if relu:
                assert want.min() >= max(zp_out, -128)
    assert np.array_equal(requantize(acc, m, s, False, pre=pre, zp=zp_out),
                          saturate(round_shift(acc, m, s, pre=pre), False, zp_out))


@pytest.mark.parametrize("d", [1, 9, 49, 225, 65793])
def test_c_average_zero_point_bit_exact(rq_lib, d):
    """An average of a tensor with zero point -128: every window sum of q in [-128, 127]
    offset by RQ_AVG_BIAS = 128 d (the sum of q - zp in [0, 255 d], within 25 bits up to
    d = 65793), plus the output's zero point."""
    rng = np.random.default_rng(d)
    s = np.unique(np.concatenate([rng.integers(-128 * d, 127 * d + 1, 20_000),
                                  [-128 * d, 127 * d]])).astype(np.int32)
    m, sh = pool_multiplier(d, rq_lib.bits)
    out = np.empty(s.size, np.int8)
    rq_lib.rq_avg_zp(s.size, _p(s), int(m), int(sh), 128 * d, -128, _p(out))
    want = requantize(s.astype(np.int64) + 128 * d, m, sh, False, zp=-128)
    assert np.array_equal(out, want)
    assert want.min() == -128 and want.max() == 127  # the whole int8 range is used
