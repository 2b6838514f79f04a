"""Lower one offloaded Relax function to quantized accelerator layers.

Each tensor inside an offloaded function gets one int8 scale: a function input takes the
calibrated range of its consumers, a layer output the calibrated range of the conv
output that produces it (a max pool keeps its input's scale; an average pool, fused or
standalone, gets its own calibrated range and rescales in its divide: ``pool_rq``). Weights are quantized
symmetrically per output channel; bias to int32 accumulator units; the requantization
multiplier ``in_scale * w_scale / out_scale`` to a 16-bit integer multiplier and shift
that apply to the pre-shifted accumulator ``acc >> t`` (so the quantized real multiplier
is ``in_scale * w_scale / out_scale * 2**t``; ``t`` comes from the worst-case
accumulator, ``quantize.reference.conv_pre_shift``, and is 0 for SqueezeNet).

A QDQ model's concat part that the model rounds to its own scale before the concat
rounds it to the concat's (``ranges["parts"]``) is written at its own scale and then
requantized in place by a 1x1 pool (``part_scales``, ``_requantize_parts``): two roundings
as in onnxruntime (docs/ENGINE.md "Where the scales come from").

A conv with a Clip(0, c) activation (ReLU6) is lowered as a ReLU conv whose output range
is capped at ``c``: the engine's saturation at 127 is then the clamp at ``c`` (exact when
the calibrated range reaches ``c``; see ``partitioning.cleanup``).

Zero points (docs/ENGINE.md "Arithmetic: zero points"): a tensor that is a ReLU's (or
Clip(0, c)'s) output uses all 8 bits, ``q = round(x / s) - 128`` with ``s = absmax / 255``
(zero point -128); every other tensor (function inputs, linear outputs, anything whose
consumers cannot take it) stays symmetric (``absmax / 127``, zero point 0). Tensors that
must share a zero point (a max pool's input and output, a concat's parts) get one
together (``assign_zero_points``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from tvm import relax

from ..errors import ZynqSqueezeError
from ..partitioning.composite import FloatChain, FloatConv, parse_composite
from ..quantize.layers import (ConvAddLayer, ConvLayer, ConvParams, FireLayer, Layer, PoolLayer,
                               PoolSpec)
from ..partitioning.limits import ACC_LIMIT
from ..engine.dae_config import PE_IC
from ..quantize.reference import avg_zero_point_reason
from ..quantize.requant import (MAX_PRODUCT, MULT_BITS, WIDE_MULT_BITS, pre_shift,
                                quantize_multiplier, table_multiplier)
from ..quantize.weights import quantize_weights
from .concat_plan import PlanItem, plan_concats

RANGES_ATTR = "zynq_squeeze.ranges"
INT8_MAX = 127
UINT8_MAX = 255
ZP_UNSIGNED = -128  # the zero point of a tensor after a ReLU: real 0 is int8 -128


class LoweringError(ZynqSqueezeError):
    """An offloaded function cannot be turned into accelerator layers."""


def scale_of(absmax: float, zero_point: int = 0) -> float:
    """int8 scale for a calibrated absolute maximum (a dead tensor gets 1/127 or 1/255).

    Zero point 0 (symmetric): ``absmax / 127`` in float64: for a QDQ model's float32
    scale ``s`` the range is ``127 * s`` (exact in float64: 24 + 7 significant bits), so
    this returns ``s`` exactly. Zero point -128 (a nonnegative tensor): ``absmax / 255``,
    int8 127 is ``absmax``.
    """
    levels = UINT8_MAX if zero_point == ZP_UNSIGNED else INT8_MAX
    if zero_point not in (0, ZP_UNSIGNED):
        raise ValueError(f"zero point {zero_point}: the engine uses 0 or {ZP_UNSIGNED}")
    return float(absmax) / levels if absmax > 0 else 1.0 / levels


def boundary_factors(scale: float) -> tuple[np.float32, np.float32]:
    # (a tensor's zero point enters the boundary as an integer add: golden.quantize)
    """(1/scale, scale) as the float32 numbers the glue multiplies by at the boundary.

    Quantize: ``q = saturate(rint(x * inv))`` (round half to even); dequantize:
    ``y = q * scale``. Both the C glue and the numpy reference use exactly these.
    """
    return np.float32(1.0 / scale), np.float32(scale)


@dataclass
class TensorInfo:
    shape: tuple[int, int, int]  # C, H, W of one image (the int8 tensor's)
    scale: float
    zero_point: int = 0  # real 0 is this int8 (0, or -128 after a ReLU)
    # two-plane input (``INPUT_SPLIT``): 0 = one plane; F = the int8 tensor holds the
    # image's C channels (hi) and then C residual channels (lo, at scale / F)
    split: int = 0

    @property
    def float_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the float tensor the host passes (half the channels when split)."""
        c, h, w = self.shape
        return (c // 2 if self.split else c, h, w)


# Two-plane input (docs/ENGINE.md "The two-plane input"): a function input that one conv
# alone reads (the image) is written as hi = rint(x / s) and lo = rint((x / s - hi) * F),
# lo an extra input channel with weights rint(w / (s_w * F)) at the same accumulator scale;
# the input's rounding error drops by ~F (F = 16: 2**4, an exact float32 multiply).
INPUT_SPLIT = 16
# Only few-channel images: 2C channels still fit one 8-channel word (free on the engine).
SPLIT_MAX_CHANNELS = 4


@dataclass
class LoweredFunction:
    """An offloaded function as accelerator layers over named int8 tensors.

    ``inputs``/``outputs`` are tensor ids in argument order; ``io_shapes`` are the
    float tensors' shapes as Relax sees them (batch first).
    """

    symbol: str
    batch: int
    layers: list[tuple[Layer, str, str]] = field(default_factory=list)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    input_shapes: list[tuple[int, ...]] = field(default_factory=list)
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    # a QDQ model's convs: whether each used the model's int8 weights as-is, and why not
    weights: list[dict] = field(default_factory=list)
    # concat parts stored in place: tensor id -> (root tensor id, channel offset)
    views: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer, _, _ in self.layers) * self.batch


def model_weights(c: FloatConv, scales, floor: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | str:
    """A QDQ model's own int8 weights and scales for conv ``c``, or why they cannot be used.

    ``scales``: the model's weight scales (per output channel, or one per tensor); ``c``'s
    float weights are the model's int8 values times them (``frontend.qdq``), so
    ``rint(w / scale)`` gives the int8 values back exactly. ``floor``: the smallest scale
    per channel that keeps the int32 bias in the accumulator's room (``quantize_conv``).
    """
    o = c.weight.shape[0]
    s = np.asarray(scales, dtype=np.float64).reshape(-1)
    if s.size == 1:
        s = np.full(o, s[0])
    if s.shape != (o,) or not np.all(s > 0):
        return f"{s.size} weight scales for {o} output channels"
    q = c.weight.astype(np.float64) / s.reshape(-1, *([1] * (c.weight.ndim - 1)))
    qr = np.rint(q)
    if q.size and float(np.abs(q - qr).max()) > 1e-3:
        return "the weights are not int8 values times the model's scales"
    if q.size and (qr.min() < -128 or qr.max() > INT8_MAX):
        return "weights outside int8"
    low = np.flatnonzero(s < floor)
    if low.size:
        return (f"the bias of channel {int(low[0])} does not fit the int32 accumulator at the "
                "model's weight scale")
    return qr.astype(np.int8), s


def quantize_conv(c: FloatConv, in_scale: float, out_scale: float, model_scales=None,
                  notes: list | None = None, bias_shift=None, zp_in: int = 0,
                  zp_out: int = 0, mult_bits: int = MULT_BITS,
                  input_split: int = 0) -> ConvParams:
    """Float conv -> ConvParams with int8 weights, int32 bias and requant multipliers.

    A channel whose weights are tiny next to its bias would need a bias beyond the int32
    accumulator's room (``ACC_LIMIT`` minus the worst sum of products): its weight scale
    is raised until the bias fits. That costs only weight resolution that was below the
    bias's own rounding step, so the output stays what the float model computes.

    ``model_scales``: a QDQ model's weight scales; its int8 weights are then used as they
    are when ``model_weights`` accepts them. ``notes`` (optional) receives None when they
    were, else the reason they were re-quantized. ``bias_shift`` (per output channel,
    optional): the mean output shift the int8 weights cause on the calibration data
    (``quantize.weights.BiasError``), subtracted from the bias (bias correction).

    ``zp_in``/``zp_out``: the zero points of input and output. The input's is folded into
    the bias, ``sum w * (q - zp_in) = sum w * q - zp_in * sum(w[o])`` (the padding is then
    ``zp_in`` too); the fold needs up to ``128 * 127`` per product of the room, so the
    bias's own room shrinks by that.

    ``mult_bits``: the requantization multiplier's width (``requant.WIDE_MULT_BITS``: a
    QDQ model's, executed by an engine with ``DaeConfig.wide_rq``).

    ``input_split`` (F, 0 = off): the input is two planes (``INPUT_SPLIT``), hi at
    ``in_scale`` and lo at ``in_scale / F``: the weights get ``I`` more input channels,
    ``rint(w / (w_scale * F))`` (|.| <= 8 for F = 16), so that ``w_q * hi + w_lo * lo`` is in
    the same accumulator units; the bias room and the pre-shift count 2I products.
    """
    o, i, kh, kw = c.weight.shape
    if input_split:
        if zp_in or c.groups != 1:
            raise LoweringError("a two-plane input needs a symmetric input and groups == 1")
        i *= 2
    # > 2**29 within the partitioner's limits (with a zero point's fold)
    room = ACC_LIMIT - MAX_PRODUCT * i * kh * kw * (2 if zp_in else 1)
    if room <= 0:
        raise LoweringError(f"{i}x{kh}x{kw} products per output overflow the int32 accumulator")
    bias = c.bias.astype(np.float64)
    if bias_shift is not None and model_scales is None:
        bias = bias - np.asarray(bias_shift, dtype=np.float64)
    floor = np.abs(bias) / (in_scale * room)
    given = model_weights(c, model_scales, floor) if model_scales is not None else None
    if isinstance(given, tuple):
        wq, ws = given
    else:
        wq, ws = quantize_weights(c.weight, floor)
    if notes is not None:
        notes.append(None if isinstance(given, tuple) else given)
    acc_scale = in_scale * ws
    if input_split:
        lo = np.rint(c.weight / (ws.reshape(-1, 1, 1, 1) * input_split))
        wq = np.concatenate([wq, np.clip(lo, -128, INT8_MAX).astype(np.int8)], axis=1)
    bias = np.clip(np.rint(bias / acc_scale), -room, room).astype(np.int64)
    bias = (bias - int(zp_in) * wq.astype(np.int64).reshape(o, -1).sum(axis=1)).astype(np.int32)
    # the multiplier applies to acc >> t: fold 2**t into the real multiplier
    t = pre_shift(bias, i * kh * kw)
    mult, shift = quantize_multiplier(acc_scale / out_scale * np.exp2(t), mult_bits)
    return ConvParams(weight=wq, bias=bias, mult=mult, shift=shift,
                      stride=tuple(c.stride), pads=tuple(c.pads), relu=c.relu,
                      groups=int(c.groups), zp_in=int(zp_in), zp_out=int(zp_out))


def _capped(absmax: float, conv: FloatConv) -> float:
    """A calibrated range, at most the conv's clamp: int8 saturation does the clamp."""
    return min(float(absmax), conv.clip) if conv.clip is not None else float(absmax)


def out_absmax(chain: FloatChain, ranges: dict) -> float:
    """The range that sets a composite's output scale (``ranges["out"]`` capped at the
    clamp of a Clip(0, c) activation; the expands of a fire module clamp alike)."""
    return _capped(ranges["out"], chain.convs[-1])


def default_out_scale(chain: FloatChain, ranges: dict, in_scale: float,
                      zero_point: int = 0) -> float:
    """A composite's output scale when no concat imposes one: the calibrated range of its
    conv output (capped at a clamp); after an average pool (fused or standalone) the
    pool's own calibrated range ``ranges["pool"]`` (a global average's output spans far
    fewer int8 levels at its input's scale), never coarser than the pool's input; a max
    pool (or a calibration without ``pool``) keeps its input's scale. ``zero_point``: the
    output's (-128: ``absmax / 255``)."""
    pre = in_scale if chain.kind == "pool" else scale_of(out_absmax(chain, ranges), zero_point)
    if chain.pool is not None and chain.pool.kind == "avg" and ranges.get("pool") is not None:
        return min(pre, scale_of(ranges["pool"], zero_point))
    return pre


def _avg_rescale(pool: PoolSpec, hw: tuple[int, int], in_scale: float, out_scale: float,
                 bits: int = MULT_BITS
                 ) -> tuple[int | None, int | None, tuple[float, float] | None]:
    """An average pool's (mult, shift, scales) when it changes the scale, else (None,
    None, None). (mult, shift) is the one divisor's when every window holds the same
    count (a ``bits``-wide multiplier); windows that differ leave it None and requantize
    by ``scales`` = (in_scale, out_scale) per divisor (``reference.avg_constants``, 15-bit
    multipliers, which either lane takes)."""
    if pool.kind != "avg" or in_scale == out_scale:
        return None, None, None
    d = pool.avg_divisor(*hw)
    if d is None:
        return None, None, (float(in_scale), float(out_scale))
    m, s = quantize_multiplier(np.asarray([in_scale / (out_scale * d)]), bits)
    return int(m[0]), int(s[0]), (float(in_scale), float(out_scale))


def copy_layer(name: str, shape: tuple[int, int, int], in_scale: float,
               out_scale: float, zp_in: int = 0, zp_out: int = 0,
               bits: int = MULT_BITS) -> PoolLayer:
    """A concat part copied into its slot: a 1x1 max pool (the same scale and zero
    point) or a 1x1 average pool that requantizes to the concat's scale and zero point."""
    spec = PoolSpec("max" if (in_scale, zp_in) == (out_scale, zp_out) else "avg")
    m, s, scales = _avg_rescale(spec, shape[1:], in_scale, out_scale, bits)
    return PoolLayer(name=name, in_shape=tuple(shape), pool=spec, mult=m, shift=s, scales=scales,
                     zp_in=zp_in, zp_out=zp_out)


def requant_copy_layer(name: str, shape: tuple[int, int, int], in_scale: float,
                       out_scale: float, bits: int = WIDE_MULT_BITS) -> PoolLayer:
    """A 1x1 average pool that requantizes int8 values from ``in_scale`` to ``out_scale``
    as onnxruntime's DequantizeLinear -> QuantizeLinear (and QLinearConcat's table) does:
    ``rint(float32(q * s_in) / s_out)``, round half to even, saturated. Its (mult, shift)
    is the one of the engine's rule that gives that table for all 256 int8 values
    (``requant.table_multiplier``; the nearest otherwise)."""
    q = np.arange(-128, 128, dtype=np.float32)
    want = np.clip(np.rint((q * np.float32(in_scale)) / np.float32(out_scale)), -128, 127)
    m, s = table_multiplier(in_scale / out_scale, q.astype(np.int64), want.astype(np.int64),
                            bits=bits)
    return PoolLayer(name=name, in_shape=tuple(shape), pool=PoolSpec("avg"), mult=m, shift=s)


def part_scales(chain: FloatChain, ranges: dict, out_scale: float) -> list | None:
    """The scale a QDQ model rounds each output part of a composite to (a fire's two
    expands, a conv's one output) before the concat that requantizes it to
    ``out_scale`` (``ranges["parts"]``, ``quantize.qdq``), None for a part rounded once;
    None when no part is rounded twice, or the engine cannot round it so: a part not a
    whole number of channel groups, a clamped conv (ReLU6), a fused average pool (it does
    not commute with the second rounding; a max pool does: both are monotone)."""
    parts = ranges.get("parts")
    sizes = part_channels(chain)
    if (not parts or len(parts) != len(sizes) or chain.kind not in ("conv", "fire")
            or any(c.clip is not None for c in chain.convs)
            or (chain.pool is not None and chain.pool.kind != "max")
            or any(c % PE_IC for c in sizes[:-1])):
        return None
    own = [None if r is None or scale_of(r) == out_scale else scale_of(r) for r in parts]
    return own if any(x is not None for x in own) else None


def part_channels(chain: FloatChain) -> list[int]:
    """Output channels of each part of a composite's output: a fire's expand1 and expand3
    (concatenated), any other composite's one output."""
    if chain.kind == "fire":
        return [int(chain.convs[1].weight.shape[0]), int(chain.convs[2].weight.shape[0])]
    return [int(_chw(chain.out_shape)[0])]


def lower_chain(name: str, chain: FloatChain, ranges: dict, in_scale: float,
                out_scale: float | None = None, weight_log: list | None = None,
                bypass: tuple | None = None, zp_in: int = 0, zp_out: int = 0,
                zp_mid: int | None = None, parts: list | None = None,
                mult_bits: int | None = None, input_split: int = 0) -> Layer:
    """One composite -> one accelerator layer, given the scale of its input tensor and
    of its output (default: the calibrated one; a standalone pool: the input's); for a
    residual add also the bypass tensor's id and scale.

    ``ranges["weights"]`` (a QDQ model's, one entry per conv: its weight scales or None)
    makes the convs use the model's int8 weights; ``weight_log`` (optional) then receives
    one ``{"layer", "conv", "as_is", "reason"}`` per conv.

    Residual add (docs/ENGINE.md "Residual add: scale alignment"): the conv is quantized
    as any conv to the add's output scale (its activation is the add's, after the sum);
    the bypass byte's real multiplier ``s_b / s_out`` becomes ``(bp_mult, bp_shift)``.

    ``parts`` (``part_scales``): per output part, the scale its conv requantizes to
    instead of ``out_scale`` (the caller then requantizes that part to ``out_scale``).
    Zero points: ``zp_in`` the input tensor's, ``zp_out`` the output's (a fused pool's
    input has the output's), ``zp_mid`` a fire's squeeze output's (default: -128 when
    the squeeze has a ReLU: its output never leaves the chip), the bypass's the third
    element of ``bypass`` (id, scale, zero point).

    ``mult_bits``: the requantization multipliers' width; default: 22 bits
    (``requant.WIDE_MULT_BITS``, an engine with ``DaeConfig.wide_rq``) for a QDQ model
    (``ranges["weights"]``), whose scales onnxruntime applies as float32, else 15.
    ``input_split``: the input is two planes (``quantize_conv``; a plain conv only).
    """
    own = parts or [None, None]
    if mult_bits is None:
        mult_bits = WIDE_MULT_BITS if ranges.get("weights") is not None else MULT_BITS
    in_shape = tuple(chain.in_shape[1:])
    if input_split:
        if chain.kind != "conv":
            raise LoweringError(f"{name}: a two-plane input feeds a plain conv only")
        in_shape = (2 * in_shape[0], *in_shape[1:])
    if out_scale is None:
        out_scale = default_out_scale(chain, ranges, in_scale, zp_out)
    if chain.kind == "pool":
        if chain.pool.kind == "max" and (out_scale, zp_out) != (in_scale, zp_in):
            raise LoweringError(f"{name}: a max pool keeps its input's scale and zero point")
        m, s, scales = _avg_rescale(chain.pool, in_shape[1:], in_scale, out_scale, mult_bits)
        return PoolLayer(name=name, in_shape=in_shape, pool=chain.pool, mult=m, shift=s,
                         scales=scales, zp_in=zp_in, zp_out=zp_out)
    # a fused average pool rescales from the conv's own scale to out_scale
    avg = chain.pool is not None and chain.pool.kind == "avg"
    final_scale, out_scale = out_scale, (scale_of(out_absmax(chain, ranges), zp_out) if avg
                                         else out_scale)
    given = ranges.get("weights")
    given_notes = ranges.get("weight_notes") or [None] * len(chain.convs)
    shifts = ranges.get("bias_correction") or [None] * len(chain.convs)
    notes: list = []

    def conv(j, c, s_in, s_out, z_in=zp_in, z_out=zp_out):
        scales = given[j] if given is not None else None
        params = quantize_conv(c, s_in, s_out, scales, notes, shifts[j], z_in, z_out,
                               mult_bits, input_split if j == 0 else 0)
        if given is not None and weight_log is not None:
            why = notes[-1] if scales is not None else given_notes[j]
            weight_log.append({"layer": name, "conv": j, "as_is": why is None,
                               "reason": why or "the model's int8 weights and scales"})
        return params

    if chain.kind == "conv_add":
        if bypass is None:
            raise LoweringError(f"{name}: a residual add needs its bypass tensor")
        bp_id, bp_scale, *bp_zp = bypass
        m, s = quantize_multiplier(bp_scale / out_scale, mult_bits)
        return ConvAddLayer(name=name, in_shape=in_shape,
                            conv=conv(0, chain.convs[0], in_scale, out_scale),
                            bypass=bp_id, bp_mult=int(m), bp_shift=int(s),
                            bp_zp=int(bp_zp[0]) if bp_zp else 0)
    if chain.kind == "fire":
        sq, e1, e3 = chain.convs
        if zp_mid is None:
            zp_mid = ZP_UNSIGNED if sq.relu else 0
        mid = scale_of(_capped(ranges["mid"], sq), zp_mid)
        layer = FireLayer(name=name, in_shape=in_shape,
                          squeeze=conv(0, sq, in_scale, mid, zp_in, zp_mid),
                          expand1=conv(1, e1, mid, own[0] or out_scale, zp_mid, zp_out),
                          expand3=conv(2, e3, mid, own[1] or out_scale, zp_mid, zp_out),
                          pool=chain.pool)
    else:
        layer = ConvLayer(name=name, in_shape=in_shape,
                          conv=conv(0, chain.convs[0], in_scale, own[0] or out_scale),
                          pool=chain.pool)
    if avg:
        m, s, layer.pool_scales = _avg_rescale(chain.pool, layer.conv_hw, out_scale,
                                               final_scale, mult_bits)
        layer.pool_rq = (m, s) if m is not None else None
    return layer


def _shape(expr) -> tuple[int, ...]:
    return tuple(int(s) for s in expr.ty.shape)


def _chw(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of one image from a Relax NCHW (or N,C after a keepdims-free mean) shape."""
    if len(shape) == 4:
        return (shape[1], shape[2], shape[3])
    if len(shape) == 2:
        return (shape[1], 1, 1)
    raise LoweringError(f"tensor of shape {shape} is not NCHW")


def lower_function(func: relax.Function, unsigned: bool = True,
                   input_split: int = 0) -> LoweredFunction:
    """Lower a merged ``Codegen="zynq_squeeze"`` function (calibrated composites inside).
    ``unsigned``: nonnegative tensors get zero point -128 (``assign_zero_points``).
    ``input_split``: F of the two-plane input (``INPUT_SPLIT``; 0, the default as for
    ``build``: one plane) for an image that a plain conv alone reads (``split_inputs``)."""
    symbol = str(func.attrs["global_symbol"])
    local_funcs: dict = {}
    calls = []
    for block in func.body.blocks:
        for b in block.bindings:
            if isinstance(b.value, relax.Function):
                local_funcs[b.var] = b.value
            elif isinstance(b.value, relax.Call) and b.value.op in local_funcs:
                calls.append((b.var, b.value, local_funcs[b.value.op]))
            elif isinstance(b.value, relax.Var):
                calls.append((b.var, b.value, None))
            else:
                raise LoweringError(f"{symbol}: unexpected binding {type(b.value).__name__}")
    batch = _shape(func.params[0])[0]
    lf = LoweredFunction(symbol=symbol, batch=batch)
    ids: dict = {}
    consumers: dict = {}
    for i, p in enumerate(func.params):
        ids[p] = f"in{i}"
        lf.inputs.append(f"in{i}")
        lf.input_shapes.append(_shape(p))
    parsed = []
    for k, (var, call, f) in enumerate(calls):
        if f is None:  # plain alias binding
            ids[var] = ids[call]
            continue
        if f.attrs is None or RANGES_ATTR not in f.attrs:
            raise LoweringError(f"{symbol}: composite {k} carries no calibration; "
                                "calibrate the module (zynq_squeeze.calibrate) first")
        chain = parse_composite(f)
        ranges = json.loads(str(f.attrs[RANGES_ATTR]))
        if any(a not in ids for a in call.args):
            raise LoweringError(f"{symbol}: composite {k} reads an unknown tensor")
        if chain.bypass_param is not None:  # residual add: [conv input, bypass]
            srcs = [ids[call.args[chain.in_param]], ids[call.args[chain.bypass_param]]]
            consumers.setdefault(srcs[0], []).append(ranges["in"])
            if ranges.get("bp") is not None:  # (a QDQ model's ranges may not name it)
                consumers.setdefault(srcs[1], []).append(ranges["bp"])
        else:
            srcs = [ids[a] for a in call.args]
            for sid in srcs:
                consumers.setdefault(sid, []).append(ranges["in"])
        ids[var] = f"t{k}"
        parsed.append((chain, ranges, srcs, f"t{k}"))
        lf.patterns.append(chain.pattern)
    outs = func.body.body
    fields = outs.fields if isinstance(outs, relax.Tuple) else [outs]
    for fld in fields:
        if fld not in ids:
            raise LoweringError(f"{symbol}: output is not a layer result")
        lf.outputs.append(ids[fld])
        lf.output_shapes.append(_shape(fld))
    for i, p in enumerate(func.params):
        absmax = max(consumers.get(f"in{i}", [0.0]))
        lf.tensors[f"in{i}"] = TensorInfo(_chw(_shape(p)), scale_of(absmax))
    qdq = any("weights" in r for _, r, _, _ in parsed)
    # a QDQ model rounds its input to int8 itself: no finer input than the model's
    for tid in (split_inputs(lf, parsed) if input_split and not qdq else []):
        info = lf.tensors[tid]
        info.shape, info.split = (2 * info.shape[0], *info.shape[1:]), int(input_split)
    # a QDQ model's scales are its own (symmetric int8): its tensors keep zero point 0
    _lower_layers(lf, parsed, unsigned and not qdq)
    return lf


def split_inputs(lf: LoweredFunction, parsed: list) -> list[str]:
    """The function inputs that get a two-plane input: an image (at most
    ``SPLIT_MAX_CHANNELS`` channels, so that 2C fit one word) read only by one plain conv
    (groups 1), not an output. Anything else (a pool, a fire, a residual add, a concat, or
    several readers) keeps one plane."""
    out = []
    for tid in lf.inputs:
        readers = [(c, srcs) for c, _, srcs, _ in parsed if tid in srcs]
        if (len(readers) != 1 or tid in lf.outputs
                or lf.tensors[tid].shape[0] > SPLIT_MAX_CHANNELS):
            continue
        chain, srcs = readers[0]
        if chain.kind == "conv" and srcs == [tid] and chain.convs[0].groups == 1:
            out.append(tid)
    return out


def _plan_kind(chain: FloatChain) -> str:
    """How a composite's output may be placed in a concat (``concat_plan``): a conv or
    fire without a clamp, or a standalone average pool (DenseNet's transitions), requantizes
    to any scale; a clamp (ReLU6) must keep its own, a max pool its input's."""
    if chain.kind == "concat":
        return "concat"
    if chain.kind in ("conv", "fire") and all(c.clip is None for c in chain.convs):
        return "aliasable"
    if chain.kind == "pool" and chain.pool.kind == "avg":
        return "aliasable"
    return "fixed"


def pre_pool_hw(chain: FloatChain) -> tuple[int, int]:
    """The (H, W) plane a chain's fused pool reads: its first conv's output (a fire's
    expands keep the squeeze's plane)."""
    c = chain.convs[0]
    kh, kw = c.weight.shape[2:]
    t, l, b, r = c.pads
    h, w = chain.in_shape[2:]
    return ((h + t + b - kh) // c.stride[0] + 1, (w + l + r - kw) // c.stride[1] + 1)


def assign_zero_points(lf: LoweredFunction, parsed: list, views: dict, copies: dict
                       ) -> dict[str, int]:
    """Every tensor's zero point: -128 for a nonnegative tensor (a ReLU's or Clip(0, c)'s
    output, a pool of one, a concat of them), 0 otherwise. Tensors that must share one
    (a max pool's input and output; a concat's tensor and its parts stored in place:
    ``views``) form a class, which is -128 only when all its tensors are nonnegative and
    none is read by an average pool that cannot offset its sums (it counts padding, or
    its window is too large: ``reference.avg_zero_point_reason``); function inputs are
    0 (the host quantizes them symmetrically). ``copies``: copy id -> (source, index)."""
    parent: dict[str, str] = {}

    def find(t: str) -> str:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    nonneg = {t: False for t in lf.inputs}
    blocked: set[str] = set()
    for chain, _, srcs, dst in parsed:
        if chain.kind == "concat":
            nonneg[dst] = all(nonneg[s] for s in srcs)
        elif chain.kind == "pool":
            nonneg[dst] = nonneg[srcs[0]]
            if chain.pool.kind == "max":
                union(srcs[0], dst)
            elif avg_zero_point_reason(chain.pool, *chain.in_shape[2:]) is not None:
                blocked.add(srcs[0])
        else:  # conv, fire, conv_add: the last activation (a fire: both expands')
            last = chain.convs[1:] if chain.kind == "fire" else chain.convs[-1:]
            nonneg[dst] = all(c.relu for c in last)
            if (chain.pool is not None and chain.pool.kind == "avg"
                    and avg_zero_point_reason(chain.pool, *pre_pool_hw(chain)) is not None):
                blocked.add(dst)
    for cid, (src, _) in copies.items():
        nonneg[cid] = nonneg[src]
    for t, (root, _) in views.items():
        union(t, root)
    ok: dict[str, bool] = {}
    for t, v in nonneg.items():
        r = find(t)
        ok[r] = ok.get(r, True) and v and t not in blocked
    return {t: ZP_UNSIGNED if ok[find(t)] else 0 for t in nonneg}


def _lower_layers(lf: LoweredFunction, parsed: list, unsigned: bool = True) -> None:
    """The layers of ``parsed`` composites (chain, ranges, source ids, output id) with
    the concats planned as views (``concat_plan``) and their copies. ``unsigned``: give
    nonnegative tensors zero point -128 (``assign_zero_points``; else all are 0)."""
    channels = {t: info.shape[0] for t, info in lf.tensors.items()}
    for chain, _, _, dst in parsed:
        channels[dst] = _chw(chain.out_shape)[0]
    try:
        plan = plan_concats([PlanItem(_plan_kind(c), srcs, dst) for c, _, srcs, dst in parsed],
                            channels, lf.outputs)
    except ValueError as e:
        raise LoweringError(f"{lf.symbol}: {e}") from None
    zps = assign_zero_points(lf, parsed, plan.views, plan.copies) if unsigned else {}
    # a QDQ model's multipliers are 22 bits wide (lower_chain), its copies' too
    bits = WIDE_MULT_BITS if any("weights" in r for _, r, _, _ in parsed) else MULT_BITS
    zp = lambda t: zps.get(t, 0)  # noqa: E731
    # every tensor in a concat's tensor has the concat's scale (its calibrated range)
    root_scale = {dst: scale_of(r["out"], zp(dst)) for c, r, _, dst in parsed
                  if c.kind == "concat"}
    part_views: dict = {}  # parts requantized in place (``_requantize_parts``)
    for n, (chain, ranges, srcs, dst) in enumerate(parsed):
        root = plan.root_of(dst)[0]
        if chain.kind == "concat":
            lf.tensors[dst] = TensorInfo(_chw(chain.out_shape), root_scale[root], zp(root))
            for j, (src, cid) in enumerate(plan.copies_at(n)):
                info = lf.tensors[src]
                layer = copy_layer(f"{lf.symbol}_l{n}_copy{j}", info.shape, info.scale,
                                   root_scale[root], info.zero_point, zp(root), bits)
                lf.tensors[cid] = TensorInfo(info.shape, root_scale[root], zp(root))
                lf.layers.append((layer, src, cid))
            continue
        src_id = srcs[0]
        out_scale = root_scale[root] if dst in plan.views else None
        bypass = None
        if chain.kind == "conv_add":
            bp_id = srcs[1]
            if lf.tensors[bp_id].shape != tuple(_chw(chain.out_shape)):
                raise LoweringError(f"{lf.symbol}: layer {n} adds a {lf.tensors[bp_id].shape} "
                                    f"bypass to a {_chw(chain.out_shape)} output")
            bypass = (bp_id, lf.tensors[bp_id].scale, lf.tensors[bp_id].zero_point)
        if out_scale is None:
            out_scale = default_out_scale(chain, ranges, lf.tensors[src_id].scale, zp(dst))
        parts = part_scales(chain, ranges, out_scale)
        layer = lower_chain(f"{lf.symbol}_l{n}", chain, ranges, lf.tensors[src_id].scale,
                            out_scale, lf.weights, bypass, lf.tensors[src_id].zero_point,
                            zp(dst), zp_mid=0 if not unsigned else None, parts=parts,
                            mult_bits=bits, input_split=lf.tensors[src_id].split)
        if tuple(layer.in_shape) != lf.tensors[src_id].shape:
            raise LoweringError(f"{lf.symbol}: layer {n} expects {layer.in_shape}, "
                                f"tensor is {lf.tensors[src_id].shape}")
        lf.tensors[dst] = TensorInfo(tuple(layer.out_shape), out_scale, zp(dst))
        lf.layers.append((layer, src_id, dst))
        if parts:
            _requantize_parts(lf, n, dst, part_channels(chain), parts,
                              plan.root_of(dst), part_views)
    lf.views = {**plan.views, **part_views}


def _requantize_parts(lf: LoweredFunction, n: int, dst: str, sizes: list[int], parts: list,
                      slot: tuple[str, int], views: dict) -> None:
    """After layer ``n`` wrote ``dst`` (at ``slot``: root id, channel offset) with part
    ``j`` at its own scale ``parts[j]``: requantize each such part in place to ``dst``'s
    scale (``requant_copy_layer``), the QDQ model's second rounding. The part is a view
    read and written by one 1x1 pool (``dae_program.in_place_copy``)."""
    root, off = slot
    plane = lf.tensors[dst].shape[1:]
    c0 = 0
    for j, (c, own) in enumerate(zip(sizes, parts)):
        if own is not None:
            shape = (c, *plane)
            src, cid = f"{dst}_part{j}", f"{dst}_part{j}_rq"
            lf.tensors[src] = TensorInfo(shape, own)
            lf.tensors[cid] = TensorInfo(shape, lf.tensors[dst].scale)
            views[src] = views[cid] = (root, off + c0)
            lf.layers.append((requant_copy_layer(f"{lf.symbol}_l{n}_rq{j}", shape, own,
                                                 lf.tensors[dst].scale), src, cid))
        c0 += c
