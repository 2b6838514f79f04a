"""Weight quantization (symmetric, per output channel) and its bias correction.

``quantize_weights`` is the engine's weight format: int8 ``rint(w / scale)`` with
``scale = absmax / 127`` per output channel. Its rounding error ``dW = Wq * scale - W``
shifts each output channel's mean by ``dW . E[x]`` (the inputs after a ReLU have a
positive mean), a bias that no rounding averages away and that every later layer
carries. ``weight_error_mean`` measures that shift on the calibration inputs; lowering
subtracts it from the conv's bias (bias correction, Nagel et al. 2019 "Data-Free
Quantization", empirical variant as in onnxruntime / AIMET). The shift is measured with
the weights ``quantize_weights`` gives without a scale floor; a channel whose scale
lowering raises to fit its bias in the accumulator (``codegen.lower.quantize_conv``, a
rare tiny-weight channel) gets the correction of its unraised weights.
"""
from __future__ import annotations

import numpy as np

from numpy.lib.stride_tricks import sliding_window_view

from ..partitioning.composite import FloatConv

INT8_MAX = 127


def quantize_weights(w: np.ndarray, min_scale=None) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 weights: (int8 [O,...], scale float64 [O]).

    ``min_scale`` (per channel, optional) is a floor on each channel's scale.
    """
    absmax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).astype(np.float64)
    scale = np.where(absmax > 0, absmax / INT8_MAX, 1.0)
    if min_scale is not None:
        scale = np.maximum(scale, min_scale)
    q = np.clip(np.rint(w / scale.reshape(-1, *([1] * (w.ndim - 1)))), -INT8_MAX, INT8_MAX)
    return q.astype(np.int8), scale


def weight_error(c: FloatConv) -> FloatConv:
    """The linear conv of ``c``'s weight rounding error ``Wq * scale - W`` (no bias, no
    activation): its output is what the int8 weights add to ``c``'s pre-activation."""
    q, s = quantize_weights(c.weight)
    dw = q.astype(np.float64) * s.reshape(-1, *([1] * (c.weight.ndim - 1))) - c.weight
    return FloatConv(dw.astype(np.float32), np.zeros(c.weight.shape[0], np.float32),
                     c.stride, c.pads, relu=False, groups=c.groups)


def window_means(x: np.ndarray, c: FloatConv) -> np.ndarray:
    """Mean over the output positions of conv ``c``'s input windows on one (C, H, W)
    image (zero padding included), float64 (C, KH, KW): the mean of a linear conv's
    output is its weights dotted with these (one pass over the input, no conv)."""
    t, l, b, r = c.pads
    xp = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (t, b), (l, r)))
    kh, kw = c.weight.shape[2:]
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::c.stride[0], ::c.stride[1]]
    return win.mean(axis=(1, 2))


class BiasError:
    """Running per-output-channel mean of a conv's weight error on its float inputs."""

    def __init__(self, conv: FloatConv):
        self.err = weight_error(conv)
        self.sum = np.zeros(conv.weight.shape[0], dtype=np.float64)
        self.n = 0

    def add(self, x: np.ndarray) -> None:
        """One (C, H, W) input image of the conv: its output's mean shift per channel is
        ``dW[o] . window_means`` of the input channels of ``o``'s group."""
        dw = self.err.weight.astype(np.float64)
        o, i = dw.shape[:2]
        g = self.err.groups
        m = window_means(x, self.err).reshape(g, i, -1)  # (groups, I/g, KH*KW)
        self.sum += np.einsum("gok,gk->go", dw.reshape(g, o // g, -1),
                              m.reshape(g, -1)).reshape(o)
        self.n += 1

    def mean(self) -> list[float]:
        """Per output channel, the mean shift (float; 0 without data)."""
        return [float(v) for v in (self.sum / self.n if self.n else self.sum)]
