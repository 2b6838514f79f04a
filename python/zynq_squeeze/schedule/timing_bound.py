"""A closed-form lower bound on ``timing.layer_cycles`` for the tile search.

``layer_cycles`` lowers and replays every instruction of a layer: for a large layer with
a small tile (a 25088 -> 4096 fully connected layer in 8-channel steps: 536k weight
blocks) that is minutes of Python per candidate. The search (``dae_tiling.fastest``)
evaluates candidates in increasing order of this bound and stops once the bound exceeds
the best exact cost found, so the chosen tile is the one the exhaustive search picks.

The bound, in cycles, is the larger of two module busy times, each summed over
instruction *classes* (a weight block, an oc tile's params, an input window) rather than
over instructions; a module is never idle less than its busy time, so each is <= the
program's cycles (``Timing.cycles`` = the last module's finish):

* load: every LOAD_WEIGHT / LOAD_PARAMS / LOAD_INPUT the lowering must issue, charged as
  ``timing`` charges it. What it must issue follows from the emitter's two buffer halves
  per kind (``instructions.Emitter.load``, least recently used): within one spatial tile
  a key is used in one contiguous run per period (a weight block once, an oc tile's
  params for its ``n_ic`` steps, an input window for every step of its oc tile's pass),
  so a sequence of at most two distinct keys loads each once, and more keys (each run
  then finds its key evicted by the two runs before it) load once per run. SETs (1
  cycle each) are not counted.
* compute: every CONV's trips (rows x cols x og x kh x kw x ng) plus its pipeline depth,
  and every oc tile's REQUANT (rows x cols x og trips plus its depth). SETs and POOLs
  are not counted.

Fire and standalone pool layers get 0 (no pruning: they are small; SqueezeNet's fires
are evaluated exactly as before). ``tests/test_timing_bound.py`` checks bound <= exact
on random layers and tiles, and that the pruned search returns the exhaustive one's tile.
"""
from __future__ import annotations

from ..engine.dae_config import DaeConfig, DaeTile
from ..quantize.layers import ConvLayer
from .instructions import Tensor, cdiv, conv_tiles, engine_groups, groups, spatial_tiles
from .timing import _run, load_input_cost


def _loads(runs: int, distinct: int) -> int:
    """Loads the two-half LRU issues for ``runs`` runs over ``distinct`` keys cycled in
    one order (runs = periods x distinct): each key once when two halves hold them all."""
    return distinct if distinct <= 2 else runs


def _split(n: int, t: int) -> dict[int, int]:
    """{size: count} of the pieces ``range(0, n, t)`` cuts n into."""
    out = {t: n // t} if n >= t else {}
    if n % t:
        out[n % t] = 1
    return out


def _census(pairs) -> dict:
    """{key: total count} of (key, count) pairs (keys may repeat)."""
    out: dict = {}
    for k, n in pairs:
        out[k] = out.get(k, 0) + n
    return out


def block_shapes(conv, toc: int, tic: int, pe_oc: int) -> tuple[dict, dict, dict]:
    """Without listing them: ``instructions.conv_blocks`` as {(words, nog, ng): count},
    the oc tiles of one conv group {oc_n: count}, one oc tile's input steps {ng: count}
    (a depthwise conv: its oc tiles' own channels)."""
    kh, kw = conv.kernel
    n_grp = engine_groups(conv)
    ocs = _split(conv.out_channels // n_grp, toc)
    if conv.depthwise:
        shapes = _census(((cdiv(o, pe_oc) * kh * kw * pe_oc, cdiv(o, pe_oc), groups(o)), n)
                         for o, n in ocs.items())
        return shapes, ocs, {groups(toc): 1}
    ics = _split(conv.in_channels // n_grp, tic)
    shapes = _census(((cdiv(o, pe_oc) * kh * kw * groups(i) * pe_oc, cdiv(o, pe_oc),
                       groups(i)), no * ni * n_grp)
                     for o, no in ocs.items() for i, ni in ics.items())
    return shapes, ocs, _census((groups(i), n) for i, n in ics.items())


def layer_cycles_bound(cfg: DaeConfig, layer, tile: DaeTile, beat_x100: int = 100) -> int:
    """Cycles ``timing.layer_cycles(cfg, layer, tile, beat_x100)`` is at least (0 for
    layers it does not bound: fire, standalone pool)."""
    if not isinstance(layer, ConvLayer):  # ConvAddLayer too: its bypass loads only add
        return 0
    pe = cfg.pe_oc
    conv = layer.conv
    kh, kw = conv.kernel
    sy, sx = conv.stride
    pt, pl, _, _ = conv.pads
    (toc, tic), = conv_tiles(layer, tile, pe)
    shapes, ocs, steps = block_shapes(conv, toc, tic, pe)
    n_blocks = sum(shapes.values())
    n_grp = engine_groups(conv)
    n_oc_g = sum(ocs.values())   # oc tiles per conv group
    n_oc = n_oc_g * n_grp        # param tiles
    n_ic = sum(steps.values())   # input steps per oc tile
    dl, rd_lat = cfg.depth_load, cfg.rd_latency
    rd_issue = cdiv(rd_lat, cfg.outstanding)
    sp = list(spatial_tiles(layer, tile))
    n_sp = len(sp)

    def run(words: int) -> int:
        return _run(1, words, dl, rd_lat, rd_issue, beat_x100)

    # weights: the blocks cycle once per spatial tile; params: one run per oc tile
    w_each = sum(run(w) * n for (w, _, _), n in shapes.items())
    w_cyc = w_each * (_loads(n_sp * n_blocks, n_blocks) // n_blocks)
    p_each = sum(run(cdiv(o, pe) * pe) * n for o, n in ocs.items()) * n_grp
    p_cyc = p_each * (_loads(n_sp * n_oc, n_oc) // n_oc)

    # inputs: per spatial tile and oc tile, one key per input step; keys differ between
    # spatial tiles and between the conv groups' stretches of oc tiles; a depthwise
    # step's key is its oc tile's own channels (one load per oc tile and spatial tile)
    if conv.depthwise:
        keys = _census((groups(o), n) for o, n in ocs.items())
        per_key = 1
    else:
        keys = steps
        per_key = n_grp * (_loads(n_oc_g * n_ic, n_ic) // n_ic)
    src = Tensor(0, *layer.in_shape)
    i_cyc = 0
    pixels = 0  # conv output pixels over the spatial tiles (halo rows counted per tile)
    for _, _, _, _, c0, c1, d0, d1 in sp:
        rows, cols = c1 - c0, d1 - d0
        win = (c0 * sy - pt, d0 * sx - pl, (rows - 1) * sy + kh, (cols - 1) * sx + kw)
        for ng, n in keys.items():
            c, _ = load_input_cost(src.h, src.w, src.pixel_groups, *win, ng, dl, rd_lat,
                                   rd_issue, beat_x100)
            i_cyc += c * n * per_key
        pixels += rows * cols
    red = sum(nog * (1 if conv.depthwise else ng) * n for (_, nog, ng), n in shapes.items())
    compute = pixels * kh * kw * red + n_sp * n_blocks * cfg.depth_mac
    # one REQUANT per spatial tile and oc tile (rows x cols x og trips)
    nog_all = n_grp * sum(cdiv(o, pe) * n for o, n in ocs.items())
    compute += pixels * nog_all + n_sp * n_oc * cfg.depth_rq
    return max(w_cyc + p_cyc + i_cyc, compute)


__all__ = ["block_shapes", "layer_cycles_bound"]
