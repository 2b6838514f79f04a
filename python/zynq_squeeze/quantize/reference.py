"""The integer golden model of the accelerator (numpy).

``run_layer(layer, x)`` computes exactly what the C engine computes for a
:class:`~zynq_squeeze.quantize.layers.ConvLayer` or :class:`~zynq_squeeze.quantize.layers.FireLayer` on one
int8 ``(C, H, W)`` image: int32 accumulation (bias + sum of int8 products), the rounding
rule of :mod:`zynq_squeeze.quantize.requant` (pre-shift ``t`` per output channel from
:func:`conv_pre_shift`, 16-bit multiplier, shift), ReLU, int8 saturation, then the fused
pool:

* max pool: maximum over the window's valid (non-padding) elements;
* avg pool: ``s`` = sum of the window's int8 values, ``d`` = the element count shared by
  every window (``PoolSpec.avg_divisor``; pools whose windows differ are not
  accelerator pools and raise ``ValueError``), ``(m_d, s_d) = pool_multiplier(d)``:
  ``y = clip((s * m_d + 2**(s_d - 1)) >> s_d, -128, 127)`` -- the requantization rule
  with ``t = 0`` and no ReLU;
* global average: the same over the whole plane (``d = H*W``);
* an average pool that also changes the scale (``layers.avg_requant``: a standalone
  ``PoolLayer``'s or a fused pool's ``pool_rq``) uses its own ``(m, s)`` instead.

Convolutions accumulate one kernel offset at a time as a matrix product in float64,
which is exact here: every partial sum is an integer below 2**53 (|x*w| <= 2**14 and
at most 2**20 terms; :func:`conv_acc` checks the bound).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..partitioning.pool_spec import avg_pool_reason
from .layers import (ConvAddLayer, ConvLayer, ConvParams, FireLayer, PoolLayer, PoolSpec,
                     avg_requant, pool_zero_points)
from .requant import A_MAX, pool_multiplier, pre_shift, requantize, round_shift, saturate


def conv_acc(p: ConvParams, x: np.ndarray) -> np.ndarray:
    """int64 accumulators ``bias + sum x*w`` of conv ``p`` on int8 ``x`` (C, H, W)."""
    c, h, w = x.shape
    o, i, kh, kw = p.weight.shape
    g = p.groups
    if i * g != c or o % g:
        raise ValueError(f"conv expects {i * g} input channels in {g} groups, got {c}")
    if i * kh * kw > (1 << 20):
        raise ValueError("reduction too long for exact float64 accumulation")
    oh, ow = p.out_hw(h, w)
    t, l, b, r = p.pads
    sh, sw = p.stride
    # padding is the input's zero point (real 0; LOAD_INPUT's LI_PAD, the fire's halo)
    xp = np.full((c, h + t + b, w + l + r), float(p.zp_in), dtype=np.float64)
    xp[:, t:t + h, l:l + w] = x
    # groups: output channels [gi*og, (gi+1)*og) read input channels [gi*i, (gi+1)*i)
    wf = p.weight.astype(np.float64).reshape(g, o // g, i, kh, kw)
    acc = np.zeros((g, o // g, oh * ow), dtype=np.float64)
    for ky in range(kh):
        for kx in range(kw):
            sl = xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
            acc += wf[:, :, :, ky, kx] @ sl.reshape(g, i, oh * ow)
    out = acc.astype(np.int64).reshape(o, oh, ow)
    return out + np.asarray(p.bias, dtype=np.int64).reshape(o, 1, 1)


def conv_pre_shift(p: ConvParams) -> np.ndarray:
    """Per-output-channel pre-shift ``t`` of conv ``p`` (int32 [O]): the smallest shift
    that keeps every possible accumulator inside the multiplier's 25-bit input
    (:func:`~zynq_squeeze.quantize.requant.pre_shift` of ``bias`` and ``I*KH*KW``).
    The compiler quantizes ``real * 2**t`` into ``(mult, shift)``; the engine reads t
    from the params word ``shift | t << 8``."""
    _, i, kh, kw = p.weight.shape
    return pre_shift(np.asarray(p.bias).reshape(-1), i * kh * kw)


def conv(p: ConvParams, x: np.ndarray) -> np.ndarray:
    """int8 output of conv + bias + requant (+ReLU) + saturation."""
    return requantize(conv_acc(p, x), p.mult, p.shift, p.relu, axis=0, pre=conv_pre_shift(p),
                      zp=p.zp_out)


def avg_pool_constants(spec: PoolSpec, h: int, w: int) -> tuple[int, int, int]:
    """``(d, m_d, s_d)`` of average pool ``spec`` on an (h, w) plane: the divisor shared
    by every window and its multiplier/shift. Raises ``ValueError`` when the
    accelerator cannot apply the pool (window sizes differ, or d too large)."""
    reason = avg_pool_reason(spec, h, w)
    if reason is not None:
        raise ValueError(reason)
    d = spec.avg_divisor(h, w)
    m, s = pool_multiplier(d)
    return d, m, s


def avg_zero_point_reason(spec: PoolSpec, h: int, w: int) -> str | None:
    """Why average pool ``spec`` on an (h, w) plane cannot read a tensor with a nonzero
    zero point, or None. The engine offsets every window sum by one constant ``-d * zp``
    (``RQ_AVG_BIAS``), so every window must hold exactly d inputs (a pool that counts
    padding positions in d sums fewer), and ``(q - zp) <= 255`` summed over d must fit
    the 25-bit multiplier input."""
    reason = avg_pool_reason(spec, h, w)
    if reason is not None:
        return reason
    d = spec.avg_divisor(h, w)
    if not spec.global_pool:
        valid = replace(spec, count_include_pad=False)
        vy, vx = set(valid.window_counts(h, 0)), set(valid.window_counts(w, 1))
        if len(vy) != 1 or len(vx) != 1 or vy.pop() * vx.pop() != d:
            return "the average counts padding positions"
    if 255 * d > A_MAX:
        return f"{d} elements of up to 255 exceed the 25-bit multiplier input"
    return None


def avg_sum_offset(spec: PoolSpec, h: int, w: int, zp_in: int) -> int:
    """``RQ_AVG_BIAS``: what an average pool adds to every window sum of an input with
    zero point ``zp_in``, ``-d * zp_in``; ``ValueError`` when it cannot
    (:func:`avg_zero_point_reason`)."""
    if zp_in == 0:
        return 0
    reason = avg_zero_point_reason(spec, h, w)
    if reason is not None:
        raise ValueError(f"average pool of a tensor with zero point {zp_in}: {reason}")
    return -spec.avg_divisor(h, w) * int(zp_in)


def pool(spec: PoolSpec, x: np.ndarray, avg_rq: tuple[int, int] | None = None,
         zp: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Apply a :class:`PoolSpec` to int8 ``x`` (C, H, W) with the engine's arithmetic.
    ``avg_rq``: an average pool's (mult, shift) when it also rescales (a standalone
    ``PoolLayer``); by default ``pool_multiplier(d)``. ``zp``: the zero points of input
    and output (a max pool needs them equal; an average requantizes ``s - d * zp_in``
    and adds ``zp_out``)."""
    c, h, w = x.shape
    zp_in, zp_out = zp
    if spec.kind == "max" and zp_in != zp_out:
        raise ValueError("a max pool keeps its input's zero point")
    if spec.global_pool:
        if spec.kind == "max":
            return x.max(axis=(1, 2), keepdims=True).astype(np.int8)
        _, m, sh = avg_pool_constants(spec, h, w)
        if avg_rq is not None:
            m, sh = avg_rq
        s = x.astype(np.int64).sum(axis=(1, 2), keepdims=True) + avg_sum_offset(spec, h, w, zp_in)
        return requantize(s, m, sh, False, zp=zp_out)
    kh, kw = spec.kernel
    sh, sw = spec.stride
    t, l, b, r = spec.pads
    if not (0 <= t < kh and 0 <= b < kh and 0 <= l < kw and 0 <= r < kw):
        raise ValueError("pool pads must be in [0, kernel)")
    oh, ow = spec.out_hw(h, w)
    # pad so every (clipped) window slice is in range; pad values never enter a window
    ext_y = max(0, int(((oh - 1) * sh - t + kh) - h))
    ext_x = max(0, int(((ow - 1) * sw - l + kw) - w))
    out = np.empty((c, oh, ow), dtype=np.int8)
    if spec.kind == "max":
        fill = -129
        xp = np.full((c, t + h + ext_y, l + w + ext_x), fill, dtype=np.int16)
        xp[:, t:t + h, l:l + w] = x
        m = np.full((c, oh, ow), fill, dtype=np.int16)
        for ky in range(kh):
            for kx in range(kw):
                sl = xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
                m = np.maximum(m, sl)
        out[:] = m
        return out
    _, m, shift = avg_pool_constants(spec, h, w)
    if avg_rq is not None:
        m, shift = avg_rq
    xp = np.zeros((c, t + h + ext_y, l + w + ext_x), dtype=np.int64)
    xp[:, t:t + h, l:l + w] = x
    s = np.zeros((c, oh, ow), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            s += xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
    return requantize(s + avg_sum_offset(spec, h, w, zp_in), m, shift, False, zp=zp_out)


def conv_add(layer: ConvAddLayer, x: np.ndarray, b: np.ndarray) -> np.ndarray:
    """int8 output of a residual add layer: the requantized conv term plus the bypass
    rescaled by (bp_mult, bp_shift), both by the rounding rule, then ReLU and saturation
    (:class:`~zynq_squeeze.quantize.layers.ConvAddLayer`)."""
    b = np.asarray(b)
    if b.dtype != np.int8 or tuple(b.shape) != tuple(layer.out_shape):
        raise ValueError(f"{layer.name}: bypass must be int8 {layer.out_shape}, got "
                         f"{b.dtype} {b.shape}")
    if layer.pool is not None:
        raise ValueError(f"{layer.name}: a residual add layer cannot pool")
    p = layer.conv
    y = round_shift(conv_acc(p, x), p.mult, p.shift, axis=0, pre=conv_pre_shift(p))
    y = y + round_shift(b.astype(np.int64) - layer.bp_zp, layer.bp_mult, layer.bp_shift)
    return saturate(y, p.relu, p.zp_out)


def run_layer(layer, x: np.ndarray, bypass: np.ndarray | None = None) -> np.ndarray:
    """int8 output (C', H', W') of one accelerator layer on int8 input (C, H, W);
    ``bypass``: the int8 tensor a :class:`ConvAddLayer` adds (else unused)."""
    x = np.asarray(x)
    if x.dtype != np.int8:
        raise TypeError(f"input must be int8, got {x.dtype}")
    if tuple(x.shape) != tuple(layer.in_shape):
        raise ValueError(f"{layer.name}: input shape {x.shape} != {layer.in_shape}")
    if isinstance(layer, ConvAddLayer):
        if bypass is None:
            raise ValueError(f"{layer.name}: a residual add layer needs its bypass tensor")
        return conv_add(layer, x, bypass)
    if isinstance(layer, PoolLayer):  # a standalone pool (or copy): no conv
        return pool(layer.pool, x, avg_requant(layer), pool_zero_points(layer))
    if isinstance(layer, ConvLayer):
        y = conv(layer.conv, x)
    elif isinstance(layer, FireLayer):
        s = conv(layer.squeeze, x)
        y = np.concatenate([conv(layer.expand1, s), conv(layer.expand3, s)], axis=0)
    else:
        raise TypeError(f"not an accelerator layer: {type(layer).__name__}")
    if layer.pool is not None:
        y = pool(layer.pool, y, avg_requant(layer), pool_zero_points(layer))
    return y


def run_chain(layers, x: np.ndarray) -> np.ndarray:
    """Run layers one after another (each consumes the previous output)."""
    for layer in layers:
        x = run_layer(layer, x)
    return x
