"""First-layer mode: a conv on a few-channel image runs as a 1x1 conv on patches.

The engine reduces 8 input channels per cycle; a 3-channel image would leave 5 of 8 MAC
lanes idle on every kernel tap (conv1 of SqueezeNet: 3x3x3 taps -> 9 cycles per pixel
and oc group). The host glue quantizes the image anyway, so it writes the *patches*
instead (im2col: channel ``(ky*KW + kx)*C + c`` of output pixel (oy, ox) is
``x[c, oy*SY - pt + ky, ox*SX - pl + kx]``, zero outside the image): the layer becomes
a 1x1 stride-1 conv over ``C*KH*KW`` channels (27 -> 4 words: 4 cycles instead of 9).
Bit-exact: the same products are summed in the same int32 accumulator.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..quantize.layers import ConvLayer

# C*KH*KW up to 32 words per output pixel (in_buf rows per pixel). Not raised for
# AlexNet's conv1 (3x11x11 = 363 channels, 46 words): patches would cut its accelerator
# time from 13.2 to 8.1 ms (modeled) but add 7.7 ms on the Cortex-A9 (the glue's scalar
# quantize of 1.1 M patch values, and 2.8x the bytes to copy and sync; schedule/
# arm_model.py): 18.3 ms end to end instead of 15.8.
MAX_PATCH_CHANNELS = 256


def applies(layer) -> bool:
    """True when ``layer`` (reading an image from the host) gains from patch input."""
    if not isinstance(layer, ConvLayer) or layer.conv.groups != 1:
        return False
    c = layer.conv.in_channels
    kh, kw = layer.conv.kernel
    return c < 8 and (kh, kw) != (1, 1) and c * kh * kw <= MAX_PATCH_CHANNELS \
        and -(-c * kh * kw // 8) < kh * kw * -(-c // 8)


def patch_layer(layer: ConvLayer) -> ConvLayer:
    """The 1x1 conv on patches equivalent to ``layer`` (same output, same pool)."""
    conv = layer.conv
    o, c, kh, kw = conv.weight.shape
    w = np.ascontiguousarray(np.asarray(conv.weight).transpose(0, 2, 3, 1)).reshape(o, kh * kw * c, 1, 1)
    oh, ow = layer.conv_hw
    if conv.zp_in:  # the glue writes 0 outside the image: a symmetric input
        raise ValueError(f"{layer.name}: patches of an input with zero point {conv.zp_in}")
    # the same conv otherwise (bias, requantization, output zero point)
    p = replace(conv, weight=w, stride=(1, 1), pads=(0, 0, 0, 0))
    return replace(layer, in_shape=(kh * kw * c, oh, ow), conv=p)


def patches(layer: ConvLayer, x: np.ndarray) -> np.ndarray:
    """int8 (C, H, W) image -> int8 (C*KH*KW, OH, OW) patches (what the glue writes)."""
    conv = layer.conv
    c, h, w = x.shape
    kh, kw = conv.kernel
    sy, sx = conv.stride
    pt, pl, pb, pr = conv.pads
    oh, ow = layer.conv_hw
    xp = np.zeros((c, h + pt + pb, w + pl + pr), dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x
    out = np.empty((kh, kw, c, oh, ow), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            out[ky, kx] = xp[:, ky:ky + (oh - 1) * sy + 1:sy, kx:kx + (ow - 1) * sx + 1:sx]
    return out.reshape(kh * kw * c, oh, ow)
