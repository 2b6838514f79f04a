"""Tiles for the decoupled engine: what each tile needs of every buffer, and a default
choice per layer (docs/ENGINE.md).

Needs are in rows per bank (``DaeConfig`` depths). ``overflow`` names the first buffer a
tile does not fit; ``default_tile`` picks, among the tiles that fit, the one the fast
cycle model (``schedule.timing``) says is fastest, from a small candidate set (largest
output-channel tile whose weights fit, then spatial tiles from the whole plane down).
"""
from __future__ import annotations

from functools import lru_cache

from ..engine.dae_config import PE_IC, DaeConfig, DaeTile
from ..errors import ScheduleError
from ..quantize.layers import FireLayer, PoolLayer
from .instructions import (_pool_rows, cdiv, conv_tiles, engine_groups, groups,
                           needs_wide_requant, pool_channel_tile)
from .timing import layer_cycles
from .timing_bound import layer_cycles_bound


@lru_cache(maxsize=4096)
def _axis_extent(n_out: int, conv_n: int, pool, axis: int, t: int) -> int:
    """Conv rows (axis 0) or columns (1) of the largest of the tiles of ``t`` outputs that
    ``instructions.spatial_tiles`` cuts along that axis. The candidate search asks for
    every (toc, tic) x (th, tw): memoized per axis, as a tile walk costs O(n_out / t)."""
    return max(c1 - c0 for c0, c1 in (_pool_rows(o0, min(n_out, o0 + t), pool, conv_n, axis)
                                      for o0 in range(0, n_out, t)))


def _spatial_extent(layer, tile: DaeTile) -> tuple[int, int, int, int]:
    """(conv rows, conv cols, out rows, out cols) of the largest spatial tile."""
    _, oh, ow = layer.out_shape
    ch, cw = layer.conv_hw
    return (_axis_extent(oh, ch, layer.pool, 0, tile.th), _axis_extent(ow, cw, layer.pool, 1, tile.tw),
            min(tile.th, oh), min(tile.tw, ow))


def needs(cfg: DaeConfig, layer, tile: DaeTile) -> dict[str, int]:
    """Rows per bank each buffer needs for ``tile`` (worst tile of the layer)."""
    K, pe = cfg.k, cfg.pe_oc
    rows, cols, th, tw = _spatial_extent(layer, tile)
    pooled = layer.pool is not None
    if isinstance(layer, PoolLayer):
        # a standalone pool: the input tile in in_buf (pitch og), POOL into out_buf (an
        # average through acc); the POOL checks og against p_buf's depth like any POOL
        nog = cdiv(groups(pool_channel_tile(layer, tile, pe)), K)
        return {"in_buf": rows * cols * nog, "w_buf": 0, "p_buf": nog,
                "acc": th * tw * nog if layer.pool.kind == "avg" else 0,
                "cv_buf": 0, "sq_buf": 0, "out_buf": th * tw * nog, "bp_buf": 0}
    if isinstance(layer, FireLayer):
        sq, e1, e3 = layer.squeeze, layer.expand1, layer.expand3
        (_, tic), (toc1, _), (toc3, _) = conv_tiles(layer, tile, pe)
        kh, kw = sq.kernel
        sy, sx = sq.stride
        hr, hc = rows + 2, cols + 2
        ng = groups(min(tic, sq.in_channels))
        nog_s = cdiv(sq.out_channels, pe)
        sq_ng = groups(sq.out_channels)
        pitch_all = cdiv(e1.out_channels, pe) + cdiv(e3.out_channels, pe)
        nog_e = max(cdiv(min(toc1, e1.out_channels), pe), cdiv(min(toc3, e3.out_channels), pe))
        return {
            "in_buf": ((hr - 1) * sy + kh) * ((hc - 1) * sx + kw) * cdiv(ng, K),
            "w_buf": max(nog_s * kh * kw * ng, cdiv(min(toc1, e1.out_channels), pe) * sq_ng,
                         cdiv(min(toc3, e3.out_channels), pe) * 9 * sq_ng),
            "p_buf": max(nog_s, nog_e, pitch_all if pooled else 0),
            "acc": max(hr * hc * nog_s, rows * cols * nog_e,
                       th * tw * pitch_all if pooled and layer.pool.kind == "avg" else 0),
            "cv_buf": rows * cols * pitch_all if pooled else 0,
            "sq_buf": hr * hc * nog_s,
            "out_buf": th * tw * pitch_all,
            "bp_buf": 0,
        }
    conv = layer.conv
    (toc, tic), = conv_tiles(layer, tile, pe)
    kh, kw = conv.kernel
    sy, sx = conv.stride
    n_grp = engine_groups(conv)
    ng = groups(min(tic, conv.in_channels // n_grp))
    nog = cdiv(min(toc, conv.out_channels // n_grp), pe)
    nog_all = n_grp * cdiv(conv.out_channels // n_grp, pe)  # every group's out_buf region
    # a depthwise step reads its oc tile's own input channels (ng words per pixel) and
    # has one weight word per channel and tap
    return {
        "in_buf": ((rows - 1) * sy + kh) * ((cols - 1) * sx + kw) * cdiv(ng, K),
        "w_buf": nog * kh * kw * (1 if conv.depthwise else ng),
        "p_buf": nog,
        "acc": max(rows * cols * nog,
                   th * tw * nog if pooled and layer.pool.kind == "avg" else 0),
        "cv_buf": rows * cols * nog if pooled else 0,
        "sq_buf": 0,
        "out_buf": th * tw * nog_all,
        # residual add: the bypass of one oc tile, in the accumulators' row order
        "bp_buf": rows * cols * nog if layer.kind == "conv_add" else 0,
    }


def capacity(cfg: DaeConfig) -> dict[str, int]:
    return {"in_buf": cfg.in_rows, "w_buf": cfg.w_rows, "p_buf": cfg.p_rows,
            "acc": cfg.acc_rows, "cv_buf": cfg.cv_rows, "sq_buf": cfg.sq_rows,
            "out_buf": cfg.out_rows, "bp_buf": cfg.bp_rows}


def overflow(cfg: DaeConfig, layer, tile: DaeTile) -> str | None:
    """The first buffer ``tile`` overflows ("in_buf: needs 2300 rows, has 2048"), or None."""
    if layer.kind == "conv_add" and not cfg.residual:
        return "the engine is built without the residual add (DaeConfig.residual)"
    if not cfg.wide_rq and needs_wide_requant([layer]):
        return ("the engine is built without the wide requantization multiplier "
                "(DaeConfig.wide_rq)")
    cap = capacity(cfg)
    for name, n in needs(cfg, layer, tile).items():
        if n > cap[name]:
            return f"{name}: needs {n} rows per bank, has {cap[name]}"
    if layer.pool is not None and layer.pool.global_pool:
        _, oh, ow = layer.out_shape
        if tile.th < oh or tile.tw < ow:
            return "global pool: the tile must cover the whole plane"
    return None


def _halvings(n: int, unit: int) -> list[int]:
    """n, then n/2, n/4, ... rounded up to multiples of ``unit`` (at least one unit)."""
    out, k = [], 1
    while True:
        v = min(n, cdiv(cdiv(n, k), unit) * unit)
        if not out or v < out[-1]:
            out.append(v)
        if v <= unit:
            return out
        k *= 2


def candidates(cfg: DaeConfig, layer) -> list[DaeTile]:
    """Tiles that fit, largest first (output-channel tile, then rows, then columns)."""
    pe = cfg.pe_oc
    _, oh, ow = layer.out_shape
    dw = False
    if isinstance(layer, PoolLayer):  # channel tiles only: tic is unused
        oc = ic = layer.in_shape[0]
        tics = [ic]
    else:
        convs = [layer.expand1, layer.expand3] if isinstance(layer, FireLayer) else [layer.conv]
        n_grp = 1 if isinstance(layer, FireLayer) else engine_groups(layer.conv)
        oc = max(c.out_channels for c in convs) // n_grp  # per conv group
        ic = (layer.squeeze.in_channels if isinstance(layer, FireLayer)
              else layer.conv.in_channels) // n_grp
        # a depthwise conv has no input-channel step (its tiles' tic is the oc tile)
        dw = not isinstance(layer, FireLayer) and layer.conv.depthwise
        tics = [ic] if dw else _halvings(ic, PE_IC)
    tocs = _halvings(oc, pe)
    if not isinstance(layer, (FireLayer, PoolLayer)):
        # for each input-channel step, the largest oc tile whose weight block still fits
        # w_buf (a whole-depth step keeps the input's DDR rows contiguous: row bursts)
        kh, kw = layer.conv.kernel
        for tic in tics:
            nog = cfg.w_rows // (kh * kw * (1 if dw else groups(tic)))
            if nog >= 1:
                tocs.append(min(oc, nog * pe))
        tocs = sorted(set(tocs), reverse=True)
    ths = sorted({cdiv(oh, n) for n in range(1, oh + 1)}, reverse=True)
    tws = sorted({cdiv(ow, n) for n in range(1, ow + 1)}, reverse=True)
    out = []
    for toc in tocs:
        for tic in tics:
            for tw in tws[:4]:
                for th in ths:
                    t = DaeTile(toc, tic, th, tw)
                    if overflow(cfg, layer, t) is None:
                        out.append(t)
                        break  # largest th that fits for this (toc, tic, tw)
    return out


def _fitting(cfg: DaeConfig, layer) -> list[DaeTile]:
    cands = candidates(cfg, layer)
    if not cands:
        _, _, ow = layer.out_shape
        smallest = DaeTile(cfg.pe_oc, PE_IC, 1, 1 if not (layer.pool and layer.pool.global_pool)
                           else ow)
        why = overflow(cfg, layer, smallest) or "no candidate"
        raise ScheduleError(f"{layer.name}: no tile fits the engine ({why})")
    return cands


def largest_tile(cfg: DaeConfig, layer) -> DaeTile:
    """The first candidate: largest output-channel tile, input step, then spatial tile."""
    return _fitting(cfg, layer)[0]


def fastest(cands: list[DaeTile], cost, bound, tie=lambda t: (-t.toc, -t.th * t.tw)
            ) -> tuple[DaeTile, int]:
    """The candidate minimising ``(cost(t), tie(t))``, and how many ``cost`` calls found it.

    ``bound(t) <= cost(t)`` for every t (a cheap lower bound): candidates are costed in
    increasing order of bound (then list order) and the search stops at the first whose
    bound exceeds the best cost so far -- no later candidate can reach it, nor tie -- so
    the answer is the exhaustive search's."""
    order = sorted(range(len(cands)), key=lambda i: (bound(cands[i]), i))
    best, best_key, evaluated = None, None, 0
    for i in order:
        t = cands[i]
        if best_key is not None and bound(t) > best_key[0]:
            break
        key = (cost(t), *tie(t))
        evaluated += 1
        if best_key is None or key < best_key:
            best, best_key = t, key
    return best, evaluated


def default_tile(cfg: DaeConfig, layer, cost=None, beat_x100: int = 100) -> DaeTile:
    """The fastest fitting candidate by ``cost(tile) -> cycles``; by default the fast
    cycle model's cycles of the layer run alone (``timing.layer_cycles`` at
    ``beat_x100``), pruned by ``timing_bound.layer_cycles_bound`` (same answer as timing
    every candidate, without lowering the slow ones). Ties go to the larger tile. Raises
    ScheduleError naming the buffer when nothing fits."""
    cands = _fitting(cfg, layer)
    if cost is not None:
        return min(cands, key=lambda t: (cost(t), -t.toc, -t.th * t.tw))
    best, _ = fastest(cands, lambda t: layer_cycles(cfg, layer, t, beat_x100),
                      lambda t: layer_cycles_bound(cfg, layer, t, beat_x100))
    return best
