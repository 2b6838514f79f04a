"""Quantized layer descriptions: what one accelerator layer computes, in integers.

These are the contract between the quantizer (which fills them from a float model) and
the accelerator (program builder, integer reference, C engine). Activations are int8,
symmetric (zero point 0), stored channels-innermost (HWC) on the accelerator side.
Shapes here are ``(C, H, W)`` for one image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..partitioning.pool_spec import PoolSpec, pool_out_size

__all__ = ["ConvAddLayer", "ConvLayer", "ConvParams", "FireLayer", "Layer", "PoolLayer",
           "PoolSpec", "layer_signature", "pool_out_size"]


@dataclass(eq=False)
class ConvParams:
    """One quantized convolution (dilation=1), with fused bias, requant and ReLU.

    ``weight`` int8 [O, I / groups, KH, KW] (symmetric, per output channel);
    ``bias`` int32 [O] in accumulator units (scale = in_scale * w_scale[o]);
    ``mult`` int32 [O] in [2**14, 2**15) and ``shift`` int32 [O] in [1, 40]: with the
    pre-shift ``t = quantize.reference.conv_pre_shift(self)`` (derived from ``bias`` and
    the kernel size, 0 unless the worst-case accumulator exceeds 2**24 - 1), the
    requantized value is ``((acc >> t[o]) * mult[o] + 2**(shift[o]-1)) >> shift[o]``
    (arithmetic shifts, i.e. round half toward +infinity), then ReLU (if ``relu``),
    then saturation to [-128, 127] (``quantize.requant``).
    ``pads`` is (top, left, bottom, right). ``groups``: output channel ``o`` reads input
    channels ``[gi * I/g, (gi + 1) * I/g)`` with ``gi = o // (O/g)`` (ONNX/PyTorch);
    ``groups == I == O`` is a depthwise convolution (``depthwise``).
    """

    weight: np.ndarray
    bias: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    relu: bool = True
    groups: int = 1
    # zero points (docs/ENGINE.md "Arithmetic: zero points"): the input's, 0 or -128 (the
    # padding value; ``bias`` already holds ``-zp_in * sum(w[o])``) and the output's
    # (added after ReLU: ``y = clip(max(R, 0) + zp_out, -128, 127)``)
    zp_in: int = 0
    zp_out: int = 0

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        """Input channels of the whole convolution (all groups)."""
        return int(self.weight.shape[1]) * self.groups

    @property
    def group_in(self) -> int:
        """Input channels per group (the reduction's channel count)."""
        return int(self.weight.shape[1])

    @property
    def group_out(self) -> int:
        """Output channels per group."""
        return self.out_channels // self.groups

    @property
    def depthwise(self) -> bool:
        """One input and one output channel per group (multiplier 1)."""
        return self.groups > 1 and self.group_in == 1 and self.group_out == 1

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.weight.shape[2]), int(self.weight.shape[3]))

    def out_hw(self, h: int, w: int) -> tuple[int, int]:
        """Convolution output (H, W) for an (h, w) input plane."""
        kh, kw = self.kernel
        t, l, b, r = self.pads
        oh = (h + t + b - kh) // self.stride[0] + 1
        ow = (w + l + r - kw) // self.stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise ValueError(f"kernel {kh}x{kw} larger than padded input {h}x{w}")
        return oh, ow

    def macs(self, h: int, w: int) -> int:
        """Multiply-accumulates of this conv on an (h, w) input plane."""
        oh, ow = self.out_hw(h, w)
        kh, kw = self.kernel
        return self.out_channels * self.group_in * kh * kw * oh * ow


@dataclass(eq=False)
class ConvLayer:
    """conv(+bias)(+ReLU)(+pool) on one int8 (C, H, W) input."""

    name: str
    in_shape: tuple[int, int, int]
    conv: ConvParams
    pool: PoolSpec | None = None
    kind: str = field(default="conv", init=False)
    # a fused average pool's own (mult, shift) when it changes the scale (None: the
    # conv's output scale is kept, requant.pool_multiplier(d)); see PoolLayer
    pool_rq: tuple[int, int] | None = None

    @property
    def conv_hw(self) -> tuple[int, int]:
        return self.conv.out_hw(self.in_shape[1], self.in_shape[2])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w = self.conv_hw
        if self.pool is not None:
            h, w = self.pool.out_hw(h, w)
        return (self.conv.out_channels, h, w)

    @property
    def macs(self) -> int:
        return self.conv.macs(self.in_shape[1], self.in_shape[2])


@dataclass(eq=False)
class FireLayer:
    """SqueezeNet fire module: squeeze 1x1 -> (expand 1x1 || expand 3x3 pad 1) -> concat(+pool).

    The squeeze output never leaves the chip. Output channels are expand1's, then
    expand3's (concat on the channel axis). Both expands share the output scale.
    """

    name: str
    in_shape: tuple[int, int, int]
    squeeze: ConvParams
    expand1: ConvParams
    expand3: ConvParams
    pool: PoolSpec | None = None
    kind: str = field(default="fire", init=False)
    pool_rq: tuple[int, int] | None = None  # as ConvLayer.pool_rq

    @property
    def conv_hw(self) -> tuple[int, int]:
        return self.squeeze.out_hw(self.in_shape[1], self.in_shape[2])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w = self.conv_hw
        if self.pool is not None:
            h, w = self.pool.out_hw(h, w)
        return (self.expand1.out_channels + self.expand3.out_channels, h, w)

    @property
    def macs(self) -> int:
        h, w = self.in_shape[1], self.in_shape[2]
        sh, sw = self.squeeze.out_hw(h, w)
        return (self.squeeze.macs(h, w) + self.expand1.macs(sh, sw)
                + self.expand3.macs(sh, sw))


# --- residual add (issue 11 item 2)
@dataclass(eq=False)
class ConvAddLayer(ConvLayer):
    """conv(+bias) + bypass (+ReLU): a ResNet / MobileNetV2 residual add on the accelerator.

    ``bypass`` names the tensor added (the function's tensor id: an input or an earlier
    layer's output), int8 of ``out_shape`` at its own scale ``s_b``. ``conv.relu`` is the
    ReLU *after* the add (the conv itself has none); ``pool`` must be None. Scale
    alignment (docs/ENGINE.md "Residual add: scale alignment"): the conv term is
    requantized as in :class:`ConvParams` (``mult``, ``shift``, pre-shift ``t``, real
    multiplier ``s_in * s_w[o] / s_out``), the bypass byte ``b`` by the per-layer
    ``(bp_mult, bp_shift) = quantize_multiplier(s_b / s_out)`` with the same rounding
    rule, and the two integers are added before ReLU and saturation::

        y = clip(relu(((acc >> t) * mult + 2**(shift-1) >> shift)
                      + ((b * bp_mult + 2**(bp_shift-1)) >> bp_shift)), -128, 127)

    Each term is within half an output step of its real value, the sum within one.
    """

    bypass: object = None
    bp_mult: int = 1 << 14
    bp_shift: int = 40
    kind: str = field(default="conv_add", init=False)
    bp_zp: int = 0  # the bypass tensor's zero point: the term is R(b - bp_zp)


# --- standalone pool / concat (issue 11 item 4)
@dataclass(eq=False)
class PoolLayer:
    """A pool of an int8 (C, H, W) tensor that follows no offloaded conv (or a copy).

    A max pool keeps its input's scale (``mult``/``shift`` None). An average pool divides
    every window's sum by one constant and may change the scale:
    ``y = clamp((s * mult + 2**(shift-1)) >> shift, -128, 127)`` with ``(mult, shift) =
    quantize_multiplier(in_scale / (out_scale * d))`` (``requant.pool_multiplier(d)``
    when the scale is kept). A 1x1 stride-1 pool is a copy: max keeps the values, avg
    requantizes them to another scale (a concat part that cannot be written in place).
    """

    name: str
    in_shape: tuple[int, int, int]
    pool: PoolSpec
    mult: int | None = None
    shift: int | None = None
    kind: str = field(default="pool", init=False)
    # zero points of input and output (a max pool keeps its input's; an average divides
    # ``s - d * zp_in`` and adds ``zp_out``)
    zp_in: int = 0
    zp_out: int = 0

    @property
    def conv_hw(self) -> tuple[int, int]:
        """The plane the pool reads (no conv: the input's)."""
        return (self.in_shape[1], self.in_shape[2])

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.in_shape[0], *self.pool.out_hw(*self.conv_hw))

    @property
    def macs(self) -> int:
        return 0


Layer = ConvLayer | FireLayer | PoolLayer


def avg_requant(layer: Layer) -> tuple[int, int] | None:
    """The (mult, shift) an average pool of ``layer`` (fused or standalone) divides its
    window sums by when it also changes the scale; None: ``requant.pool_multiplier(d)``
    (the scale is kept)."""
    if isinstance(layer, PoolLayer):
        return (layer.mult, layer.shift) if layer.mult is not None else None
    return getattr(layer, "pool_rq", None)


def pool_zero_points(layer: Layer) -> tuple[int, int]:
    """(zero point of the tensor a layer's pool reads, of its output): a fused pool reads
    and writes the (last) conv's output zero point, a standalone pool its own."""
    if isinstance(layer, PoolLayer):
        return layer.zp_in, layer.zp_out
    zp = layer.expand1.zp_out if isinstance(layer, FireLayer) else layer.conv.zp_out
    return zp, zp


def out_zero_point(layer: Layer) -> int:
    """The zero point of a layer's output tensor."""
    return pool_zero_points(layer)[1]


def layer_signature(layer: Layer) -> str:
    """A key naming a layer's geometry (what a schedule depends on)."""
    c, h, w = layer.in_shape
    if layer.kind == "fire":
        convs = (layer.squeeze, layer.expand1, layer.expand3)
    elif layer.kind == "pool":
        convs = ()
    else:
        convs = (layer.conv,)
    parts = [f"{layer.kind}:{c}x{h}x{w}"]
    for cv in convs:
        kh, kw = cv.kernel
        parts.append(f"{cv.out_channels}k{kh}x{kw}s{cv.stride[0]}x{cv.stride[1]}"
                     f"p{'.'.join(map(str, cv.pads))}"
                     + (f"g{cv.groups}" if cv.groups != 1 else ""))
    if layer.pool is not None:
        p = layer.pool
        parts.append("gap" if p.global_pool else
                     f"{p.kind}{p.kernel[0]}x{p.kernel[1]}s{p.stride[0]}"
                     f"p{'.'.join(map(str, p.pads))}{'c' if p.ceil_mode else ''}")
    return "|".join(parts)
