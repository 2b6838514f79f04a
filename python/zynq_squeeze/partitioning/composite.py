"""Read a matched composite function into a float layer description, and run it in numpy.

Calibration uses the float evaluator to see the ranges inside a composite (the squeeze
output of a fire module, a conv output before its pool); codegen uses the description to
quantize weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from tvm import relax

from . import patterns
from .pool_spec import PoolSpec


@dataclass(eq=False)
class FloatConv:
    """A float conv(+bias)(+ReLU): weight [O,I,KH,KW], bias [O]; ``clip``: the upper clamp
    of a Clip(0, c) activation (``relu`` is then True), None for a plain ReLU."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]
    relu: bool
    clip: float | None = None
    groups: int = 1  # weight is [O, I / groups, KH, KW] (a depthwise conv: groups = I = O)


@dataclass(eq=False)
class FloatChain:
    """One composite: ``convs`` is [conv] or [squeeze, expand1, expand3] for a fire module.

    A fully connected layer is a 1x1 ``conv`` of kind "conv" over the (N, K, 1, 1) image
    its (N, K) input is (the same memory layout)."""

    pattern: str
    kind: str  # "conv" | "fire" | "pool" (standalone) | "concat" | "conv_add"
    in_shape: tuple[int, int, int, int]  # N, C, H, W (a concat: its output's)
    out_shape: tuple[int, ...]
    convs: list[FloatConv]
    pool: PoolSpec | None
    parts: tuple[int, ...] = ()  # a concat: each part's channels, in order
    # which of the composite's parameters is the conv input, and (residual add) which the
    # bypass: the fused function's parameters are in no fixed order
    in_param: int = 0
    bypass_param: int | None = None


def _ints(v) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


def _float_conv(node: patterns.ConvNode) -> FloatConv:
    a = node.conv.attrs
    w = patterns.const_value(node.weight).astype(np.float32, copy=False)
    b = (patterns.const_value(node.bias).reshape(-1).astype(np.float32, copy=False)
         if node.bias is not None else np.zeros(w.shape[0], np.float32))
    pad = _ints(a.padding)
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    return FloatConv(weight=w, bias=b, stride=_ints(a.strides), pads=pad, relu=node.relu,
                     clip=node.clip, groups=int(a.groups))


def _float_dense(node: patterns.ConvNode) -> FloatConv:
    """A fully connected layer (matmul by W [K, O]) as a 1x1 conv: weight [O, K, 1, 1]."""
    # no copies: a transposed view (a 25088 x 4096 float32 weight is 400 MB, and every
    # pass over the composites parses it again); reshape only appends unit axes
    w = patterns.const_value(node.weight).astype(np.float32, copy=False)
    k, o = w.shape
    w = w.T.reshape(o, k, 1, 1)
    b = (patterns.const_value(node.bias).reshape(-1).astype(np.float32, copy=False)
         if node.bias is not None else np.zeros(o, np.float32))
    return FloatConv(weight=w, bias=b, stride=(1, 1), pads=(0, 0, 0, 0), relu=node.relu,
                     clip=node.clip)


def _nchw(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A fully connected layer's (N, K) tensor as the (N, K, 1, 1) image it has the
    memory layout of."""
    return (*shape, 1, 1) if len(shape) == 2 else shape


def pool_spec(call: relax.Call) -> PoolSpec:
    """The PoolSpec of a Relax pooling call (max/avg pool2d, mean over H,W, adaptive 1x1)."""
    op = patterns._op_name(call)
    a = call.attrs
    if op in ("relax.mean", "relax.nn.adaptive_avg_pool2d"):
        return PoolSpec(kind="avg", global_pool=True)
    pad = _ints(a.padding)
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    return PoolSpec(kind="max" if op == "relax.nn.max_pool2d" else "avg",
                    kernel=_ints(a.pool_size), stride=_ints(a.strides), pads=pad,
                    ceil_mode=bool(a.ceil_mode), count_include_pad=bool(a.count_include_pad))


def parse_composite(func: relax.Function) -> FloatChain:
    """Describe a ``zynq_squeeze.*`` composite function in float terms."""
    bindings = {}
    for block in func.body.blocks:
        for b in block.bindings:
            bindings[b.var] = b.value
    lookup = bindings.get
    root = patterns._deref(func.body.body, lookup)
    pool = None
    if patterns._op_name(root) in patterns.POOL_OPS:
        pool = pool_spec(root)
        root = patterns._deref(root.args[0], lookup)
    name = str(func.attrs["Composite"])
    add = patterns.parse_conv_add(root, lookup) if name == patterns.CONV_ADD else None
    if add is not None:  # residual add: the conv's activation comes after the add
        params = list(func.params)
        data = patterns._deref(add.conv.data, lookup)
        bypass = patterns._deref(add.bypass, lookup)
        if not (any(data.same_as(p) for p in params) and any(bypass.same_as(p) for p in params)):
            raise ValueError(f"composite {name}: the residual add's operands are not its "
                             "parameters")
        i_in = next(i for i, p in enumerate(params) if data.same_as(p))
        i_bp = next(i for i, p in enumerate(params) if bypass.same_as(p))
        return FloatChain(name, "conv_add", _ints(params[i_in].ty.shape),
                          _ints(func.body.body.ty.shape), [_float_conv(add.conv)], None,
                          in_param=i_in, bypass_param=i_bp)
    in_shape = _ints(func.params[0].ty.shape)
    out_shape = _ints(func.ret_ty.shape) if hasattr(func, "ret_ty") else _ints(
        func.body.body.ty.shape)
    if pool is not None and any(root.same_as(p) for p in func.params):
        return FloatChain(name, "pool", in_shape, out_shape, [], pool)
    if patterns._op_name(root) == "relax.concat" and name == patterns.CONCAT:
        parts = tuple(_ints(p.ty.shape)[1] for p in patterns.concat_parts(root, lookup))
        return FloatChain(name, "concat", out_shape, out_shape, [], None, parts)
    fire = patterns.parse_fire(root, lookup)
    if fire is not None:
        convs = [_float_conv(fire.squeeze), _float_conv(fire.expand1), _float_conv(fire.expand3)]
        return FloatChain(name, "fire", in_shape, out_shape, convs, pool)
    node = patterns.parse_conv(root, lookup)
    if node is not None:
        return FloatChain(name, "conv", in_shape, out_shape, [_float_conv(node)], pool)
    node = patterns.parse_dense(root, lookup)
    if node is not None and pool is None:
        return FloatChain(name, "conv", _nchw(in_shape), _nchw(out_shape),
                          [_float_dense(node)], None)
    raise ValueError(f"composite {name} is neither a conv chain, a fire module, a fully "
                     "connected layer, a pool nor a concat")


# --------------------------------------------------------------------------- float numpy
def conv2d_float(x: np.ndarray, c: FloatConv) -> np.ndarray:
    """float32 conv of one (C,H,W) image, with bias and optional ReLU."""
    t, l, b, r = c.pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r)))
    o, i, kh, kw = c.weight.shape
    g = c.groups
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::c.stride[0], ::c.stride[1]]
    # win: C, OH, OW, KH, KW -> per group (OH*OW, I*KH*KW) @ (I*KH*KW, O/g)
    oh, ow = win.shape[1], win.shape[2]
    cols = win.reshape(g, i, oh, ow, kh, kw).transpose(0, 2, 3, 1, 4, 5).reshape(
        g, oh * ow, i * kh * kw)
    y = cols @ c.weight.reshape(g, o // g, -1).transpose(0, 2, 1)  # (g, OH*OW, O/g)
    y = y.transpose(0, 2, 1).reshape(o, oh, ow) + c.bias.reshape(o, 1, 1)
    return _activate(y, c)


def pool_float(x: np.ndarray, p: PoolSpec) -> np.ndarray:
    """float pool of one (C,H,W) image with ONNX/TVM semantics (ceil mode, pad counting)."""
    if p.global_pool:
        return x.mean(axis=(1, 2), keepdims=True)
    c, h, w = x.shape
    oh, ow = p.out_hw(h, w)
    (kh, kw), (sh, sw) = p.kernel, p.stride
    t, l, b, r = p.pads
    # Extend the bottom/right so every ceil-mode window is in range; mark validity.
    eh = max((oh - 1) * sh + kh - (h + t), b)
    ew = max((ow - 1) * sw + kw - (w + l), r)
    fill = -np.inf if p.kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (t, eh), (l, ew)), constant_values=fill)
    win = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :oh, :ow]
    if p.kind == "max":
        return win.max(axis=(3, 4))
    s = win.sum(axis=(3, 4))
    # Divisor: valid input positions, or input + explicit padding (never ceil overhang).
    valid = np.pad(np.ones((h, w)), ((t, eh), (l, ew)))
    if p.count_include_pad:
        valid = np.pad(np.ones((h + t + b, w + l + r)), ((0, eh - b), (0, ew - r)))
    cnt = sliding_window_view(valid, (kh, kw))[::sh, ::sw][:oh, :ow].sum(axis=(2, 3))
    return s / cnt


def _activate(y: np.ndarray, c: FloatConv) -> np.ndarray:
    if c.clip is not None:
        return np.clip(y, 0, np.float32(c.clip))
    return np.maximum(y, 0) if c.relu else y


def eval_chain(chain: FloatChain, x: np.ndarray, bypass: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
    """Run one composite on a (C,H,W) float image: outputs ``mid`` (fire squeeze),
    ``pre_pool`` (conv/concat output) and ``out``. A standalone pool's ``pre_pool`` is its
    input; a concat's ``x`` is its output (the parts are its channel ranges); a residual
    add's ``pre_pool`` is the sum after its activation (``bypass``: its other operand)."""
    res = {}
    x = x.reshape(chain.in_shape[1:])  # a fully connected layer's (K,) is (K, 1, 1)
    if chain.kind == "conv_add":
        c = chain.convs[0]
        lin = FloatConv(c.weight, c.bias, c.stride, c.pads, relu=False)
        y = _activate(conv2d_float(x, lin) + bypass.reshape(chain.out_shape[1:]), c)
        res["pre_pool"] = res["out"] = y
        return res
    if chain.kind in ("pool", "concat"):
        y = x
    elif chain.kind == "fire":
        sq = conv2d_float(x, chain.convs[0])
        res["mid"] = sq
        y = np.concatenate([conv2d_float(sq, chain.convs[1]), conv2d_float(sq, chain.convs[2])])
    else:
        y = conv2d_float(x, chain.convs[0])
    res["pre_pool"] = y
    res["out"] = pool_float(y, chain.pool) if chain.pool is not None else y
    return res
