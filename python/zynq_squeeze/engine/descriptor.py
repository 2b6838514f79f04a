"""Layer descriptors: the Python mirror of ``zsq_layer_t`` (src/zsq_types.h).

A descriptor is 80 little-endian int32 words. :data:`FIELDS` lists the named words in
order; conv slots (3 x 13 words) follow, then reserved zeros. Descriptors are plain
dicts here (field name -> int, ``"conv"`` -> list of 3 slot dicts) so that the cycle
model can walk exactly what the engine walks.
"""
from __future__ import annotations

import numpy as np

from ..quantize.layers import ConvLayer, ConvParams, FireLayer, PoolSpec
from .config import TileSchedule

MAGIC = 0x4C51535A
VERSION = 1
KIND_CONV, KIND_FIRE = 1, 2
POOL_NONE, POOL_MAX, POOL_AVG = 0, 1, 2
ORDER = {"spatial_outer": 0, "oc_outer": 1}
LAYER_WORDS = 80
N_SLOTS = 3

FIELDS = (
    "magic", "version", "kind",
    "in_c", "in_h", "in_w", "in_off",
    "out_c", "out_h", "out_w", "out_off",
    "conv_h", "conv_w",
    "loop_order", "double_buffer",
    "toc", "tic", "th", "tw",
    "pool_kind", "pool_kh", "pool_kw", "pool_sh", "pool_sw",
    "pool_pt", "pool_pl", "pool_pb", "pool_pr",
    "pool_ceil", "pool_count_include_pad", "pool_global",
)
CONV_FIELDS = ("oc", "ic", "kh", "kw", "sh", "sw", "pt", "pl", "pb", "pr", "relu",
               "w_off", "p_off")
assert len(FIELDS) + N_SLOTS * len(CONV_FIELDS) <= LAYER_WORDS


def conv_slot(p: ConvParams | None, w_off: int = 0, p_off: int = 0) -> dict:
    if p is None:
        return {k: 0 for k in CONV_FIELDS}
    o, i, kh, kw = p.weight.shape
    t, l, b, r = p.pads
    return dict(oc=o, ic=i, kh=kh, kw=kw, sh=p.stride[0], sw=p.stride[1], pt=t, pl=l, pb=b,
                pr=r, relu=int(bool(p.relu)), w_off=w_off, p_off=p_off)


def layer_convs(layer) -> list[ConvParams]:
    """The conv slots of a layer: [conv] or [squeeze, expand1, expand3]."""
    if isinstance(layer, ConvLayer):
        return [layer.conv]
    if isinstance(layer, FireLayer):
        return [layer.squeeze, layer.expand1, layer.expand3]
    raise TypeError(f"not an accelerator layer: {type(layer).__name__}")


def slot_tiles(layer, sched: TileSchedule) -> list[tuple[int, int]]:
    """(toc, tic) each conv slot is tiled with (the weight packing block shape)."""
    convs = layer_convs(layer)
    if isinstance(layer, ConvLayer):
        c = convs[0]
        return [(min(sched.toc, c.out_channels), min(sched.tic, c.in_channels))]
    s, e1, e3 = convs
    S = s.out_channels
    return [(min(sched.toc, S), min(sched.tic, s.in_channels)),
            (min(sched.toc, e1.out_channels), S),
            (min(sched.toc, e3.out_channels), S)]


def make_descriptor(layer, sched: TileSchedule, in_off: int = 0, out_off: int = 0,
                    w_offs=(0, 0, 0), p_offs=(0, 0, 0)) -> dict:
    """Descriptor dict of ``layer`` tiled by ``sched`` (offsets default to 0)."""
    c, h, w = layer.in_shape
    oc, oh, ow = layer.out_shape
    ch, cw = layer.conv_hw
    d = {k: 0 for k in FIELDS}
    d.update(magic=MAGIC, version=VERSION,
             kind=KIND_CONV if isinstance(layer, ConvLayer) else KIND_FIRE,
             in_c=c, in_h=h, in_w=w, in_off=in_off, out_c=oc, out_h=oh, out_w=ow,
             out_off=out_off, conv_h=ch, conv_w=cw,
             loop_order=ORDER[sched.loop_order], double_buffer=int(bool(sched.double_buffer)),
             toc=sched.toc, tic=sched.tic, th=sched.th, tw=sched.tw)
    p: PoolSpec | None = layer.pool
    if p is not None:
        d.update(pool_kind=POOL_MAX if p.kind == "max" else POOL_AVG,
                 pool_global=int(bool(p.global_pool)),
                 pool_count_include_pad=int(bool(p.count_include_pad)))
        if not p.global_pool:
            d.update(pool_kh=p.kernel[0], pool_kw=p.kernel[1], pool_sh=p.stride[0],
                     pool_sw=p.stride[1], pool_pt=p.pads[0], pool_pl=p.pads[1],
                     pool_pb=p.pads[2], pool_pr=p.pads[3], pool_ceil=int(bool(p.ceil_mode)))
    convs = layer_convs(layer)
    d["conv"] = [conv_slot(convs[i] if i < len(convs) else None,
                           w_offs[i] if i < len(convs) else 0,
                           p_offs[i] if i < len(convs) else 0) for i in range(N_SLOTS)]
    return d


def pack_descriptor(d: dict) -> bytes:
    """80 little-endian int32 words of one descriptor."""
    words = [d[k] for k in FIELDS]
    for slot in d["conv"]:
        words += [slot[k] for k in CONV_FIELDS]
    words += [0] * (LAYER_WORDS - len(words))
    return np.asarray(words, dtype="<i4").tobytes()


def unpack_descriptor(b: bytes) -> dict:
    """Inverse of :func:`pack_descriptor`."""
    words = np.frombuffer(b, dtype="<i4").tolist()
    d = dict(zip(FIELDS, words[:len(FIELDS)]))
    n = len(CONV_FIELDS)
    base = len(FIELDS)
    d["conv"] = [dict(zip(CONV_FIELDS, words[base + i * n: base + (i + 1) * n]))
                 for i in range(N_SLOTS)]
    return d
