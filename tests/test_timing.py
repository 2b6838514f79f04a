"""The fast cycle model (schedule/timing.py) against the decoupled engine's C simulation
(toolchain/dae_sim.py): same cycles, same completion cycle of every instruction."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from helpers import conv_params, fire, rand_input, squeezenet11
from zynq_squeeze.codegen.dae_program import build_dae_program
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import EngineError
from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer, PoolLayer, PoolSpec
from zynq_squeeze.schedule import timing
from zynq_squeeze.schedule.dae_tiling import (
    candidates,
    default_tile,
    largest_tile,
    overflow,
)
from zynq_squeeze.schedule.timing import layer_cycles, simulate
from zynq_squeeze.toolchain.dae_sim import run_program, run_words

MP = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
GAP = PoolSpec("avg", global_pool=True)

# k = 1..3; small command queues make fetch stall on full queues (a separate C build each)
CFG3 = DaeConfig()
CFG2 = DaeConfig(k=2, queue_depth=24, w_rows=256)
CFG1 = DaeConfig(k=1, queue_depth=8, in_rows=512, rd_latency=70, wr_latency=45,
                 outstanding=4, depth_mac=7, depth_load=3)


def assert_same(cfg, prog, rng, beat_x100):
    """simulate(words) == the C simulation: totals, busy, traffic, every insn_end."""
    x = rand_input(rng, (prog.input.c, prog.input.h, prog.input.w))
    _, res = run_program(prog, x, beat_x100=beat_x100)
    tm = simulate(cfg, prog.words, beat_x100)
    assert tm.cycles == res.cycles
    np.testing.assert_array_equal(tm.insn_end, res.insn_end)
    assert tm.busy == (res.load_busy, res.compute_busy, res.store_busy)
    assert (tm.macs, tm.rd_bytes, tm.wr_bytes) == (res.macs, res.rd_bytes, res.wr_bytes)
    return tm, res


def _cases(rng):
    return {
        "conv_s2_pad_pool": ([ConvLayer("c", (3, 23, 21), conv_params(
            rng, 64, 3, 3, stride=(2, 2), pads=(1, 1, 1, 1)), MP)], [DaeTile(24, 8, 3, 4)]),
        "conv_k2_odd": ([ConvLayer("c", (13, 9, 10), conv_params(rng, 27, 13, 2, pads=(0, 1, 1, 0)))],
                        [DaeTile(24, 8, 4, 3)]),
        "fire": ([fire(rng, "f", (32, 9, 11), 16, 24, 32)], [DaeTile(24, 16, 4, 5)]),
        "fire_odd": ([fire(rng, "f", (21, 7, 8), 11, 16, 19)], [DaeTile(8, 8, 3, 8)]),
        "fire_pool": ([fire(rng, "f", (32, 13, 12), 16, 64, 64, MP)], [DaeTile(48, 16, 3, 2)]),
        "gap": ([ConvLayer("c", (40, 7, 6), conv_params(rng, 50, 40, 1), GAP)], [DaeTile(24, 16, 1, 1)]),
        # residual add: bypass windows per row (one oc tile) and per pixel (27 channels in
        # two oc tiles: a window of part of the channel groups)
        "residual": ([ConvLayer("c", (16, 9, 7), conv_params(rng, 27, 16, 3, pads=(1,) * 4)),
                      ConvAddLayer("a", (27, 9, 7), conv_params(rng, 27, 27, 3, pads=(1,) * 4),
                                   bypass=None, bp_mult=20000, bp_shift=15)],
                     [DaeTile(24, 16, 4, 7), DaeTile(24, 16, 5, 3)]),
        # standalone pools (POOL from in_buf): channel tiles, padding, ceil mode, averages
        "pool_max": ([PoolLayer("p", (40, 11, 9), PoolSpec("max", (3, 3), (1, 1), (1, 1, 1, 1),
                                                           ceil_mode=True))],
                     [DaeTile(24, 8, 4, 5)]),
        "pool_avg": ([PoolLayer("p", (56, 12, 10), PoolSpec("avg", (2, 2), (2, 2)), 20000, 17)],
                     [DaeTile(48, 8, 3, 5)]),
        "pool_gap": ([PoolLayer("p", (64, 7, 6), GAP)], [DaeTile(24, 8, 1, 1)]),
        "chain": ([ConvLayer("c", (3, 20, 20), conv_params(rng, 32, 3, 3, stride=(2, 2)), MP),
                   fire(rng, "f2", (32, 4, 4), 16, 32, 32),
                   ConvLayer("c3", (64, 4, 4), conv_params(rng, 30, 64, 1), GAP)],
                  [DaeTile(24, 8, 2, 2), DaeTile(24, 16, 2, 3), DaeTile(24, 32, 1, 1)]),
    }


@pytest.mark.parametrize("cfg", [CFG3, CFG2, CFG1], ids=["k3", "k2_q24", "k1_q8"])
@pytest.mark.parametrize("beat_x100", [100, 237])
def test_fixed_cases_match_c(cfg, beat_x100):
    rng = np.random.default_rng(11)
    for name, (layers, tiles) in _cases(rng).items():
        tiles = [t if overflow(cfg, layer, t) is None else largest_tile(cfg, layer)
                 for layer, t in zip(layers, tiles)]
        prog = build_dae_program(cfg, layers, tiles)
        tm, _ = assert_same(cfg, prog, rng, beat_x100)
        assert tm.insn_end[-1] == tm.cycles, name  # FINISH ends last


def _random_layer(rng, name, in_shape=None, kind=None):
    c = int(rng.integers(1, 41)) if in_shape is None else in_shape[0]
    h, w = (int(rng.integers(4, 15)), int(rng.integers(4, 15))) if in_shape is None \
        else in_shape[1:]
    kind = kind or ("fire" if rng.random() < 0.4 else "conv")
    if kind == "fire":
        pool = MP if rng.random() < 0.4 and min(h, w) >= 3 else None
        return fire(rng, name, (c, h, w), int(rng.integers(3, 25)), 8 * int(rng.integers(1, 6)),
                    int(rng.integers(3, 45)), pool)
    k = int(rng.integers(1, 4))
    s = int(rng.integers(1, 3))
    p = int(rng.integers(0, k))  # pads smaller than the kernel
    pool = [None, MP, GAP][int(rng.integers(0, 3))]
    cp = conv_params(rng, int(rng.integers(1, 60)), c, k, stride=(s, s), pads=(p, p, p, p))
    layer = ConvLayer(name, (c, h, w), cp, pool)
    if pool is MP and min(layer.conv_hw) < 3:
        layer = ConvLayer(name, (c, h, w), cp, None)
    return layer


def _random_tile(rng, cfg, layer):
    """A fitting tile, often not the largest (partial channel steps and spatial edges)."""
    _, oh, ow = layer.out_shape
    for _ in range(50):
        t = DaeTile(cfg.pe_oc * int(rng.integers(1, 4)), 8 * int(rng.integers(1, 6)),
                    int(rng.integers(1, oh + 1)), int(rng.integers(1, ow + 1)))
        if layer.pool is not None and layer.pool.global_pool:
            t = DaeTile(t.toc, t.tic, oh, ow)
        if overflow(cfg, layer, t) is None:
            return t
    cands = candidates(cfg, layer)
    return cands[int(rng.integers(0, len(cands)))]


@pytest.mark.parametrize("cfg", [CFG3, CFG2, CFG1], ids=["k3", "k2_q24", "k1_q8"])
def test_random_layers_and_chains_match_c(cfg):
    rng = np.random.default_rng(2024 + cfg.k)
    for i in range(8):
        if i < 5:
            layers = [_random_layer(rng, f"l{i}")]
        else:  # chains: each layer's output feeds the next (a GAP only at the end)
            layers = [_random_layer(rng, f"l{i}a", kind="conv")]
            if layers[0].pool is GAP:
                layers[0] = ConvLayer(layers[0].name, layers[0].in_shape, layers[0].conv, None)
            layers.append(_random_layer(rng, f"l{i}b", layers[0].out_shape, kind="fire"))
            layers.append(ConvLayer(f"l{i}c", layers[1].out_shape,
                                    conv_params(rng, int(rng.integers(1, 40)),
                                                layers[1].out_shape[0], 1), GAP))
        tiles = [_random_tile(rng, cfg, layer) for layer in layers]
        prog = build_dae_program(cfg, layers, tiles)
        assert_same(cfg, prog, rng, int(rng.choice([100, 100, 150, 311])))


def test_small_queue_stalls_fetch():
    """With an 8-deep queue the program runs slower than with a deep one, and still exactly
    as the C simulation (covered above); here: the stall is modeled at all."""
    rng = np.random.default_rng(3)
    layers, tiles = _cases(rng)["fire"]
    deep = DaeConfig(k=1)
    shallow = DaeConfig(k=1, queue_depth=8)
    tiles = [largest_tile(deep, layers[0])]
    words = build_dae_program(deep, layers, tiles).words
    assert simulate(shallow, words).cycles > simulate(deep, words).cycles


def test_layer_cycles_is_the_one_layer_program_and_memoized():
    rng = np.random.default_rng(5)
    layer = fire(rng, "f", (32, 9, 11), 16, 24, 32, MP)
    tile = DaeTile(24, 16, 2, 3)
    timing.clear_cache()
    c = layer_cycles(CFG3, layer, tile)
    assert c == simulate(CFG3, build_dae_program(CFG3, [layer], [tile]).words).cycles
    # same geometry, other weights: a cache hit with the same answer
    twin = fire(rng, "g", (32, 9, 11), 16, 24, 32, MP)
    assert layer_cycles(CFG3, twin, tile) == c
    assert len(timing._layer_cache) == 1
    assert layer_cycles(CFG3, layer, tile, beat_x100=400) > c  # slower DDR
    assert layer_cycles(CFG3, layer, DaeTile(24, 8, 1, 1)) != c


def test_default_tile_minimises_model_cycles():
    rng = np.random.default_rng(6)
    layer = ConvLayer("c", (40, 23, 21), conv_params(rng, 72, 40, 3, pads=(1, 1, 1, 1)), MP)
    cands = candidates(CFG3, layer)
    best = default_tile(CFG3, layer)
    cyc = {t: layer_cycles(CFG3, layer, t) for t in cands}
    assert best in cands and cyc[best] == min(cyc.values())
    # an explicit cost still decides
    assert default_tile(CFG3, layer, cost=lambda t: -t.th * t.tw * t.toc) == \
        max(cands, key=lambda t: (t.th * t.tw * t.toc, t.toc))
    assert largest_tile(CFG3, layer) == cands[0]


def _finish_only(*extra):
    return np.array([*extra, isa.OP_FINISH], dtype=np.uint64)


def test_bad_programs_fail_like_c():
    # compute pops a load->compute token nobody pushes: deadlock in both
    words = _finish_only(isa.set_reg(isa.CV_ROWS, 1, isa.POP_PREV))
    with pytest.raises(EngineError) as e:
        simulate(CFG3, words)
    assert e.value.code == timing.ERR_DEADLOCK
    with pytest.raises(EngineError) as e:
        run_words(CFG3, words, np.zeros(1, np.uint64), np.zeros(1, np.uint64))
    assert e.value.code == timing.ERR_DEADLOCK
    # load has no prev module; a pushed token nobody pops; no FINISH
    for words, code in ((_finish_only(isa.set_reg(isa.LI_BASE, 0, isa.POP_PREV)), timing.ERR_PROGRAM),
                        (_finish_only(isa.set_reg(isa.LI_BASE, 0, isa.PUSH_NEXT)), timing.ERR_PROGRAM),
                        (np.array([isa.set_reg(isa.LI_BASE, 0)], np.uint64), timing.ERR_PROGRAM)):
        with pytest.raises(EngineError) as e:
            simulate(CFG3, words)
        assert e.value.code == code
        with pytest.raises(EngineError) as e:
            run_words(CFG3, words, np.zeros(1, np.uint64), np.zeros(1, np.uint64))
        assert e.value.code == code


def test_squeezenet_per_layer_matches_c():
    rng = np.random.default_rng(0)
    layers = squeezenet11(rng)
    tiles = [default_tile(CFG3, x) for x in layers]
    prog = build_dae_program(CFG3, layers, tiles)
    tm, res = assert_same(CFG3, prog, rng, 100)

    def per_layer(end):
        ends = [0] + [int(end[:e + 1].max()) for e in prog.layer_ends]
        return [b - a for a, b in itertools.pairwise(ends)]

    assert per_layer(tm.insn_end) == per_layer(res.insn_end)
    assert all(c > 0 for c in per_layer(tm.insn_end))


def test_layer_busy_splits_each_module_by_layer():
    """layer_busy partitions every module's busy cycles among the layers (the words up to
    each layer end); layer_limits names the busiest module of each layer."""
    rng = np.random.default_rng(12)
    layers, tiles = _cases(rng)["chain"]
    prog = build_dae_program(CFG3, layers, tiles)
    tm = simulate(CFG3, prog.words)
    busy = timing.layer_busy(tm, prog.layer_ends)
    assert len(busy) == len(layers)
    for m, total in zip(timing.MODULES, tm.busy):
        assert 0 < sum(b[m] for b in busy) <= total
    assert timing.layer_limits(tm, prog.layer_ends) == [max(b, key=b.get) for b in busy]
    # a compute-heavy 3x3 conv with few output channels is limited by compute, not load
    heavy = ConvLayer("h", (64, 16, 16), conv_params(rng, 24, 64, 3, pads=(1, 1, 1, 1)))
    one = build_dae_program(CFG3, [heavy], [largest_tile(CFG3, heavy)])
    assert timing.layer_limits(simulate(CFG3, one.words), one.layer_ends) == ["compute"]
