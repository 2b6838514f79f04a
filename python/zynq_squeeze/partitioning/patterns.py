"""What the accelerator can take: Relax DPL patterns, their checks, and rejection reasons.

This module is the only place that decides what is offloadable. Three pattern families
(highest priority last, as the pattern registry wants it):

* ``zynq_squeeze.pool``      a pool on its own (max, avg, global average) of a tensor the
                             accelerator holds: it merges into the offloaded function
                             around it (issue 11 item 4)
* ``zynq_squeeze.concat``    concat on channels of 2..64 tensors whose channel counts are
                             multiples of 8: in the engine, channel-group offsets of one
                             tensor that the parts are stored into
* ``zynq_squeeze.conv``      conv2d(+bias)(+ReLU or Clip(0, c))
* ``zynq_squeeze.dense``     matmul(x (N, K), constant W (K, O))(+bias)(+ReLU or Clip(0, c)):
                             a fully connected layer (ONNX Gemm, MatMul + Add), run as a
                             1x1 convolution of a (K, 1, 1) image; x may be a Reshape or
                             Flatten of an (N, K, 1, 1) tensor (same bytes)
* ``zynq_squeeze.conv_pool`` conv2d(+bias)+ReLU+pool (max, avg, global average; an
                             average pool's windows may hold different counts: padding,
                             ceil overhang)
* ``zynq_squeeze.fire``      squeeze 1x1+ReLU -> (expand 1x1+ReLU || expand 3x3 pad 1+ReLU)
                             -> concat on channels
* ``zynq_squeeze.fire_pool`` the same followed by a pool
* ``zynq_squeeze.conv_add``  conv2d(+bias) + bypass (either operand order) (+ReLU or Clip(0, c)):
                             a residual add (ResNet basic block, MobileNetV2 linear
                             bottleneck without an activation), the bypass a non-constant
                             float32 tensor of the conv output's shape (one pattern per
                             operand order: an add of two conv outputs takes the conv whose
                             result is private to it); SqueezeNet's simple
                             bypass (a fire output plus its input) stays on the CPU with its
                             reason

Wherever a ReLU is accepted, ``clip(x, 0, c)`` (Clip(0, 6) / ReLU6, put in that form by
``cleanup``) is too: a ReLU whose clamp at ``c`` is the int8 saturation of an output
calibrated to at most ``c`` (see ``cleanup``). Both expands of a fire module share one
output scale, so they must clamp alike.

Every rejection carries a human-readable reason: the partition report lists them for
the operators that stay on the ARM.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_const, is_op, is_tuple, wildcard

from . import limits
from .limits import conv_limit_reason
from .pool_spec import avg_pool_reason

PREFIX = "zynq_squeeze"
CONV = f"{PREFIX}.conv"
DENSE = f"{PREFIX}.dense"
CONV_POOL = f"{PREFIX}.conv_pool"
FIRE = f"{PREFIX}.fire"
FIRE_POOL = f"{PREFIX}.fire_pool"
CONV_ADD = f"{PREFIX}.conv_add"
POOL = f"{PREFIX}.pool"
CONCAT = f"{PREFIX}.concat"
MAX_CONCAT_PARTS = 64  # one pattern per part count (DenseNet-161's blocks concat 49)
MAX_POOL_WINDOW = 64   # pool kernel and stride fields the engine's checks accept

# Tested limits of the conv lowering (tiling, first-layer patches, timing): AlexNet's
# 11x11 stride-4 conv1 and every kernel 1..11 x stride 1..4 (tests/test_large_kernel.py);
# the instruction fields allow more (limits.MAX_KERNEL_FIELD, MAX_STRIDE_FIELD).
MAX_KERNEL = 11
STRIDES = (1, 2, 3, 4)
POOL_OPS = ("relax.nn.max_pool2d", "relax.nn.avg_pool2d", "relax.mean",
            "relax.nn.adaptive_avg_pool2d")


# --------------------------------------------------------------------------- structure
@dataclass
class ConvNode:
    """One conv2d(+bias)(+ReLU) found in a Relax expression."""

    conv: relax.Call
    weight: object  # relax constant
    bias: object | None
    relu: bool
    data: relax.Expr  # the conv's input expression
    calls: list = field(default_factory=list)  # every call of the chain, root last
    clipped: bool = False  # the activation is a clip(x, lo, hi), not a ReLU
    clip: float | None = None  # its upper bound: the clamp of Clip(0, c) (relu is True)
    clip_low: float | None = None  # its lower bound (must be 0 to offload)


@dataclass
class PoolNode:
    """A pooling call following a conv chain."""

    call: relax.Call
    op: str


def _lookup_default(expr):
    return None


def _deref(expr, lookup):
    """Follow a Var to the expression bound to it, when the caller knows the binding."""
    while isinstance(expr, relax.Var):
        bound = lookup(expr)
        if bound is None:
            return expr
        expr = bound
    return expr


def _op_name(expr) -> str | None:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None


def _is_const(expr) -> bool:
    return isinstance(expr, tvm.ir.expr.GenericConst) or type(expr).__name__ in (
        "Constant", "GenericConst")


def const_value(expr) -> np.ndarray:
    """The numpy value of a Relax constant."""
    return expr.value.numpy()


def _prim_float(expr) -> float | None:
    try:
        return float(expr.value)
    except (AttributeError, TypeError, ValueError):
        return None


def clip_bounds(call: relax.Call) -> tuple[float | None, float | None]:
    """(min, max) of a ``relax.clip`` call (None where not a number)."""
    return _prim_float(call.args[1]), _prim_float(call.args[2])


def _parse_chain(expr, lookup, core_op: str) -> ConvNode | None:
    """Parse core(x, W) [+ b] [ReLU | clip] ending at ``expr``, ``core`` the op named
    ``core_op`` (conv2d or matmul); None if it is not that shape."""
    expr = _deref(expr, lookup)
    calls = []
    relu = False
    clipped, clip, clip_low = False, None, None
    if _op_name(expr) == "relax.nn.relu":
        relu = True
        calls.append(expr)
        expr = _deref(expr.args[0], lookup)
    elif _op_name(expr) == "relax.clip":
        relu = clipped = True
        clip_low, clip = clip_bounds(expr)
        calls.append(expr)
        expr = _deref(expr.args[0], lookup)
    bias = None
    if _op_name(expr) == "relax.add":
        a, b = (_deref(x, lookup) for x in expr.args)
        if _op_name(a) == core_op and _is_const(b):
            calls.append(expr)
            bias, expr = b, a
        elif _op_name(b) == core_op and _is_const(a):
            calls.append(expr)
            bias, expr = a, b
        else:
            return None
    if _op_name(expr) != core_op:
        return None
    calls.append(expr)
    weight = _deref(expr.args[1], lookup)
    return ConvNode(conv=expr, weight=weight, bias=bias, relu=relu, data=expr.args[0],
                    calls=list(reversed(calls)), clipped=clipped, clip=clip,
                    clip_low=clip_low)


def parse_conv(expr, lookup=_lookup_default) -> ConvNode | None:
    """Parse conv2d(x, W) [+ b] [ReLU] ending at ``expr``; None if it is not that shape."""
    return _parse_chain(expr, lookup, "relax.nn.conv2d")


def parse_dense(expr, lookup=_lookup_default) -> ConvNode | None:
    """Parse matmul(x, W) [+ b] [ReLU] ending at ``expr`` (``conv`` is then the matmul);
    None if it is not that shape."""
    return _parse_chain(expr, lookup, "relax.matmul")


def _static_shape(expr) -> tuple[int, ...] | None:
    ty = getattr(expr, "ty", None)
    shape = getattr(ty, "shape", None)
    if shape is None:
        return None
    try:
        return tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        return None


def _dtype(expr) -> str | None:
    return getattr(getattr(expr, "ty", None), "dtype", None)


def _ints(arr) -> tuple[int, ...]:
    return tuple(int(v) for v in arr)


def conv_reason(node: ConvNode) -> str | None:
    """Why this conv cannot run on the accelerator, or None when it can."""
    a = node.conv.attrs
    if any(d != 1 for d in _ints(a.dilation)):
        return f"dilated convolution (dilation={list(_ints(a.dilation))}) is not supported"
    if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != "OIHW":
        return f"layout {a.data_layout}/{a.kernel_layout} is not NCHW/OIHW"
    if str(a.out_layout) not in ("NCHW", ""):
        return f"output layout {a.out_layout} is not NCHW"
    if not _is_const(node.weight):
        return "weights are not constant (bind the parameters before compiling)"
    ishape, wshape = _static_shape(node.data), _static_shape(node.weight)
    if ishape is None or len(ishape) != 4:
        return "input shape is not static 4-D NCHW"
    if _dtype(node.data) != "float32" or _dtype(node.weight) != "float32":
        return f"dtype {_dtype(node.data)} is not float32"
    r = groups_reason(int(a.groups), ishape[1], wshape)
    if r:
        return r
    kh, kw = wshape[2], wshape[3]
    if not (1 <= kh <= MAX_KERNEL and 1 <= kw <= MAX_KERNEL):
        return f"kernel {kh}x{kw} is outside 1x1..{MAX_KERNEL}x{MAX_KERNEL}"
    strides = _ints(a.strides)
    if any(s not in STRIDES for s in strides):
        return f"stride {list(strides)} is outside 1..{max(STRIDES)}"
    oshape = _static_shape(node.conv)
    if oshape is None or len(oshape) != 4:
        return "output shape is not static 4-D NCHW"
    r = conv_limit_reason(ishape[1:], oshape[1:], (kh, kw), _ints(a.padding))
    if r:
        return r
    if node.bias is not None:
        # add(conv NCHW, b) is a per-channel bias only for b of shape (1, O, 1, 1) or (O, 1, 1).
        bshape = _static_shape(node.bias)
        if bshape not in ((1, wshape[0], 1, 1), (wshape[0], 1, 1)):
            return f"bias of shape {bshape} is not one value per output channel"
    if node.clipped:
        return clip_reason(node.clip_low, node.clip)
    return None


def groups_reason(groups: int, in_channels: int, wshape: tuple[int, ...]) -> str | None:
    """Why a conv with ``groups`` cannot run on the engine, or None. Depthwise (one input
    and one output channel per group) is an engine mode (``CONV_DW``); other grouped convs
    run as one conv per group on channel slices, which start on an 8-channel activation
    word only when every group's input and output channel counts are multiples of 8."""
    if groups == 1:
        return None
    o, i = wshape[0], wshape[1]
    if groups < 1 or in_channels != i * groups or o % groups:
        return f"groups={groups} does not divide {in_channels} input / {o} output channels"
    og = o // groups
    if i == 1 and og == 1:
        return None  # depthwise, multiplier 1
    if i % 8 or og % 8:
        return (f"grouped convolution (groups={groups}) with {i} input / {og} output "
                "channels per group: the engine takes depthwise convolutions (1 / 1) or "
                "groups whose channel counts are multiples of 8")
    return None


def clip_reason(lo: float | None, hi: float | None) -> str | None:
    """Why clip(x, lo, hi) after a conv cannot be the engine's ReLU + saturation, or None."""
    if lo != 0.0 or hi is None or not (0.0 < hi < np.inf):
        return (f"clip to [{lo}, {hi}] is not Clip(0, c) with 0 < c < inf (the engine "
                "clamps at 0 and at its int8 saturation only)")
    return None


FLATTEN_OPS = ("relax.reshape", "relax.flatten")


def flatten_source(data, lookup=_lookup_default):
    """The tensor a fully connected layer's input flattens (``reshape``/``flatten`` of it),
    or None when the input is not such a call."""
    data = _deref(data, lookup)
    return data.args[0] if _op_name(data) in FLATTEN_OPS else None


def flatten_reason(src_shape: tuple[int, ...] | None, flat_shape: tuple[int, ...] | None
                   ) -> str | None:
    """Why the accelerator cannot read a flatten of ``src_shape`` to ``flat_shape`` as the
    activation it holds (HWC words of 8 channels): only (N, K, 1, 1) -> (N, K) is the same
    bytes; a flatten of a larger plane reorders channels and pixels (NCHW order)."""
    if src_shape is None or flat_shape is None:
        return "flatten of a tensor without a static shape"
    if len(src_shape) != 4 or src_shape[2:] != (1, 1) or tuple(flat_shape) != src_shape[:2]:
        return (f"flatten of {src_shape} to {flat_shape}: only (N, K, 1, 1) -> (N, K) is the "
                "accelerator's layout")
    return None


def dense_reason(node: ConvNode, lookup=_lookup_default) -> str | None:
    """Why this fully connected layer cannot run on the accelerator (as a 1x1 conv of a
    (K, 1, 1) image), or None when it can."""
    if not _is_const(node.weight):
        return "weights are not constant (bind the parameters before compiling)"
    src = flatten_source(node.data, lookup)
    if src is not None:
        r = flatten_reason(_static_shape(src), _static_shape(node.data))
        if r:
            return r
    ishape, wshape = _static_shape(node.data), _static_shape(node.weight)
    if ishape is None or len(ishape) != 2:
        return f"input shape {ishape} is not static 2-D (N, K)"
    if wshape is None or len(wshape) != 2 or wshape[0] != ishape[1]:
        return f"weight shape {wshape} is not (K, O) for an input of shape {ishape}"
    if _dtype(node.data) != "float32" or _dtype(node.weight) != "float32":
        return f"dtype {_dtype(node.data)} is not float32"
    out_dtype = getattr(node.conv.attrs, "out_dtype", None)
    if out_dtype is not None and str(out_dtype) not in ("", "void", "float32"):
        return f"output dtype {out_dtype} is not float32"
    k, o = wshape
    r = conv_limit_reason((k, 1, 1), (o, 1, 1), (1, 1), (0, 0, 0, 0))
    if r:
        return r
    if node.bias is not None:
        bshape = _static_shape(node.bias)
        if bshape not in ((o,), (1, o)):
            return f"bias of shape {bshape} is not one value per output"
    if node.clipped:
        return clip_reason(node.clip_low, node.clip)
    return None


def dense_problem_for_report(call: relax.Call) -> str:
    """The reason a matmul left on the CPU was not offloaded (for the partition report)."""
    node = ConvNode(conv=call, weight=call.args[1], bias=None, relu=False, data=call.args[0])
    return dense_reason(node) or "not part of an offloadable fully connected chain"


def _avg_reason(call: relax.Call) -> str | None:
    """Average pools: the engine divides each window's sum by a constant multiplier in the
    requantization DSP (one per class of windows with one element count), so every
    divisor must fit its 25-bit input (``pool_spec.avg_pool_reason``)."""
    from .composite import pool_spec  # composite imports this module

    shape = _static_shape(call.args[0])
    if shape is None or len(shape) != 4:
        return "average pool input shape is not static 4-D NCHW"
    return avg_pool_reason(pool_spec(call), shape[2], shape[3])


def pool_reason(call: relax.Call) -> str | None:
    """Why this pool cannot be fused into the output tile, or None when it can."""
    op = _op_name(call)
    a = call.attrs
    if op in ("relax.nn.max_pool2d", "relax.nn.avg_pool2d"):
        if str(a.layout) != "NCHW":
            return f"pool layout {a.layout} is not NCHW"
        if any(d != 1 for d in _ints(a.dilation)):
            return "dilated pooling is not supported"
        kh, kw = _ints(a.pool_size)
        pads = _ints(a.padding)
        pads = pads * 2 if len(pads) == 2 else pads
        if not (pads[0] < kh and pads[2] < kh and pads[1] < kw and pads[3] < kw):
            return f"pool padding {pads} is not smaller than the window {(kh, kw)}"
        return _avg_reason(call) if op == "relax.nn.avg_pool2d" else None
    if op == "relax.mean":
        axis = sorted(int(x) % 4 for x in a.axis) if a.axis is not None else None
        if axis != [2, 3]:
            return f"mean over axes {axis} is not a global average pool"
        return _avg_reason(call)
    if op == "relax.nn.adaptive_avg_pool2d":
        if str(a.layout) != "NCHW":
            return f"pool layout {a.layout} is not NCHW"
        if a.output_size is None or _ints(a.output_size) not in ((1, 1), (1,)):
            return "adaptive average pool to a size other than 1x1"
        return _avg_reason(call)
    return f"{op} is not a pool"


@dataclass
class FireNode:
    squeeze: ConvNode
    expand1: ConvNode
    expand3: ConvNode
    concat: relax.Call


def parse_fire(expr, lookup=_lookup_default) -> FireNode | None:
    """Parse concat((expand1, expand3), axis=1) of a squeeze output ending at ``expr``."""
    expr = _deref(expr, lookup)
    if _op_name(expr) != "relax.concat":
        return None
    tup = _deref(expr.args[0], lookup)
    if not isinstance(tup, relax.Tuple) or len(tup.fields) != 2:
        return None
    e1, e3 = (parse_conv(f, lookup) for f in tup.fields)
    if e1 is None or e3 is None:
        return None
    sq1, sq3 = _deref(e1.data, lookup), _deref(e3.data, lookup)
    if not sq1.same_as(sq3):
        return None
    sq = parse_conv(sq1, lookup)
    if sq is None:
        return None
    return FireNode(squeeze=sq, expand1=e1, expand3=e3, concat=expr)


def fire_reason(node: FireNode) -> str | None:
    """Why this fire module cannot be fused, or None when it can."""
    for role, c, k, pad in (("squeeze", node.squeeze, 1, 0), ("expand1x1", node.expand1, 1, 0),
                            ("expand3x3", node.expand3, 3, 1)):
        r = conv_reason(c)
        if r:
            return f"{role}: {r}"
        a = c.conv.attrs
        if int(a.groups) != 1:
            return f"{role} is a grouped convolution (groups={int(a.groups)})"
        wshape = _static_shape(c.weight)
        if wshape[2:] != (k, k) or _ints(a.strides) != (1, 1) or any(
                p != pad for p in _ints(a.padding)):
            return f"{role} is not a {k}x{k} stride-1 pad-{pad} convolution"
        if not c.relu:
            return f"{role} has no ReLU"
    if node.expand1.clip != node.expand3.clip:
        return (f"expand1x1 and expand3x3 clamp at {node.expand1.clip} and "
                f"{node.expand3.clip}: they share one output scale")
    if int(node.concat.attrs.axis) % 4 != 1:
        return "fire concat is not on the channel axis"
    e1 = _static_shape(node.expand1.weight)[0]
    if e1 % 8:
        # the concat is a channel-group offset in the engine's 8-channel activation words
        return f"fire expand1x1 has {e1} channels, not a multiple of 8"
    return None


def conv_problem_for_report(call: relax.Call) -> str:
    """The reason a conv2d left on the CPU was not offloaded (for the partition report)."""
    node = ConvNode(conv=call, weight=call.args[1], bias=None, relu=False, data=call.args[0])
    return conv_reason(node) or "not part of an offloadable conv chain"


# --------------------------------------------------------------------------- residual add
@dataclass
class ConvAddNode:
    """conv(+bias) + bypass (+activation): ``conv`` is the conv chain (its ``relu`` /
    ``clip`` the activation after the add), ``add`` the residual add call, ``bypass`` its
    other operand."""

    conv: ConvNode
    add: relax.Call
    bypass: relax.Expr


def parse_conv_add(expr, lookup=_lookup_default) -> ConvAddNode | None:
    """Parse [relu | clip](add(conv2d(x, W) [+ b], bypass)) ending at ``expr`` (either
    operand order); None if it is not that shape. The conv side is the operand that parses
    as a conv chain without activation through ``lookup`` (a pattern check's lookup only
    follows the match's own bindings: a bypass computed outside it stays a Var)."""
    expr = _deref(expr, lookup)
    act = None
    if _op_name(expr) in ("relax.nn.relu", "relax.clip"):
        act, expr = expr, _deref(expr.args[0], lookup)
    if _op_name(expr) != "relax.add":
        return None
    for side in (0, 1):
        node = parse_conv(expr.args[side], lookup)
        if node is None or node.relu:
            continue
        node.calls.append(expr)
        if act is not None:
            node.calls.append(act)
            node.relu = True
            if _op_name(act) == "relax.clip":
                node.clipped = True
                node.clip_low, node.clip = clip_bounds(act)
        return ConvAddNode(conv=node, add=expr, bypass=expr.args[1 - side])
    return None


def conv_add_reason(node: ConvAddNode) -> str | None:
    """Why this residual add cannot run on the accelerator, or None when it can."""
    if int(node.conv.conv.attrs.groups) != 1:
        return "residual add of a grouped convolution's output (the engine adds to groups-1 convs)"
    r = conv_reason(node.conv)
    if r:
        return r
    if _is_const(node.bypass):
        return "the added operand is a constant, not a bypass tensor"
    out, bp = _static_shape(node.conv.conv), _static_shape(node.bypass)
    if bp != out or _static_shape(node.add) != out:
        return (f"residual add of a {bp} tensor to a {out} convolution output (the engine "
                "adds tensors of the same shape only, no broadcast)")
    if _dtype(node.bypass) != "float32":
        return f"bypass dtype {_dtype(node.bypass)} is not float32"
    return None


def add_problem_for_report(call: relax.Call, producers: dict, composites: dict) -> str | None:
    """The reason an add of two tensors (a residual add) stayed on the CPU, or None when
    it is not one. ``producers``: var -> bound value of the composite-level main;
    ``composites``: var -> pattern name of the composite that computed it."""
    if any(_is_const(x) or _is_const(producers.get(x)) for x in call.args):
        return None
    sa, sb = (_static_shape(x) for x in call.args)
    if sa != sb:
        return (f"residual add of a {sb} tensor to a {sa} one (the engine adds tensors of "
                "the same shape only, no broadcast)")
    kinds = {composites.get(x) for x in call.args}
    if kinds & {FIRE, FIRE_POOL}:
        return ("residual add of a fire module's output (SqueezeNet's simple bypass): the "
                "engine adds a bypass to a single convolution's output only")
    node = parse_conv_add(call, producers.get)
    if node is not None:
        return conv_add_reason(node) or ("its convolution's result is also used elsewhere "
                                         "(it must stay private to the offloaded chain)")
    if kinds & {CONV, CONV_POOL, DENSE}:
        return ("its convolution operand is activated (or pooled) before the add, or its "
                "result is used elsewhere: the engine adds the bypass before the activation")
    return "residual add without a convolution operand (the engine adds to a conv's output)"


# --------------------------------------------------------------------------- pool, concat
def _tensor_reason(expr, what: str) -> str | None:
    """Why ``expr`` is not a static float32 NCHW tensor within the engine's fields."""
    shape = _static_shape(expr)
    if shape is None or len(shape) != 4:
        return f"{what} shape {shape} is not static 4-D NCHW"
    if _dtype(expr) != "float32":
        return f"{what} dtype {_dtype(expr)} is not float32"
    _, c, h, w = shape
    if c > limits.MAX_CHANNELS:
        return f"{c} channels exceed the engine's {limits.MAX_CHANNELS}"
    if max(h, w) > limits.MAX_SPATIAL:
        return f"a {h}x{w} feature map exceeds the engine's {limits.MAX_SPATIAL} pixels per side"
    return None


def standalone_pool_reason(call: relax.Call) -> str | None:
    """Why this pool cannot run on the accelerator on its own (LOAD_INPUT -> POOL from
    in_buf -> STORE), or None when it can."""
    r = pool_reason(call) or _tensor_reason(call.args[0], "pool input")
    if r:
        return r
    from .composite import pool_spec  # composite imports this module

    p = pool_spec(call)
    if not p.global_pool:
        if max(*p.kernel, *p.stride) > MAX_POOL_WINDOW:
            return f"pool window {p.kernel} / stride {p.stride} above {MAX_POOL_WINDOW}"
        if any(pad >= k for pad, k in zip(p.pads, p.kernel * 2)):
            return f"pool padding {p.pads} not smaller than the window {p.kernel}"
    return None


def concat_parts(call: relax.Call, lookup=_lookup_default) -> list | None:
    """The part expressions of a ``relax.concat``, or None when its argument is no tuple."""
    tup = _deref(call.args[0], lookup)
    return list(tup.fields) if isinstance(tup, relax.Tuple) else None


def concat_reason(call: relax.Call, lookup=_lookup_default) -> str | None:
    """Why this concat cannot be channel-group offsets of one engine tensor, or None."""
    parts = concat_parts(call, lookup)
    if parts is None:
        return "concat of a tuple that is not written out"
    if not 2 <= len(parts) <= MAX_CONCAT_PARTS:
        return f"concat of {len(parts)} tensors (the accelerator takes 2..{MAX_CONCAT_PARTS})"
    out = _static_shape(call)
    if out is None or len(out) != 4 or int(call.attrs.axis) % 4 != 1:
        return "concat is not on the channel axis of a 4-D NCHW tensor"
    r = _tensor_reason(call, "concat output")
    if r:
        return r
    for k, part in enumerate(parts):
        r = _tensor_reason(part, f"concat part {k}")
        if r:
            return r
        c = _static_shape(part)[1]
        if c % 8:
            # a part starts on an 8-channel activation word (its channel-group offset)
            return f"concat part {k} has {c} channels, not a multiple of 8"
    return None


# --------------------------------------------------------------------------- LRN
LRN_REASON = ("part of an LRN (x / (bias + alpha/size * sum over 'size' channels of x^2)^beta, "
              "a nonlinear cross-channel normalization: the engine has no datapath for it); "
              "runs on the ARM (TVM llvm)")


def lrn_parts(divide: relax.Call, lookup=_lookup_default) -> list | None:
    """The calls of an ONNX LRN as the importer spells it, ending at ``divide``:
    ``x / power(add(multiply(squeeze(avg_pool3d(expand_dims(x * x))), c), c), c)`` (root
    last), or None when ``divide`` is not one."""
    if _op_name(divide) != "relax.divide":
        return None
    chain, expr = [divide], _deref(divide.args[1], lookup)
    for op in ("relax.power", "relax.add", "relax.multiply", "relax.squeeze",
               "relax.nn.avg_pool3d", "relax.expand_dims", "relax.multiply"):
        if _op_name(expr) != op:
            return None
        chain.append(expr)
        expr = _deref(expr.args[0], lookup)
    sq = chain[-1]
    x = divide.args[0]
    if not (sq.args[0].same_as(x) and sq.args[1].same_as(x)):
        return None
    return list(reversed(chain))


# --------------------------------------------------------------------------- checks
def _private_intermediates(ctx) -> bool:
    """Intermediate results of a match must not be used outside it (they never reach DDR)."""
    matched = set(ctx.matched_bindings.keys())
    root = ctx.matched_expr
    root_var = ctx.value_to_bound_var.get(root)
    for var in matched:
        if root_var is not None and var.same_as(root_var):
            continue
        for user in ctx.var_usages.get(var, []):
            if user not in matched:
                return False
    return True


def _lookup_from(ctx):
    bindings = ctx.matched_bindings

    def lookup(var):
        return bindings.get(var)

    return lookup


def _check_conv(ctx) -> bool:
    node = parse_conv(ctx.matched_expr, _lookup_from(ctx))
    return node is not None and conv_reason(node) is None and _private_intermediates(ctx)


def _check_dense(ctx) -> bool:
    lookup = _lookup_from(ctx)
    node = parse_dense(ctx.matched_expr, lookup)
    return (node is not None and dense_reason(node, lookup) is None
            and _private_intermediates(ctx))


def _check_conv_pool(ctx) -> bool:
    lookup = _lookup_from(ctx)
    pool = ctx.matched_expr
    node = parse_conv(pool.args[0], lookup)
    return (node is not None and node.relu and conv_reason(node) is None
            and pool_reason(pool) is None and _private_intermediates(ctx))


def _check_conv_add(ctx) -> bool:
    node = parse_conv_add(ctx.matched_expr, _lookup_from(ctx))
    return node is not None and conv_add_reason(node) is None and _private_intermediates(ctx)


def _check_pool(ctx) -> bool:
    return (standalone_pool_reason(ctx.matched_expr) is None
            and not _reads_dequantize(ctx, ctx.matched_expr.args[0]))


def _reads_dequantize(ctx, arg) -> bool:
    """True when ``arg`` is a ``relax.dequantize`` result: a QDQ model's pair that
    ``frontend.qdq`` keeps in front of an average pool the model requantizes to another
    scale. That pool belongs to the CPU's requantization (offloaded alone, it would be an
    extra function for one small operator)."""
    for value, var in ctx.value_to_bound_var.items():
        if var.same_as(arg):
            return _op_name(value) == "relax.dequantize"
    return False


def _check_concat(ctx) -> bool:
    return concat_reason(ctx.matched_expr, _lookup_from(ctx)) is None


def _check_fire(ctx) -> bool:
    lookup = _lookup_from(ctx)
    root = ctx.matched_expr
    pool = None
    if _op_name(root) in POOL_OPS:
        pool, root = root, _deref(root.args[0], lookup)
    node = parse_fire(root, lookup)
    if node is None or fire_reason(node) is not None:
        return False
    if pool is not None and pool_reason(pool) is not None:
        return False
    return _private_intermediates(ctx)


# --------------------------------------------------------------------------- patterns
def _conv_pattern(x, relu: bool | None):
    """conv2d(x, const) (+bias) with ReLU (or clip) required (True), absent (False) or
    optional (None)."""
    conv = is_op("relax.nn.conv2d")(x, is_const())
    with_bias = is_op("relax.add")(conv, is_const()) | is_op("relax.add")(is_const(), conv)
    pre = with_bias | conv
    act = is_op("relax.nn.relu")(pre) | is_op("relax.clip")(pre, wildcard(), wildcard())
    if relu is True:
        return act
    if relu is False:
        return pre
    return act | pre


def _dense_pattern(x):
    """matmul(x, const) (+bias) (+ReLU or clip), all optional after the matmul."""
    mm = is_op("relax.matmul")(x, is_const())
    with_bias = is_op("relax.add")(mm, is_const()) | is_op("relax.add")(is_const(), mm)
    pre = with_bias | mm
    act = is_op("relax.nn.relu")(pre) | is_op("relax.clip")(pre, wildcard(), wildcard())
    return act | pre


def _conv_add_pattern(conv_side: int):
    """conv2d(x, const)(+bias) + bypass (+ReLU or clip), the conv chain operand
    ``conv_side`` of the add. One pattern per side, not ``add(pre, *) | add(*, pre)``: the
    matcher commits to the first alternative that matches structurally, so an add of two
    conv outputs -- MobileNetV2's ``x + conv(x)`` when ``x`` is the previous block's linear
    projection, also read by the next expand conv -- was taken with ``x`` as the conv side,
    failed the check (that conv's result is not private) and stayed on the CPU; the other
    side's pattern now gets its turn."""
    pre = _conv_pattern(wildcard(), False)
    add = (is_op("relax.add")(pre, wildcard()) if conv_side == 0
           else is_op("relax.add")(wildcard(), pre))
    act = is_op("relax.nn.relu")(add) | is_op("relax.clip")(add, wildcard(), wildcard())
    return act | add


def _pool_of(x):
    out = is_op(POOL_OPS[0])(x)
    for op in POOL_OPS[1:]:
        out = out | is_op(op)(x)
    return out


def pattern_table():
    """(name, pattern, annotations, check) entries, lowest priority first."""
    x = wildcard()
    conv = _conv_pattern(x, None)
    conv_pool = _pool_of(_conv_pattern(wildcard(), True))
    sq = _conv_pattern(wildcard(), True)
    fire = is_op("relax.concat")(is_tuple([_conv_pattern(sq, True), _conv_pattern(sq, True)]))
    fire_pool = _pool_of(fire)
    concats = [(CONCAT, is_op("relax.concat")(is_tuple([wildcard() for _ in range(n)])), {},
                _check_concat) for n in range(2, MAX_CONCAT_PARTS + 1)]
    return [
        (POOL, _pool_of(wildcard()), {}, _check_pool),
        *concats,
        (CONV, conv, {}, _check_conv),
        (DENSE, _dense_pattern(wildcard()), {}, _check_dense),
        # the input a reshape/flatten of an (N, K, 1, 1) tensor (the classifier after a
        # global pool: the same bytes, so the layer joins the function computing the pool);
        # a separate, higher entry: when its check refuses (a larger plane), the plain
        # pattern above still takes the matmul
        (DENSE, _dense_pattern(is_op("relax.reshape")(wildcard(), wildcard())
                               | is_op("relax.flatten")(wildcard())), {}, _check_dense),
        (CONV_POOL, conv_pool, {}, _check_conv_pool),
        (FIRE, fire, {}, _check_fire),
        (FIRE_POOL, fire_pool, {}, _check_fire),
        (CONV_ADD, _conv_add_pattern(1), {}, _check_conv_add),  # the other order, if not
        (CONV_ADD, _conv_add_pattern(0), {}, _check_conv_add),
    ]


_registered = False


def register() -> None:
    """Register the pattern table with TVM's pattern registry (idempotent)."""
    global _registered
    if _registered:
        return
    from tvm.relax.backend.pattern_registry import register_patterns

    register_patterns(pattern_table())
    _registered = True


def get_patterns():
    """The registered FusionPatterns of this plugin, highest priority first."""
    from tvm.relax.backend.pattern_registry import get_patterns_with_prefix

    register()
    return get_patterns_with_prefix(PREFIX)
