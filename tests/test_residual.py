"""Residual add on the accelerator (issue 11 item 2): conv(+bias) + bypass (+ReLU) layers.

The C simulation against the numpy integer reference, bit for bit, on hypothesis-drawn
shapes and tilings (ResNet basic blocks with an identity or a 1x1 stride-2 bypass,
linear bottlenecks without ReLU); the fast cycle model equal to the executed timing; the
scale alignment's accuracy against float; the validators' refusals."""
import ctypes

import numpy as np
import pytest
from helpers import TINY, conv_params, rand_input, rt_library, rt_program, rt_validator
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zynq_squeeze.codegen.dae_program import (build_dae_program, pack_tensor, run_graph,
                                              unpack_tensor)
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import EngineError, ScheduleError
from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer
from zynq_squeeze.quantize.reference import run_layer
from zynq_squeeze.quantize.requant import quantize_multiplier
from zynq_squeeze.schedule import dae_tiling
from zynq_squeeze.schedule.timing import simulate
from zynq_squeeze.toolchain.dae_sim import run_words

HYP = settings(max_examples=30, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CONFIGS = [TINY, DaeConfig(k=2, in_rows=512, w_rows=128, p_rows=16, acc_rows=512,
                           cv_rows=512, sq_rows=512, out_rows=512, bp_rows=64), DaeConfig()]


def add_layer(rng, name, in_shape, o, k, bypass, relu=True, stride=1):
    pad = k // 2
    conv = conv_params(rng, o, in_shape[0], k, stride=(stride, stride), pads=(pad,) * 4,
                       relu=relu)
    m, s = quantize_multiplier(rng.uniform(0.2, 1.5))
    return ConvAddLayer(name, in_shape, conv, bypass=bypass, bp_mult=int(m), bp_shift=int(s))


def run_graph_on_engine(cfg, layers, tiles, shapes, inputs, outputs, xs):
    """Build and run a program of ``(layer, src, dst)`` layers; returns the int8 outputs,
    the run and the program."""
    prog = build_dae_program(cfg, layers, tiles, shapes, inputs, outputs)
    arena = np.zeros(prog.arena_words, dtype=np.uint64)
    for t, x in zip(inputs, xs):
        p = prog.tensors[t]
        arena[p.base:p.base + p.words] = pack_tensor(x)
    res = run_words(cfg, prog.words, prog.weights, arena)
    ys = [unpack_tensor(res.arena[prog.tensors[t].base:], *shapes[t]) for t in outputs]
    return ys, res, prog


def check_graph(cfg, layers, tiles, shapes, inputs, outputs, seed=0):
    rng = np.random.default_rng(seed)
    xs = [rand_input(rng, shapes[t]) for t in inputs]
    ys, res, prog = run_graph_on_engine(cfg, layers, tiles, shapes, inputs, outputs, xs)
    ref = run_graph(layers, dict(zip(inputs, xs)))
    for t, y in zip(outputs, ys):
        if not np.array_equal(y, ref[t]):
            bad = np.argwhere(y != ref[t])
            raise AssertionError(f"{t}: {len(bad)} mismatches of {y.size}, first at "
                                 f"{bad[0].tolist()} (tiles {tiles})")
    assert res.cycles == simulate(cfg, prog.words).cycles
    return prog, res


@st.composite
def block_cases(draw):
    """A ResNet basic block (identity bypass, or a 1x1 stride-s conv of the input) or a
    linear bottleneck (no ReLU after the add), with drawn shapes, engines and tiles."""
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    c = draw(st.sampled_from([8, 13, 16, 24]))
    h, w = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    down = draw(st.booleans())
    s = 2 if down else 1
    o = draw(st.sampled_from([8, 13, 16, 30, 40])) if down else c
    relu = draw(st.booleans())
    cfg = draw(st.sampled_from(CONFIGS))
    l1 = ConvLayer("c1", (c, h, w), conv_params(rng, o, c, 3, stride=(s, s), pads=(1,) * 4))
    shapes = {"in0": (c, h, w), "t1": l1.out_shape}
    layers = [(l1, "in0", "t1")]
    bp = "in0"
    if down:
        ds = ConvLayer("ds", (c, h, w), conv_params(rng, o, c, 1, stride=(2, 2), relu=False))
        assume(ds.out_shape == l1.out_shape)
        layers.append((ds, "in0", "t2"))
        shapes["t2"] = ds.out_shape
        bp = "t2"
    l2 = add_layer(rng, "c2", l1.out_shape, o, 3, bp, relu=relu)
    layers.append((l2, "t1", "t3"))
    shapes["t3"] = l2.out_shape
    tiles = []
    for layer, _, _ in layers:
        cands = dae_tiling.candidates(cfg, layer)
        assume(cands)
        tiles.append(draw(st.sampled_from(cands)))
    return cfg, layers, tiles, shapes, seed


@HYP
@given(block_cases())
def test_residual_block_bit_exact(case):
    cfg, layers, tiles, shapes, seed = case
    check_graph(cfg, layers, tiles, shapes, ["in0"], ["t3"], seed)


@pytest.mark.parametrize("hls_kernel,flags", [(False, ()), (False, ("-DZSQD_SIM_PORTABLE",)),
                                              (True, ())], ids=["simd", "portable", "hls"])
def test_residual_tiled_every_build(hls_kernel, flags):
    """Spatial and channel tiling with the synthesized loops (ap_int) and the host fast
    paths (SIMD and portable): the same integers."""
    rng = np.random.default_rng(3)
    c, o = 16, 40
    l1 = ConvLayer("c1", (c, 9, 7), conv_params(rng, o, c, 3, pads=(1,) * 4))
    l2 = add_layer(rng, "c2", l1.out_shape, o, 3, "t1", relu=False)
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2")]
    shapes = {"in0": (c, 9, 7), "t1": l1.out_shape, "t2": l2.out_shape}
    tiles = [DaeTile(8, 8, 4, 3), DaeTile(16, 16, 3, 4)]
    x = rand_input(rng, (c, 9, 7))
    prog = build_dae_program(TINY, layers, tiles, shapes, ["in0"], ["t2"])
    arena = np.zeros(prog.arena_words, dtype=np.uint64)
    arena[:prog.tensors["in0"].words] = pack_tensor(x)
    res = run_words(TINY, prog.words, prog.weights, arena, hls_kernel=hls_kernel,
                    extra_flags=flags)
    y = unpack_tensor(res.arena[prog.tensors["t2"].base:], *shapes["t2"])
    ref = run_graph(layers, {"in0": x})
    assert np.array_equal(y, ref["t2"])
    assert res.cycles == simulate(TINY, prog.words).cycles
    ops = [w & 15 for w in prog.words.tolist()]
    assert ops.count(isa.OP_LOAD_BYPASS) > 1  # a bypass tile per (spatial tile, oc tile)


def test_bypass_stays_live_until_read():
    """The arena allocator keeps the bypass tensor's words until the add reads them: the
    layer between (which could reuse them) writes elsewhere."""
    rng = np.random.default_rng(1)
    l1 = ConvLayer("c1", (16, 6, 6), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    l2 = ConvLayer("c2", (16, 6, 6), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    l3 = add_layer(rng, "c3", (16, 6, 6), 16, 3, "in0")
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2"), (l3, "t2", "t3")]
    shapes = {k: (16, 6, 6) for k in ("in0", "t1", "t2", "t3")}
    cfg = DaeConfig()
    tiles = [dae_tiling.default_tile(cfg, layer) for layer, _, _ in layers]
    prog, _ = check_graph(cfg, layers, tiles, shapes, ["in0"], ["t3"])
    words = {t: (p.base, p.base + p.words) for t, p in prog.tensors.items()}
    for t in ("t1", "t2", "t3"):
        lo, hi = words[t]
        assert hi <= words["in0"][0] or lo >= words["in0"][1], t


def test_reference_scale_alignment_is_accurate():
    """The integer formula against float: y_real = relu(conv_real + b * s_b) / s_out,
    off by at most one output step (each of the two rounded terms by half a step)."""
    rng = np.random.default_rng(5)
    layer = add_layer(rng, "a", (16, 5, 5), 24, 3, "b")
    x = rand_input(rng, (16, 5, 5))
    b = rand_input(rng, (24, 5, 5))
    y = run_layer(layer, x, b).astype(np.float64)
    cv = layer.conv
    plain = ConvLayer("p", layer.in_shape, cv)
    from zynq_squeeze.quantize.reference import conv_acc, conv_pre_shift
    acc = conv_acc(cv, x) >> conv_pre_shift(cv).reshape(-1, 1, 1)
    real = (acc * (cv.mult / 2.0 ** cv.shift).reshape(-1, 1, 1)
            + b * (layer.bp_mult / 2.0 ** layer.bp_shift))
    want = np.clip(np.maximum(real, 0), -128, 127)
    assert np.abs(y - want).max() <= 1.0
    assert plain.kind == "conv" and layer.kind == "conv_add"


def _one_block(cfg=TINY):
    rng = np.random.default_rng(2)
    l1 = ConvLayer("c1", (8, 4, 4), conv_params(rng, 8, 8, 3, pads=(1,) * 4))
    l2 = add_layer(rng, "c2", (8, 4, 4), 8, 3, "in0")
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2")]
    shapes = {"in0": (8, 4, 4), "t1": (8, 4, 4), "t2": (8, 4, 4)}
    tiles = [dae_tiling.default_tile(cfg, layer) for layer, _, _ in layers]
    return build_dae_program(cfg, layers, tiles, shapes, ["in0"], ["t2"])


def _set_index(words, reg):
    return max(i for i, w in enumerate(words) if w & 15 == isa.OP_SET and (w >> 16) & 0xFF == reg)


@pytest.mark.parametrize("reg,value,code", [
    (isa.RQ_BP_MULT, 100, -6),       # bypass multiplier outside [2^14, 2^15)
    (isa.RQ_BP_SHIFT, 0, -6),
    (isa.LB_Y0, 3, -3),              # window outside its tensor
    (isa.LB_PITCH, 400, -3),         # derived register LB_ROW_PITCH no longer matches
])
def test_simulation_refuses_bad_bypass_fields(reg, value, code):
    prog = _one_block()
    words = prog.words.tolist()
    i = _set_index(words, reg)
    words[i] = isa.set_reg(reg, value)
    arena = np.zeros(prog.arena_words, dtype=np.uint64)
    with pytest.raises(EngineError) as e:
        run_words(prog.cfg, np.array(words, dtype=np.uint64), prog.weights, arena)
    assert e.value.code == code


def test_bypass_tile_must_fit_bp_buf():
    """A tile whose bypass overflows bp_buf is refused by the tiler (named) and, forced
    through, by the simulation (-4)."""
    rng = np.random.default_rng(0)
    cfg = DaeConfig(k=1, bp_rows=16)
    layer = add_layer(rng, "a", (8, 8, 8), 8, 3, "b")
    assert "bp_buf" in dae_tiling.overflow(cfg, layer, DaeTile(8, 8, 8, 8))
    assert dae_tiling.overflow(cfg, layer, DaeTile(8, 8, 4, 4)) is None
    with pytest.raises(ScheduleError, match="residual add"):
        from zynq_squeeze.schedule.instructions import Tensor, lower_layers
        lower_layers(cfg, [layer], [DaeTile(8, 8, 4, 4)],
                     [(Tensor(0, 8, 8, 8), Tensor(64, 8, 8, 8))])


# -- the C runtime's validator (zsq_rt_validate: the board's only guard) -----------------
RT_ERR_ARENA, RT_ERR_INSN = -101, -106
RT_CFG = DaeConfig(k=1)


@pytest.fixture(scope="module")
def validate():
    return rt_validator(RT_CFG)


def _three_layer_block():
    """c1: in0 -> t1, c2: t1 -> t2, c3: conv(t2) + in0 -> t3 (in0 read again at the end)."""
    rng = np.random.default_rng(1)
    l1 = ConvLayer("c1", (16, 6, 6), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    l2 = ConvLayer("c2", (16, 6, 6), conv_params(rng, 24, 16, 3, pads=(1,) * 4))
    l3 = add_layer(rng, "c3", (24, 6, 6), 16, 3, "in0")
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2"), (l3, "t2", "t3")]
    # t2 of another shape than in0: the runtime tells their descriptors apart
    shapes = {"in0": (16, 6, 6), "t1": (16, 6, 6), "t2": (24, 6, 6), "t3": (16, 6, 6)}
    cfg = DaeConfig()
    tiles = [DaeTile(24, 24, 3, 6) for _ in layers]  # two spatial tiles per layer
    return build_dae_program(cfg, layers, tiles, shapes, ["in0"], ["t3"])


def test_runtime_validates_residual_programs_and_their_bypass_lifetime(validate):
    prog = _three_layer_block()
    assert validate(prog.words, prog.weights, prog.arena_words) == (0, "")
    # c2's STOREs moved onto in0: in0 is still to be read by c3's LOAD_BYPASS, so the
    # two tensors are live at once (without LOAD_BYPASS in the lifetimes, in0 would have
    # died at c1's last LOAD_INPUT and the edit would pass)
    src = prog.tensors["in0"]
    words = [int(w) for w in prog.words]
    out, delta = [], None
    for i, w in enumerate(words):
        d = isa.decode(w)
        if prog.layer_ends[0] < i <= prog.layer_ends[1] and d.op == isa.OP_SET:
            if d.reg == isa.ST_BASE:
                delta = src.base - d.value
                w = isa.set_reg(isa.ST_BASE, src.base) | (w & isa.DEP_MASK)
            elif d.reg == isa.ST_DST0 and delta is not None:
                w = isa.set_reg(isa.ST_DST0, d.value + delta) | (w & isa.DEP_MASK)
        out.append(w)
    assert delta is not None
    rc, msg = validate(out, prog.weights, prog.arena_words)
    assert rc == RT_ERR_ARENA and "overlaps" in msg, msg


# (the runtime admits the wide lane's ranges, mult < 2**22 and shift <= 47; an engine
# built without it refuses more: tests/test_engine.py)
@pytest.mark.parametrize("reg,value", [(isa.LB_Y0, 5), (isa.LB_NG, 0), (isa.RQ_BP_MULT, 3),
                                       (isa.RQ_BP_MULT, 1 << 22), (isa.RQ_BP_SHIFT, 48)])
def test_runtime_refuses_bad_bypass_fields(validate, reg, value):
    prog = _one_block(DaeConfig())
    words = prog.words.tolist()
    words[_set_index(words, reg)] = isa.set_reg(reg, value)
    rc, msg = validate(words, prog.weights, prog.arena_words)
    assert rc == RT_ERR_INSN and ("LOAD_BYPASS" in msg or "bypass multiplier" in msg), msg


def test_runtime_checks_a_bypass_read_from_a_program_input():
    """zsq_rt_check_io: LOAD_BYPASS reads a program input like LOAD_INPUT: the words it
    reads must lie in the input ranges the host copies (here in1, read only as a bypass)."""
    rng = np.random.default_rng(4)
    l1 = ConvLayer("c1", (8, 4, 4), conv_params(rng, 8, 8, 3, pads=(1,) * 4))
    l2 = add_layer(rng, "c2", (8, 4, 4), 8, 3, "in1")
    layers = [(l1, "in0", "t1"), (l2, "t1", "t2")]
    shapes = {k: (8, 4, 4) for k in ("in0", "in1", "t1", "t2")}
    cfg = DaeConfig()
    prog = build_dae_program(cfg, layers, [DaeTile(8, 8, 4, 4)] * 2, shapes, ["in0", "in1"],
                             ["t2"])
    lib = rt_library(RT_CFG)
    p, _keep = rt_program(prog.words, prog.weights, prog.arena_words)
    u64p = ctypes.POINTER(ctypes.c_uint64)
    arena = np.zeros(prog.arena_words, dtype=np.uint64)

    class Range(ctypes.Structure):
        _fields_ = [("word", ctypes.c_int64), ("words", ctypes.c_int64)]

    def check(inputs):
        ins = (Range * len(inputs))(*[Range(t.base, t.words) for t in inputs])
        out = prog.tensors["t2"]
        err = ctypes.create_string_buffer(512)
        rc = lib.zsq_rt_check_io(ctypes.byref(p), arena.ctypes.data_as(u64p), ins, len(inputs),
                                 ctypes.byref(Range(out.base, out.words)), 1, err, len(err))
        return rc, err.value.decode()

    t = prog.tensors
    assert check([t["in0"], t["in1"]]) == (0, "")
    rc, msg = check([t["in0"]])
    assert rc == -100 and "LOAD_INPUT/BYPASS" in msg and "input ranges" in msg, msg


def test_engine_without_the_residual_datapath():
    """The engine search builds the residual add's datapath (its LUTs) only for models
    that add a bypass; an engine without it refuses such layers: the tiler names it, the
    simulation returns -2."""
    from zynq_squeeze.boards import get_board
    from zynq_squeeze.schedule.select import choose_engine
    from zynq_squeeze.schedule.dae_resources import estimate

    rng = np.random.default_rng(0)
    plain = ConvLayer("p", (16, 8, 8), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    add = add_layer(rng, "a", (16, 8, 8), 16, 3, "in0")
    board = get_board("zybo-z7-20")
    assert choose_engine(board, [plain]).residual is False
    with_add = choose_engine(board, [plain, add])
    assert with_add.residual is True and with_add.bp_rows >= 8 * 8 * 1
    off = DaeConfig(residual=False)
    assert estimate(off).lut < estimate(DaeConfig()).lut
    assert "residual" in dae_tiling.overflow(off, add, DaeTile(16, 16, 8, 8))
    prog = _one_block(DaeConfig())
    arena = np.zeros(prog.arena_words, dtype=np.uint64)
    with pytest.raises(EngineError) as e:
        run_words(DaeConfig(residual=False), prog.words, prog.weights, arena)
    assert e.value.code == -2 and "without the residual add" in str(e.value)


@pytest.mark.parametrize("cfg", [TINY, DaeConfig()], ids=["tiny", "zybo"])
def test_bypass_is_the_conv_input(cfg):
    """y = relu(conv(x) + x): LOAD_INPUT and LOAD_BYPASS read the same tensor."""
    rng = np.random.default_rng(8)
    layer = add_layer(rng, "a", (24, 7, 5), 24, 3, "in0")
    shapes = {"in0": (24, 7, 5), "t1": (24, 7, 5)}
    for tile in dae_tiling.candidates(cfg, layer)[:3]:
        check_graph(cfg, [(layer, "in0", "t1")], [tile], shapes, ["in0"], ["t1"])
