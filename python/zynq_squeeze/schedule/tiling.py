"""Default tiler: choose a legal :class:`TileSchedule` per layer for an EngineConfig.

Search (deterministic): input-channel tiles from the full depth downward (full depth is
preferred: any legal full-depth candidate wins over split ones), output-channel tiles
from the full count down by halving (rounded up to the MAC array's ``pe_oc``), and for
each pair the largest spatial tile that fits (full output width first, then narrower),
balanced so the tiles of an axis differ by at most one row/column. Among the legal
candidates the one with the fewest modeled cycles wins (then fewer DDR bytes).
If nothing fits, :class:`~zynq_squeeze.errors.ScheduleError` names the overflowing buffer
of the smallest possible tile.
"""
from __future__ import annotations

from ..engine.config import EngineConfig, TileSchedule
from ..engine.descriptor import make_descriptor
from ..quantize.layers import ConvLayer, FireLayer
from .cycle_model import check_fits, descriptor_cost, fits


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _balanced(n: int, t: int) -> int:
    return _cdiv(n, _cdiv(n, t))


def _channel_candidates(n: int, align: int, limit: int = 6) -> list[int]:
    out: list[int] = []
    k = 1
    while len(out) < limit:
        v = _cdiv(n, k)
        if v > align:
            v = _cdiv(v, align) * align
        v = min(v, n)
        if not out or v < out[-1]:
            out.append(v)
        if v == 1:
            break
        k *= 2
    return out


def _largest(lo: int, hi: int, ok) -> int | None:
    """Largest v in [lo, hi] with ok(v), assuming ok is monotone decreasing."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _spatial(layer, toc, tic, cfg, order) -> list[TileSchedule]:
    _, oh, ow = layer.out_shape

    def mk(th, tw):
        return TileSchedule(toc=toc, tic=tic, th=th, tw=tw, loop_order=order)

    def ok(s):
        return fits(make_descriptor(layer, s), cfg)

    out = []
    th = _largest(1, oh, lambda v: ok(mk(v, ow)))
    if th is not None:
        out.append(mk(_balanced(oh, th), ow))
        if th < oh:
            # a squarer alternative: half width, taller tile
            tw2 = _balanced(ow, _cdiv(ow, 2))
            th2 = _largest(1, oh, lambda v: ok(mk(v, tw2)))
            if th2 is not None and th2 > th:
                out.append(mk(_balanced(oh, th2), tw2))
    else:
        tw = _largest(1, ow, lambda v: ok(mk(1, v)))
        if tw is not None:
            out.append(mk(1, _balanced(ow, tw)))
    return [s for s in out if ok(s)]


def default_schedule(layer, cfg: EngineConfig) -> TileSchedule:
    """Best legal schedule of ``layer`` for ``cfg`` (see module doc)."""
    if isinstance(layer, ConvLayer):
        n_out = layer.conv.out_channels
        n_in = layer.conv.in_channels
        orders = ("spatial_outer", "oc_outer")
    elif isinstance(layer, FireLayer):
        n_out = max(layer.expand1.out_channels, layer.expand3.out_channels)
        n_in = layer.squeeze.in_channels
        orders = ("spatial_outer",)
    else:
        raise TypeError(f"not an accelerator layer: {type(layer).__name__}")
    # First the usual candidates; only when none fits, every halving down to 1 channel
    # (small boards with deep layers need tiny channel tiles).
    for tic_limit, toc_limit in ((8, 6), (64, 64)):
        best = None
        for tic in _channel_candidates(n_in, cfg.pe_ic, limit=tic_limit):
            cands = []
            for toc in _channel_candidates(n_out, cfg.pe_oc, limit=toc_limit):
                for order in orders:
                    cands += _spatial(layer, toc, tic, cfg, order)
            for s in cands:
                cost = descriptor_cost(make_descriptor(layer, s), cfg)
                key = (cost.cycles, cost.ddr_bytes)
                if best is None or key < best[0]:
                    best = (key, s)
            if best is not None:
                return best[1]
    # nothing fits: name the buffer that the smallest tile overflows
    smallest = TileSchedule(toc=1, tic=1, th=1, tw=1)
    check_fits(make_descriptor(layer, smallest), cfg, getattr(layer, "name", "layer"))
    raise AssertionError("unreachable: smallest tile fits but no candidate found")
