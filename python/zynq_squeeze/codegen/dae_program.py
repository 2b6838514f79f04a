"""The decoupled engine's program for a chain of layers: instruction words, packed weights
and params, and the activation arena (docs/ENGINE.md).

Layouts (64-bit little-endian words):

* activations: HWC, channels padded to groups of 8, one word per (pixel, group);
* a weight block (``schedule.instructions.conv_blocks``): ``[og][ky][kx][g][o]``, each word
  the 8 int8 weights of input channels ``8g..8g+7`` of output channel ``og*pe_oc + o``
  (zeros beyond the conv's channels); a depthwise block ``[og][ky][kx][o]``, each word
  channel ``og*pe_oc + o``'s tap in byte ``o % 8``;
* params: one word per output channel, ``bias | mult << 32 | shift << 54 | t << 60``
  (bias 32 bits, mult 22, shift 6, t 4); channels padded to pe_oc get the zero encoding
  (bias 0, mult 2**14, shift 40).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..engine.dae_config import PE_IC, DaeConfig, DaeTile
from ..partitioning import limits
from ..partitioning.limits import ACC_LIMIT
from ..quantize import requant
from ..quantize.layers import (ConvAddLayer, ConvLayer, FireLayer, PoolLayer, avg_requant,
                               avg_scales, pool_zero_points)
from ..quantize.reference import avg_constants, avg_zero_point_reason, conv_pre_shift, run_layer
from ..schedule.instructions import (Block, Tensor, groups, layer_convs, lower_layers,
                                     needs_wide_requant)



def check_conv_params(conv, name: str) -> None:
    """Validate one conv's integer parameters for the engine (no int32 overflow)."""
    w = np.asarray(conv.weight)
    if w.dtype != np.int8 or w.ndim != 4:
        raise ValueError(f"{name}: weight must be int8 [O, I, KH, KW], got {w.dtype} {w.shape}")
    o, i, kh, kw = w.shape
    for f in ("bias", "mult", "shift"):
        a = np.asarray(getattr(conv, f))
        if a.shape != (o,):
            raise ValueError(f"{name}: {f} must have shape ({o},), got {a.shape}")
    if not requant.valid_multiplier(conv.mult, conv.shift):
        raise ValueError(f"{name}: shift must be in [{requant.SHIFT_MIN}, {requant.WIDE_SHIFT_MAX}] "
                         f"and mult in [{requant.MULT_MIN}, {requant.WIDE_MULT_MAX}] "
                         "(the 22-bit requantization multiplier's ranges)")
    worst = requant.acc_bound(conv.bias, i * kh * kw)
    if np.any(worst > ACC_LIMIT):
        raise ValueError(f"{name}: bias + worst-case sum may overflow the int32 accumulator")
    if min(conv.pads) < 0 or min(conv.stride) < 1:
        raise ValueError(f"{name}: bad stride/pads {conv.stride} {conv.pads}")
    g = int(conv.groups)
    if g < 1 or o % g:
        raise ValueError(f"{name}: groups={g} does not divide {o} output channels")
    if g > 1 and not conv.depthwise and (i % PE_IC or (o // g) % PE_IC):
        raise ValueError(f"{name}: grouped conv with {i} input / {o // g} output channels per "
                         "group: the engine needs depthwise (1 / 1) or multiples of 8")


def check_layer(layer) -> None:
    """Raise ValueError when ``layer`` is outside what the engine executes."""
    name = getattr(layer, "name", "layer")
    for k, c in enumerate(layer_convs(layer)):
        check_conv_params(c, f"{name}.conv{k}")
        if (max(c.kernel) > limits.MAX_KERNEL_FIELD or max(c.stride) > limits.MAX_STRIDE_FIELD
                or max(c.pads) > limits.MAX_PAD):
            raise ValueError(f"{name}: kernel above {limits.MAX_KERNEL_FIELD}, stride above "
                             f"{limits.MAX_STRIDE_FIELD} or pad above {limits.MAX_PAD} unsupported")
    if isinstance(layer, FireLayer):
        if any(c.groups != 1 for c in layer_convs(layer)):
            raise ValueError(f"{name}: a fire module's convolutions are not grouped")
        s = layer.squeeze.out_channels
        e1, e3 = layer.expand1, layer.expand3
        if e1.kernel != (1, 1) or e1.stride != (1, 1) or tuple(e1.pads) != (0, 0, 0, 0):
            raise ValueError(f"{name}: expand1 must be 1x1, stride 1, no padding")
        if e3.kernel != (3, 3) or e3.stride != (1, 1) or tuple(e3.pads) != (1, 1, 1, 1):
            raise ValueError(f"{name}: expand3 must be 3x3, stride 1, padding 1")
        if e1.in_channels != s or e3.in_channels != s:
            raise ValueError(f"{name}: expand input channels must equal squeeze outputs {s}")
        if e1.out_channels % PE_IC:
            raise ValueError(f"{name}: expand1 channels must be a multiple of 8 (the concat "
                             "is a channel-group offset)")
    if isinstance(layer, ConvAddLayer):
        if layer.pool is not None:
            raise ValueError(f"{name}: a residual add layer cannot pool")
        if not requant.valid_multiplier(layer.bp_mult, layer.bp_shift):
            raise ValueError(f"{name}: bypass multiplier ({layer.bp_mult}, {layer.bp_shift}) "
                             "outside the requantization ranges")
    if not isinstance(layer, PoolLayer) and layer.in_shape[0] != layer_convs(layer)[0].in_channels:
        raise ValueError(f"{name}: in_shape channels != conv input channels")
    p = layer.pool
    if p is not None and not p.global_pool:
        kh, kw = p.kernel
        t, l, b, r = p.pads
        if not (0 <= t < kh and 0 <= b < kh and 0 <= l < kw and 0 <= r < kw):
            raise ValueError(f"{name}: pool pads must be in [0, kernel)")
        if min(p.stride) < 1 or max(p.kernel) > 64 or max(p.stride) > 64:
            raise ValueError(f"{name}: unsupported pool window/stride")
    if p is not None and p.kind == "avg":
        try:  # a constant multiplier per window divisor, the divisors small enough
            consts = avg_constants(p, *layer.conv_hw, avg_requant(layer), avg_scales(layer))
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        for m, s in consts.values():
            if not requant.valid_multiplier(m, s):
                raise ValueError(f"{name}: average multiplier ({m}, {s}) is "
                                 "outside the requantization lane's range")
        zp_in = pool_zero_points(layer)[0]
        why = avg_zero_point_reason(p, *layer.conv_hw) if zp_in else None
        if why is not None:
            raise ValueError(f"{name}: average pool of a tensor with zero point {zp_in}: {why}")
    _check_zero_points(layer, name)
    layer.out_shape  # raises for empty outputs


def _check_zero_points(layer, name: str) -> None:
    """Zero points are int8 (LI_PAD, RQ_ZP_OUT, RQ_BP_ZP); a fire's expands read the
    squeeze's and share one output zero point; a max pool keeps its input's."""
    convs = layer_convs(layer)
    zps = [z for c in convs for z in (c.zp_in, c.zp_out)]
    zps += [layer.bp_zp] if isinstance(layer, ConvAddLayer) else []
    zps += [layer.zp_in, layer.zp_out] if isinstance(layer, PoolLayer) else []
    if any(not -128 <= int(z) <= 127 for z in zps):
        raise ValueError(f"{name}: zero points {zps} outside int8")
    if isinstance(layer, FireLayer):
        sq, e1, e3 = convs
        if not (e1.zp_in == e3.zp_in == sq.zp_out and e1.zp_out == e3.zp_out):
            raise ValueError(f"{name}: the expands must read the squeeze's zero point and "
                             "share one output zero point")
    if layer.pool is not None and layer.pool.kind == "max":
        zi, zo = pool_zero_points(layer)
        if zi != zo:
            raise ValueError(f"{name}: a max pool keeps its input's zero point")



def pack_tensor(x: np.ndarray) -> np.ndarray:
    """int8 (C, H, W) -> uint64 words HWC with channels padded to groups of 8."""
    c, h, w = x.shape
    g = groups(c)
    buf = np.zeros((h, w, g * PE_IC), dtype=np.int8)
    buf[:, :, :c] = np.asarray(x, dtype=np.int8).transpose(1, 2, 0)
    return buf.reshape(-1).view(np.uint64).copy()


def unpack_tensor(words: np.ndarray, c: int, h: int, w: int) -> np.ndarray:
    """uint64 HWC words -> int8 (C, H, W)."""
    g = groups(c)
    b = np.asarray(words, dtype=np.uint64)[:h * w * g].view(np.int8).reshape(h, w, g * PE_IC)
    return np.ascontiguousarray(b[:, :, :c].transpose(2, 0, 1))


def pack_dw_block(weight: np.ndarray, b: Block, pe_oc: int) -> np.ndarray:
    """One depthwise weight block as uint64 words ``[og][ky][kx][o]``: the word of MAC row
    ``o`` holds channel ``oc0 + og*pe_oc + o``'s tap in byte ``o % 8`` and zeros elsewhere
    (row o multiplies it with the 8 channels of its own activation word, docs/ENGINE.md)."""
    _, _, kh, kw = weight.shape
    blk = np.zeros((b.nog * pe_oc, kh, kw, PE_IC), dtype=np.int8)
    ch = np.arange(b.oc_n)
    blk[ch, :, :, ch % PE_IC] = np.asarray(weight, dtype=np.int8)[b.oc0:b.oc0 + b.oc_n, 0]
    blk = blk.reshape(b.nog, pe_oc, kh, kw, PE_IC).transpose(0, 2, 3, 1, 4)
    return np.ascontiguousarray(blk).reshape(-1).view(np.uint64)


def pack_block(weight: np.ndarray, b: Block, pe_oc: int) -> np.ndarray:
    """One weight block as uint64 words ``[og][ky][kx][g][o]`` (of a grouped conv: the
    block's input channels are weight columns ``ic0 - ic_base ...``)."""
    o, i, kh, kw = weight.shape
    blk = np.zeros((b.nog * pe_oc, kh, kw, b.ng * PE_IC), dtype=np.int8)
    c0 = b.ic0 - b.ic_base
    blk[:b.oc_n, :, :, :b.ic_n] = np.asarray(weight, dtype=np.int8)[
        b.oc0:b.oc0 + b.oc_n, c0:c0 + b.ic_n].transpose(0, 2, 3, 1)
    # [og*pe_oc + o][ky][kx][g*8 + c] -> [og][ky][kx][g][o][c]
    blk = blk.reshape(b.nog, pe_oc, kh, kw, b.ng, PE_IC).transpose(0, 2, 3, 4, 1, 5)
    return np.ascontiguousarray(blk).reshape(-1).view(np.uint64)


def pack_params(conv, oc0: int, oc_n: int, pe_oc: int) -> np.ndarray:
    """Params words of output channels ``[oc0, oc0 + oc_n)``, padded to pe_oc."""
    n = -(-oc_n // pe_oc) * pe_oc
    bias = np.zeros(n, dtype=np.int64)
    mult = np.full(n, requant.ZERO_ENCODING[0], dtype=np.int64)
    shift = np.full(n, requant.ZERO_ENCODING[1], dtype=np.int64)
    pre = np.zeros(n, dtype=np.int64)
    sl = slice(oc0, oc0 + oc_n)
    bias[:oc_n] = np.asarray(conv.bias, dtype=np.int64)[sl]
    mult[:oc_n] = np.asarray(conv.mult, dtype=np.int64)[sl]
    shift[:oc_n] = np.asarray(conv.shift, dtype=np.int64)[sl]
    pre[:oc_n] = conv_pre_shift(conv).astype(np.int64)[sl]
    w = ((bias & 0xFFFFFFFF) | (mult << 32) | (shift << (32 + requant.PARAM_MULT_BITS))
         | (pre << (38 + requant.PARAM_MULT_BITS)))
    return w.astype(np.uint64)


@dataclass
class DaeProgram:
    """Everything the engine executes for one offloaded function: instruction words,
    packed weights and params, and where each tensor lives in the arena (word offsets)."""

    cfg: DaeConfig
    layers: list                      # (Layer, input id, output id)
    tiles: list[DaeTile]
    words: np.ndarray                 # uint64 instructions
    weights: np.ndarray               # uint64 weights + params
    tensors: dict                     # id -> Tensor (arena placement, word offsets)
    inputs: list
    outputs: list
    arena_words: int
    layer_ends: list[int] = field(default_factory=list)  # index of each layer's last word
    views: dict = field(default_factory=dict)  # concat parts in place: id -> (root, offset)

    @property
    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> Tensor:
        return self.tensors[self.outputs[-1]]

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer, _, _ in self.layers)


WORD_ALIGN = 8  # tensors start on 64-byte boundaries (one AXI burst line)


def _allocate(layers, shapes: dict, inputs, outputs, views: dict | None = None
              ) -> tuple[dict, int]:
    """First-fit arena allocation (words) over tensor liveness intervals [def, last use];
    a layer's input and output are both live at the layer, so they never overlap (unless
    both are views of one concat tensor: disjoint channel groups of it). A tensor no
    layer reads lives to the end like an output: zsq_rt_validate's lifetime check
    (hls_runtime/zsq_runtime.c) cannot tell it from one and refuses a later tensor on its
    words. A view (``views``: id -> (root, channel offset)) is placed with its root, which
    lives from its first part's write to its last reader."""
    views = views or {}

    def root(t):
        return views[t][0] if t in views else t

    n = len(layers)
    first, last = {}, {}
    for t in inputs:
        first[t] = -1
    for i, (layer, ti, to) in enumerate(layers):
        first.setdefault(root(to), i)
        for t in layer_reads(layer, ti):  # a residual add's bypass stays live until read
            last[root(t)] = max(last.get(root(t), i), i)
    outputs = {root(t) for t in outputs}
    for t in first:
        if t not in last or t in outputs:
            last[t] = n
    placed: list[tuple[int, int, int, int]] = []
    offsets = {}
    for t in sorted(first, key=lambda t: (first[t], str(t))):
        c, h, w = shapes[t]
        size = -(-h * w * groups(c) // WORD_ALIGN) * WORD_ALIGN
        lo, hi = first[t], last.get(t, first[t])
        busy = sorted((o, e) for o, e, f, l in placed if not (l < lo or f > hi))
        off = 0
        for o, e in busy:
            if off + size <= o:
                break
            off = max(off, e)
        offsets[t] = off
        placed.append((off, off + size, lo, hi))
    return offsets, max(WORD_ALIGN, max((e for _, e, _, _ in placed), default=0))


def _check_views(shapes: dict, views: dict, inputs: list, outputs: list) -> None:
    """Every view is a whole number of channel groups inside a root of its plane size."""
    for t, (r, off) in views.items():
        if t not in shapes or r not in shapes or r in views:
            raise ValueError(f"view {t!r} of {r!r}: unknown tensor or nested view")
        if t in inputs or t in outputs:
            raise ValueError(f"view {t!r}: a function input or output must be a whole tensor")
        (c, h, w), (rc, rh, rw) = shapes[t], shapes[r]
        if off % PE_IC or off < 0 or off + c > rc or (h, w) != (rh, rw) \
                or (c % PE_IC and off + c != rc):
            raise ValueError(f"view {t!r}: channels [{off}, {off + c}) of {r!r} {shapes[r]} "
                             "are not whole channel groups inside it")


def _check_graph(layers, shapes: dict, inputs: list, outputs: list,
                 views: dict | None = None) -> None:
    """Every layer valid for the engine, every tensor produced once before use (a view:
    its channel groups of its root written once, all of them before it is read)."""
    views = views or {}
    _check_views(shapes, views, inputs, outputs)
    written: dict = {}  # root -> channel groups written

    def span(t):
        r, off = views.get(t, (t, 0))
        return r, set(range(off // PE_IC, off // PE_IC + groups(shapes[t][0])))

    def produced(t):
        r, g = span(t)
        return g <= written.get(r, set())

    for t in inputs:
        if t in shapes:
            r, g = span(t)
            written.setdefault(r, set()).update(g)
    for layer, ti, to in layers:
        if not isinstance(layer, (ConvLayer, FireLayer, PoolLayer)):
            raise TypeError(f"not an accelerator layer: {type(layer).__name__}")
        check_layer(layer)
        if ti not in shapes or to not in shapes:
            raise ValueError(f"{layer.name}: unknown tensor {ti!r} or {to!r}")
        if not produced(ti):
            raise ValueError(f"{layer.name}: input tensor {ti!r} is not produced before use")
        if isinstance(layer, ConvAddLayer):
            bp = layer.bypass
            if bp not in shapes or not produced(bp):
                raise ValueError(f"{layer.name}: bypass tensor {bp!r} is not produced before use")
            if shapes[bp] != tuple(layer.out_shape) or layer.pool is not None:
                raise ValueError(f"{layer.name}: bypass {bp!r} {shapes[bp]} != out_shape "
                                 f"{layer.out_shape} (or the layer pools)")
        if shapes[ti] != tuple(layer.in_shape):
            raise ValueError(f"{layer.name}: tensor {ti!r} {shapes[ti]} != in_shape {layer.in_shape}")
        if shapes[to] != tuple(layer.out_shape):
            raise ValueError(f"{layer.name}: tensor {to!r} {shapes[to]} != out_shape {layer.out_shape}")
        r, g = span(to)
        if (ti == to or g & written.get(r, set())) and not in_place_copy(layer, span(ti),
                                                                         (r, g)):
            raise ValueError(f"{layer.name}: tensor {to!r} written twice or in place")
        written.setdefault(r, set()).update(g)
    for t in outputs:
        if not produced(t):
            raise ValueError(f"output tensor {t!r} is never produced")


def in_place_copy(layer, src_span, dst_span) -> bool:
    """True for a 1x1 stride-1 unpadded pool whose output is its input's words (the same
    root and channel groups): a requantization in place (``lower._requantize_parts``).
    Safe in the engine whatever order its modules run tiles in (the load module runs up to
    two tiles ahead of the store, ping-pong buffers): each output word is computed from
    the input word at the same address alone, and the tiles partition the words (spatial
    tiles disjoint, no halo at 1x1 stride 1; channel tiles whole pe_oc groups,
    ``pool_channel_tile``), so a tile's STORE writes only words its own LOAD_INPUT read,
    after that read, and no other tile's LOAD_INPUT reads them."""
    return (isinstance(layer, PoolLayer) and not layer.pool.global_pool
            and tuple(layer.pool.kernel) == (1, 1) and tuple(layer.pool.stride) == (1, 1)
            and not any(layer.pool.pads) and src_span == dst_span)


def build_dae_program(cfg: DaeConfig, layers, tiles: list[DaeTile], tensors: dict | None = None,
                      inputs=None, outputs=None, views: dict | None = None) -> DaeProgram:
    """The program of ``layers``: a list of Layer (a chain: tensor k feeds layer k; a
    residual add's bypass is then an extra program input ``("bypass", k)`` after the
    first) or of ``(Layer, input id, output id)`` with ``tensors`` id -> (C, H, W) and the
    function's ``inputs``/``outputs`` ids; ``views``: concat parts stored in place, id ->
    (root id, channel offset) (``codegen.concat_plan``)."""
    views = dict(views or {})
    if layers and not isinstance(layers[0], tuple):
        chain = list(layers)
        layers = [(replace(layer, bypass=("bypass", k)) if isinstance(layer, ConvAddLayer)
                   else layer, k, k + 1) for k, layer in enumerate(chain)]
        tensors = {0: tuple(chain[0].in_shape), **{k + 1: tuple(l.out_shape)
                                                   for k, l in enumerate(chain)}}
        inputs, outputs = [0], [len(chain)]
        for layer, k, _ in layers:
            if isinstance(layer, ConvAddLayer):
                tensors[layer.bypass] = tuple(layer.out_shape)
                inputs.append(layer.bypass)
    layers = [tuple(x) for x in layers]
    if not cfg.wide_rq and needs_wide_requant([l for l, _, _ in layers]):
        raise ValueError("a layer's requantization multiplier needs the wide (22-bit) lane: "
                         "build the engine with DaeConfig.wide_rq")
    shapes = {k: tuple(int(d) for d in v) for k, v in tensors.items()}
    _check_graph(layers, shapes, list(inputs), list(outputs), views)
    if len(tiles) != len(layers):
        raise ValueError(f"{len(tiles)} tiles for {len(layers)} layers")
    offsets, arena = _allocate(layers, shapes, list(inputs), list(outputs), views)
    placed = {k: Tensor(offsets[k], *shapes[k]) for k in offsets}
    for t, (r, off) in views.items():
        if r in offsets:
            placed[t] = Tensor(offsets[r], *shapes[t], g0=off // PE_IC,
                               row_groups=groups(shapes[r][0]))
    words, placements, wwords, ends = lower_layers(
        cfg, [l for l, _, _ in layers], tiles,
        [tuple(placed[t] for t in (ti, to, *layer_reads(l, ti)[1:])) for l, ti, to in layers])
    wgt = np.zeros(max(1, wwords), dtype=np.uint64)
    for (layer, _, _), pl in zip(layers, placements):
        for conv, blocks, params in zip(layer_convs(layer), pl.conv_blocks, pl.conv_params):
            pack = pack_dw_block if conv.depthwise else pack_block
            for addr, b in blocks:
                wgt[addr:addr + b.words] = pack(conv.weight, b, cfg.pe_oc)
            for addr, oc0, oc_n in params:
                p = pack_params(conv, oc0, oc_n, cfg.pe_oc)
                wgt[addr:addr + len(p)] = p
    return DaeProgram(cfg, layers, list(tiles), np.asarray(words, dtype=np.uint64), wgt,
                      placed, list(inputs), list(outputs), arena, ends, views)


def layer_reads(layer, src) -> list:
    """The tensors ``layer`` reads: its input ``src``, and a residual add's bypass."""
    return [src, layer.bypass] if isinstance(layer, ConvAddLayer) else [src]


def run_graph(layers, inputs: dict) -> dict:
    """The numpy integer reference of ``(layer, input id, output id)`` layers on int8
    ``inputs`` (id -> (C, H, W)); returns every tensor by id."""
    vals = dict(inputs)
    for layer, ti, to in layers:
        vals[to] = run_layer(layer, *(vals[t] for t in layer_reads(layer, ti)))
    return vals


def reference_chain(layers, x: np.ndarray) -> np.ndarray:
    """The numpy integer reference of a chain (for tests and tools)."""
    for layer in layers:
        x = run_layer(layer, x)
    return x


__all__ = ["DaeProgram", "FireLayer", "build_dae_program", "layer_reads", "pack_block",
           "pack_dw_block", "pack_params", "pack_tensor", "reference_chain", "unpack_tensor"]
