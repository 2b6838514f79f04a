"""The decoupled engine's C simulation vs the numpy golden model, bit for bit, and its
error paths (bad programs give an error code, never a crash)."""
import numpy as np
import pytest
from helpers import TINY, conv_params, fire, rand_input, squeezenet11
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zynq_squeeze.codegen import first_layer
from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import EngineError, ScheduleError
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec
from zynq_squeeze.quantize.reference import avg_constants, run_layer
from zynq_squeeze.schedule.dae_tiling import candidates, default_tile, overflow
from zynq_squeeze.schedule.instructions import Tensor
from zynq_squeeze.schedule.timing import simulate
from zynq_squeeze.toolchain.dae_sim import run_program, run_words

HYP = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CONFIGS = [TINY, DaeConfig(k=2, in_rows=512, w_rows=128, p_rows=16, acc_rows=512,
                           cv_rows=512, sq_rows=512, out_rows=512), DaeConfig()]


def check(layers, tiles, cfg, seed=0):
    """Run the chain, compare every output with the golden model and the cycle model."""
    rng = np.random.default_rng(seed)
    x = rand_input(rng, layers[0].in_shape)
    prog = build_dae_program(cfg, layers, tiles)
    y, res = run_program(prog, x)
    ref = reference_chain(layers, x)
    assert y.shape == ref.shape
    if not np.array_equal(y, ref):
        bad = np.argwhere(y != ref)
        raise AssertionError(f"{len(bad)} mismatches of {y.size}, first at {bad[0].tolist()} "
                             f"(tiles {tiles})")
    # the timing the simulation executed is what the fast model predicts, exactly
    assert res.cycles == simulate(cfg, prog.words).cycles
    return prog, res


@st.composite
def pools(draw, h, w):
    kind = draw(st.sampled_from(["none", "max", "avg", "gmax", "gavg"]))
    if kind == "none":
        return None
    if kind in ("gmax", "gavg"):
        return PoolSpec("max" if kind == "gmax" else "avg", global_pool=True)
    k = draw(st.integers(1, min(3, h, w)))
    s = draw(st.integers(1, 2))
    if kind == "max":
        pad = draw(st.integers(0, k - 1))
        return PoolSpec("max", (k, k), (s, s), (pad,) * 4, ceil_mode=draw(st.booleans()))
    # average pools: padded windows (counted or not) and ceil-mode overhang give windows of
    # different divisors, each class requantized by its own constant
    pad = draw(st.integers(0, k - 1))
    return PoolSpec("avg", (k, k), (s, s), (pad,) * 4, ceil_mode=draw(st.booleans()),
                    count_include_pad=draw(st.booleans()))


@st.composite
def conv_cases(draw):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    c = draw(st.sampled_from([1, 3, 5, 8, 13, 16, 40]))
    h, w = draw(st.integers(1, 19)), draw(st.integers(1, 19))
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 2))
    pad = draw(st.integers(0, k - 1))
    assume(h + 2 * pad >= k and w + 2 * pad >= k)
    oc = draw(st.sampled_from([1, 7, 8, 24, 30, 50]))
    conv = conv_params(rng, oc, c, k, stride=(s, s), pads=(pad,) * 4, relu=draw(st.booleans()))
    layer = ConvLayer("c", (c, h, w), conv)
    ch, cw = layer.conv_hw
    pool = draw(pools(ch, cw))
    scales = None
    if pool is not None and pool.kind == "avg" and not pool.global_pool and draw(st.booleans()):
        scales = (1.0, draw(st.floats(0.25, 1.0)))  # a fused pool with its own output scale
    layer = ConvLayer("c", (c, h, w), conv, pool, pool_scales=scales)
    if scales is not None and pool.avg_divisor(ch, cw) is not None:
        layer.pool_rq = avg_constants(pool, ch, cw, None, scales)[pool.avg_divisor(ch, cw)]
    cfg = draw(st.sampled_from(CONFIGS))
    cands = candidates(cfg, layer)
    assume(cands)
    return [layer], [draw(st.sampled_from(cands))], cfg, seed


@st.composite
def fire_cases(draw):
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    c = draw(st.sampled_from([3, 8, 16, 20]))
    h, w = draw(st.integers(1, 13)), draw(st.integers(1, 13))
    s = draw(st.sampled_from([2, 8, 16, 20]))
    e1, e3 = draw(st.sampled_from([8, 16, 32])), draw(st.sampled_from([5, 16, 40]))
    mp = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
    pool = draw(st.sampled_from([None, mp])) if min(h, w) >= 3 else None
    layer = fire(rng, "f", (c, h, w), s, e1, e3, pool)
    cfg = draw(st.sampled_from(CONFIGS))
    cands = candidates(cfg, layer)
    assume(cands)
    return [layer], [draw(st.sampled_from(cands))], cfg, seed


@HYP
@given(conv_cases())
def test_conv_bit_exact(case):
    layers, tiles, cfg, seed = case
    check(layers, tiles, cfg, seed)


@HYP
@given(fire_cases())
def test_fire_bit_exact(case):
    layers, tiles, cfg, seed = case
    check(layers, tiles, cfg, seed)


def test_squeezenet_full_chain():
    """SqueezeNet 1.1 at 224 on the Zybo Z7-20 engine (conv1 in first-layer mode)."""
    rng = np.random.default_rng(0)
    layers = squeezenet11(rng)
    cfg = DaeConfig()
    x = rand_input(rng, layers[0].in_shape)
    run = [first_layer.patch_layer(layers[0])] + layers[1:]
    prog = build_dae_program(cfg, run, [default_tile(cfg, layer) for layer in run])
    y, res = run_program(prog, first_layer.patches(layers[0], x))
    assert np.array_equal(y, reference_chain(layers, x))
    assert res.macs >= sum(layer.macs for layer in layers)  # padded lanes are charged too
    assert res.cycles == simulate(cfg, prog.words).cycles


def test_first_layer_mode_bit_exact():
    rng = np.random.default_rng(3)
    mp = PoolSpec("max", (3, 3), (2, 2), ceil_mode=True)
    for shape, k, s, pads in [((3, 23, 21), 3, 2, (0,) * 4), ((3, 17, 19), 3, 1, (1,) * 4),
                              ((1, 9, 9), 5, 2, (2, 1, 2, 1))]:
        layer = ConvLayer("c", shape, conv_params(rng, 40, shape[0], k, stride=(s, s), pads=pads), mp)
        assert first_layer.applies(layer)
        x = rand_input(rng, shape)
        p = first_layer.patch_layer(layer)
        assert p.conv.kernel == (1, 1) and p.in_shape[0] == shape[0] * k * k
        prog = build_dae_program(DaeConfig(), [p], [default_tile(DaeConfig(), p)])
        y, _ = run_program(prog, first_layer.patches(layer, x))
        assert np.array_equal(y, run_layer(layer, x))
    eight = ConvLayer("c", (8, 9, 9), conv_params(rng, 8, 8, 3))
    assert not first_layer.applies(eight)  # already one full word per tap


def test_dag_program_and_arena_reuse():
    """Two layers read one tensor, a third reads a later one: liveness-based placement."""
    rng = np.random.default_rng(5)
    a = ConvLayer("a", (8, 9, 9), conv_params(rng, 16, 8, 3, pads=(1,) * 4))
    b = ConvLayer("b", (8, 9, 9), conv_params(rng, 8, 8, 1))
    c = ConvLayer("c", (16, 9, 9), conv_params(rng, 8, 16, 1))
    layers = [(a, "x", "ya"), (b, "x", "yb"), (c, "ya", "yc")]
    tensors = {"x": (8, 9, 9), "ya": (16, 9, 9), "yb": (8, 9, 9), "yc": (8, 9, 9)}
    cfg = DaeConfig()
    prog = build_dae_program(cfg, layers, [default_tile(cfg, lay) for lay, _, _ in layers],
                             tensors, ["x"], ["yb", "yc"])
    assert prog.tensors["ya"].base != prog.tensors["yb"].base
    x = rand_input(rng, (8, 9, 9))
    from zynq_squeeze.codegen.dae_program import pack_tensor, unpack_tensor

    arena = np.zeros(prog.arena_words, np.uint64)
    t = prog.tensors["x"]
    arena[t.base:t.base + t.words] = pack_tensor(x)
    res = run_words(cfg, prog.words, prog.weights, arena)
    for tid, want in (("yb", run_layer(b, x)), ("yc", run_layer(c, run_layer(a, x)))):
        t = prog.tensors[tid]
        got = unpack_tensor(res.arena[t.base:t.base + t.words], t.c, t.h, t.w)
        assert np.array_equal(got, want)


def test_no_tile_fits_names_the_buffer():
    rng = np.random.default_rng(1)
    layer = ConvLayer("big", (512, 13, 13), conv_params(rng, 64, 512, 3, pads=(1,) * 4),
                      PoolSpec("avg", global_pool=True))
    small = DaeConfig(k=1, in_rows=16, w_rows=16, p_rows=1, acc_rows=16, cv_rows=16,
                      sq_rows=16, out_rows=16)
    with pytest.raises(ScheduleError, match="big: no tile fits the engine"):
        default_tile(small, layer)
    assert overflow(small, layer, DaeTile(8, 8, 1, 1)) == "in_buf: needs 225 rows per bank, has 16"
    # the pool needs the whole plane in one tile (the output is 1 x 1: th=1 covers it)
    assert overflow(DaeConfig(), layer, DaeTile(24, 8, 1, 1)) is None


def _program(cfg=None):
    rng = np.random.default_rng(2)
    layer = ConvLayer("c", (16, 6, 7), conv_params(rng, 24, 16, 3, pads=(1,) * 4))
    cfg = cfg or DaeConfig()
    prog = build_dae_program(cfg, [layer], [DaeTile(24, 8, 3, 4)])
    return cfg, prog


def _err(cfg, words, weights, arena_words):
    with pytest.raises(EngineError) as e:
        run_words(cfg, np.asarray(words, np.uint64), weights, np.zeros(arena_words, np.uint64))
    return e.value


def test_engine_rejects_bad_programs():
    cfg, prog = _program()
    w = [int(v) for v in prog.words]
    e = _err(cfg, w[:-1], prog.weights, prog.arena_words)
    assert e.code == -7 and "FINISH" in str(e)
    e = _err(cfg, [0x0C] + w, prog.weights, prog.arena_words)          # opcode 12: unknown
    assert e.code == -2
    e = _err(cfg, w, prog.weights, prog.arena_words - 8)                 # arena too small
    assert e.code == -5 and "arena" in str(e)
    e = _err(cfg, w, prog.weights[:10], prog.arena_words)                # weights cut
    assert e.code == -5
    # a token that is popped but never pushed: the engine reports the deadlock
    first_conv = next(i for i, v in enumerate(w) if v & 15 == isa.OP_CONV)
    bad = list(w)
    bad[first_conv] |= isa.POP_NEXT
    e = _err(cfg, bad, prog.weights, prog.arena_words)
    assert e.code == -8 and "deadlock" in str(e)


def test_engine_rejects_oversized_tiles():
    """A program lowered for a bigger engine overflows a smaller one's buffers: error -4."""
    cfg, prog = _program()
    small = DaeConfig(k=3, in_rows=16, w_rows=512, p_rows=64, acc_rows=2048, cv_rows=2048,
                      sq_rows=2048, out_rows=2048)
    e = _err(small, prog.words, prog.weights, prog.arena_words)
    assert e.code == -4 and "in_buf" in str(e)


def test_engine_rejects_bad_requant_params():
    cfg, prog = _program()
    wgt = prog.weights.copy()
    first_params = next(i for i, v in enumerate(prog.words)
                        if int(v) & 0xFF == isa.OP_SET and (int(v) >> 16) & 0xFF == isa.LP_ADDR)
    addr = int(prog.words[first_params]) >> 32
    wgt[addr] = np.uint64(int(wgt[addr]) & ~(0x3F << 54))  # shift 0
    e = _err(cfg, prog.words, wgt, prog.arena_words)
    assert e.code == -6


@pytest.mark.parametrize("field,value", [("mult", 1 << 15), ("shift", 41)])
def test_narrow_engine_rejects_a_wide_params_word(field, value):
    """A params word only the wide lane (DaeConfig.wide_rq) executes: mult >= 2**15 or
    shift > 40. The narrow engine refuses it (-6); the wide one runs it, as numpy says."""
    layer = ConvLayer("c", (16, 6, 7), conv_params(np.random.default_rng(2), 24, 16, 3,
                                                   pads=(1,) * 4))
    getattr(layer.conv, field)[0] = value
    tile = [DaeTile(24, 8, 3, 4)]
    x = np.random.default_rng(3).integers(-128, 128, (16, 6, 7)).astype(np.int8)
    wide = build_dae_program(DaeConfig(wide_rq=True), [layer], tile)
    # the narrow engine gets the same words (build_dae_program itself refuses the layer)
    e = _err(DaeConfig(wide_rq=False), wide.words, wide.weights, wide.arena_words)
    assert e.code == -6
    got, _ = run_program(wide, x)
    assert np.array_equal(got, reference_chain([layer], x))


def test_program_rejects_bad_layers():
    rng = np.random.default_rng(0)
    p = conv_params(rng, 8, 8, 3)
    bad = ConvLayer("b", (8, 9, 9), conv_params(rng, 8, 8, 3))
    bad.conv.shift[0] = 0
    with pytest.raises(ValueError, match="shift must be in"):
        build_dae_program(DaeConfig(), [bad], [DaeTile(24, 8, 3, 3)])
    with pytest.raises(ValueError, match="tiles for"):
        build_dae_program(DaeConfig(), [ConvLayer("c", (8, 9, 9), p)], [])
    # a 22-bit multiplier (a QDQ model's) needs the wide lane: refused by a narrow engine
    wide = ConvLayer("w", (8, 9, 9), conv_params(rng, 8, 8, 3))
    wide.conv.mult[0], wide.conv.shift[0] = wide.conv.mult[0] << 7, wide.conv.shift[0] + 7
    with pytest.raises(ValueError, match="DaeConfig.wide_rq"):
        build_dae_program(DaeConfig(wide_rq=False), [wide], [DaeTile(24, 8, 3, 3)])
    build_dae_program(DaeConfig(wide_rq=True), [wide], [DaeTile(24, 8, 3, 3)])
    f = fire(rng, "f", (8, 5, 5), 8, 12, 8)
    with pytest.raises(ValueError, match="multiple of 8"):
        build_dae_program(DaeConfig(), [f], [DaeTile(24, 8, 5, 5)])


def test_deterministic_programs():
    a = _program()[1]
    b = _program()[1]
    assert np.array_equal(a.words, b.words) and np.array_equal(a.weights, b.weights)


def test_tensor_words():
    assert Tensor(0, 3, 2, 2).words == 4 and Tensor(0, 9, 2, 2).words == 8
