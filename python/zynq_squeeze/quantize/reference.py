"""The integer golden model of the accelerator (numpy).

``run_layer(layer, x)`` computes exactly what the C engine computes for a
:class:`~zynq_squeeze.quantize.layers.ConvLayer` or :class:`~zynq_squeeze.quantize.layers.FireLayer` on one
int8 ``(C, H, W)`` image: int32 accumulation (bias + sum of int8 products), the rounding
rule of :mod:`zynq_squeeze.quantize.requant` (pre-shift ``t`` per output channel from
:func:`conv_pre_shift`, 16-bit multiplier, shift), ReLU, int8 saturation, then the fused
pool:

* max pool: maximum over the window's valid (non-padding) elements;
* avg pool: ``s`` = sum of the window's int8 values, ``d`` = the window's element count
  (``PoolSpec.window_counts``: a window clipped by padding without count_include_pad or
  by ceil-mode overhang holds fewer), ``(m_d, s_d) = pool_multiplier(d)``:
  ``y = clip((s * m_d + 2**(s_d - 1)) >> s_d, -128, 127)`` -- the requantization rule
  with ``t = 0`` and no ReLU (``avg_constants``: one ``(m_d, s_d)`` per divisor);
* global average: the same over the whole plane (``d = H*W``);
* an average pool that also changes the scale (``layers.avg_requant``: a standalone
  ``PoolLayer``'s or a fused pool's ``pool_rq``) uses its own ``(m, s)`` instead; when its
  windows differ, ``quantize_multiplier(s_in / (s_out d))`` per divisor
  (``layers.avg_scales``).

Convolutions accumulate one kernel offset at a time as a matrix product in float64,
which is exact here: every partial sum is an integer below 2**53 (|x*w| <= 2**14 and
at most 2**20 terms; :func:`conv_acc` checks the bound).
"""
from __future__ import annotations

import numpy as np

from ..partitioning.pool_spec import avg_pool_reason
from .layers import (ConvAddLayer, ConvLayer, ConvParams, FireLayer, PoolLayer, PoolSpec,
                     avg_requant, avg_scales)
from .requant import pool_multiplier, pre_shift, quantize_multiplier, requantize, round_shift


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
    xp = np.zeros((c, h + t + b, w + l + r), dtype=np.float64)
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
    return requantize(conv_acc(p, x), p.mult, p.shift, p.relu, axis=0, pre=conv_pre_shift(p))


def avg_pool_constants(spec: PoolSpec, h: int, w: int) -> tuple[int, int, int]:
    """``(d, m_d, s_d)`` of average pool ``spec`` on an (h, w) plane whose windows all hold
    ``d`` elements. Raises ``ValueError`` when the windows differ (``avg_constants``
    handles those) or the accelerator cannot apply the pool (d too large)."""
    reason = avg_pool_reason(spec, h, w)
    if reason is not None:
        raise ValueError(reason)
    d = spec.avg_divisor(h, w)
    if d is None:
        raise ValueError("average pool windows hold different element counts")
    m, s = pool_multiplier(d)
    return d, m, s


def avg_divisors(spec: PoolSpec, h: int, w: int) -> tuple[list[int], list[int]]:
    """Per output row and per output column of average pool ``spec`` on an (h, w) plane,
    the window's element count along that axis: window (y, x) divides by
    ``rows[y] * cols[x]``. Raises ``ValueError`` when the accelerator cannot apply it."""
    reason = avg_pool_reason(spec, h, w)
    if reason is not None:
        raise ValueError(reason)
    if spec.global_pool:
        return [h], [w]
    return spec.window_counts(h, 0), spec.window_counts(w, 1)


def avg_constants(spec: PoolSpec, h: int, w: int, avg_rq: tuple[int, int] | None = None,
                  scales: tuple[float, float] | None = None) -> dict[int, tuple[int, int]]:
    """``{d: (m, s)}``: the requantization constant of every window divisor ``d`` of
    average pool ``spec`` on an (h, w) plane. Windows that all hold ``d`` elements use
    ``avg_rq`` when given (a pool that changes the scale), else ``pool_multiplier(d)``;
    windows that differ use ``quantize_multiplier(s_in / (s_out d))`` for ``scales =
    (s_in, s_out)``, else ``pool_multiplier(d)``. Raises ``ValueError`` when the pool
    cannot run on the accelerator."""
    rows, cols = avg_divisors(spec, h, w)
    ds = sorted({a * b for a in rows for b in cols})
    if len(ds) == 1 and avg_rq is not None:
        return {ds[0]: (int(avg_rq[0]), int(avg_rq[1]))}
    if scales is None or scales[0] == scales[1]:
        return {d: pool_multiplier(d) for d in ds}
    m, s = quantize_multiplier(np.asarray([scales[0] / (scales[1] * d) for d in ds]))
    return {d: (int(a), int(b)) for d, a, b in zip(ds, m, s)}


def pool(spec: PoolSpec, x: np.ndarray, avg_rq: tuple[int, int] | None = None,
         scales: tuple[float, float] | None = None) -> np.ndarray:
    """Apply a :class:`PoolSpec` to int8 ``x`` (C, H, W) with the engine's arithmetic.
    ``avg_rq``: an average pool's (mult, shift) when it also rescales (a standalone
    ``PoolLayer``); by default ``pool_multiplier(d)``; ``scales``: (s_in, s_out) of a
    rescaling pool whose windows differ (``avg_constants``)."""
    c, h, w = x.shape
    if spec.global_pool:
        if spec.kind == "max":
            return x.max(axis=(1, 2), keepdims=True).astype(np.int8)
        (m, sh), = avg_constants(spec, h, w, avg_rq, scales).values()
        return requantize(x.astype(np.int64).sum(axis=(1, 2), keepdims=True), m, sh, False)
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
    consts = avg_constants(spec, h, w, avg_rq, scales)
    dy, dx = avg_divisors(spec, h, w)
    d = np.outer(dy, dx)
    xp = np.zeros((c, t + h + ext_y, l + w + ext_x), dtype=np.int64)
    xp[:, t:t + h, l:l + w] = x
    s = np.zeros((c, oh, ow), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            s += xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
    for dv, (m, shift) in consts.items():  # each class of windows by its own constant
        sel = d == dv
        out[:, sel] = requantize(s[:, sel], m, shift, False)
    return out


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
    y = y + round_shift(b, layer.bp_mult, layer.bp_shift)
    if p.relu:
        y = np.maximum(y, 0)
    return np.clip(y, -128, 127).astype(np.int8)


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
        return pool(layer.pool, x, avg_requant(layer), avg_scales(layer))
    if isinstance(layer, ConvLayer):
        y = conv(layer.conv, x)
    elif isinstance(layer, FireLayer):
        s = conv(layer.squeeze, x)
        y = np.concatenate([conv(layer.expand1, s), conv(layer.expand3, s)], axis=0)
    else:
        raise TypeError(f"not an accelerator layer: {type(layer).__name__}")
    if layer.pool is not None:
        y = pool(layer.pool, y, avg_requant(layer), avg_scales(layer))
    return y


def run_chain(layers, x: np.ndarray) -> np.ndarray:
    """Run layers one after another (each consumes the previous output)."""
    for layer in layers:
        x = run_layer(layer, x)
    return x
