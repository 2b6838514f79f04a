"""The tile search's lower bound (schedule/timing_bound.py): never above the exact cycle
model, and the pruned search (dae_tiling.fastest) picks the exhaustive search's tile
while timing few candidates of a large layer."""
from __future__ import annotations

from collections import Counter

import numpy as np
from helpers import conv_params, depthwise_params, fire, grouped_params
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer, PoolSpec
from zynq_squeeze.schedule import dae_tiling, timing
from zynq_squeeze.schedule.dae_tiling import candidates, default_tile, fastest
from zynq_squeeze.schedule.instructions import conv_blocks, conv_tiles
from zynq_squeeze.schedule.timing import layer_cycles
from zynq_squeeze.schedule.timing_bound import block_shapes, layer_cycles_bound

MP = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
GAP = PoolSpec("avg", global_pool=True)
CFGS = [DaeConfig(), DaeConfig(k=1, w_rows=64, in_rows=256, rd_latency=70, outstanding=4,
                               depth_mac=7, depth_load=3, residual=True),
        DaeConfig(k=2, w_rows=256, residual=True)]


def _layer(rng, kind: str, c: int, h: int, w: int, o: int, k: int, s: int, pool_i: int):
    p = k // 2 if kind != "grouped" else 0
    pool = [None, MP, GAP][pool_i]
    if kind == "depthwise":
        cp = depthwise_params(rng, c, k, stride=s, pad=p)
    elif kind == "grouped":  # the engine's grouped convs: multiples of 8 channels per group
        c, o = 16 * -(-c // 16), 16 * -(-o // 16)
        cp = grouped_params(rng, o, c, 2, k, stride=(s, s))
    else:
        cp = conv_params(rng, o if kind != "add" else c, c, k, stride=(1, 1) if kind == "add"
                         else (s, s), pads=(p,) * 4)
    if kind == "add":
        return ConvAddLayer("a", (c, h, w), cp, bypass=None, bp_mult=20000, bp_shift=15)
    layer = ConvLayer("c", (c, h, w), cp, pool)
    if pool is MP and min(layer.conv_hw) < 3:
        layer = ConvLayer("c", (c, h, w), cp, None)
    return layer


layers = st.builds(
    lambda seed, kind, c, h, w, o, k, s, pool_i: _layer(np.random.default_rng(seed), kind, c,
                                                        h, w, o, k, s, pool_i),
    st.integers(0, 2**16), st.sampled_from(["conv", "conv", "depthwise", "grouped", "add"]),
    st.integers(1, 80), st.integers(3, 14), st.integers(3, 14), st.integers(1, 90),
    st.sampled_from([1, 3]), st.integers(1, 2), st.integers(0, 2))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=layers, cfg_i=st.integers(0, 2), beat=st.sampled_from([100, 150, 311]))
def test_bound_never_exceeds_the_cycle_model(layer, cfg_i, beat):
    cfg = CFGS[cfg_i]
    cands = candidates(cfg, layer)
    for t in cands[:: max(1, len(cands) // 6)] + cands[-1:]:
        b = layer_cycles_bound(cfg, layer, t, beat)
        assert 0 < b <= layer_cycles(cfg, layer, t, beat), (layer.kind, t)
        # the block census is conv_blocks' without listing the blocks
        (toc, tic), = conv_tiles(layer, t, cfg.pe_oc)
        shapes, _, _ = block_shapes(layer.conv, toc, tic, cfg.pe_oc)
        assert shapes == Counter((b.words, b.nog, b.ng)
                                 for b in conv_blocks(layer.conv, toc, tic, cfg.pe_oc))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer=layers, cfg_i=st.integers(0, 2))
def test_pruned_search_returns_the_exhaustive_choice(layer, cfg_i):
    cfg = CFGS[cfg_i]
    cands = candidates(cfg, layer)
    exact = {t: layer_cycles(cfg, layer, t) for t in cands}
    assert default_tile(cfg, layer) == min(cands, key=lambda t: (exact[t], -t.toc,
                                                                 -t.th * t.tw))


def test_fastest_stops_at_the_bound_and_keeps_ties():
    tiles = [DaeTile(24 * i, 8, 1, 1) for i in range(1, 6)]
    cost = {t: 100 for t in tiles}
    bound = {t: b for t, b in zip(tiles, [50, 100, 100, 101, 200])}
    best, n = fastest(tiles, cost.get, bound.get)
    # bounds 50, 100, 100 are costed (a tie at the bound may still win on size: the
    # larger toc), 101 and 200 are not
    assert n == 3 and best == tiles[2]


def test_fire_layers_are_not_pruned():
    rng = np.random.default_rng(1)
    layer = fire(rng, "f", (32, 9, 11), 16, 24, 32, MP)
    assert layer_cycles_bound(DaeConfig(), layer, DaeTile(24, 16, 2, 3)) == 0


def test_large_fc_layer_times_few_candidates(monkeypatch):
    """A 2048 -> 4096 fully connected layer as a 1x1 conv: 88 candidate tiles, the small
    ones hundreds of thousands of instructions each (timing them all took ~25 s); the
    bound leaves a handful to time (benchmarks/compile_time.py measures the fc6 case)."""
    rng = np.random.default_rng(2)
    layer = ConvLayer("fc", (2048, 1, 1), conv_params(rng, 4096, 2048, 1))
    cfg = DaeConfig(k=3, w_rows=1024)
    timed: list[DaeTile] = []

    def counting(c, lay, t, beat_x100=100):
        timed.append(t)
        return layer_cycles(c, lay, t, beat_x100)

    monkeypatch.setattr(dae_tiling, "layer_cycles", counting)
    timing.clear_cache()
    cands = candidates(cfg, layer)
    best = default_tile(cfg, layer)
    assert len(cands) > 50 and 1 <= len(timed) <= 6
    # every candidate left untimed is provably slower than the choice
    for t in set(cands) - set(timed):
        assert layer_cycles_bound(cfg, layer, t) > layer_cycles(cfg, layer, best)


def test_engine_search_choice_unchanged_by_pruning(monkeypatch):
    """The engine search's timed shortlist gives the tiles timing every shortlisted
    candidate gives (a bound of 0 prunes nothing)."""
    from helpers import squeezenet11
    from zynq_squeeze.boards import BOARDS
    from zynq_squeeze.schedule import dae_engine_search as des

    rng = np.random.default_rng(3)
    net = squeezenet11(rng, hw=64) + [ConvLayer("fc", (2048, 1, 1),
                                                conv_params(rng, 1024, 2048, 1))]
    b = BOARDS["zybo-z7-20"]
    pruned = des.search_dae_engine(b, net)
    monkeypatch.setattr(des, "_timing_cost", lambda: (layer_cycles, lambda *a: 0))
    assert des.search_dae_engine(b, net) == pruned
