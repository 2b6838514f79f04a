"""Depthwise and grouped convolution on the engine (issue 11 item 3).

A depthwise conv (groups = C_in = C_out) is one CONV_DW per oc tile: the MAC array's rows
take their own channel group's activation word, PE_OC channels x one kernel tap per cycle.
A grouped conv whose groups have multiples of 8 channels is one conv per group on channel
slices. Both: simulation bit-exact with the numpy golden model, timing equal to the fast
model, tiles from the tiler; through tvm.compile a MobileNetV2 inverted residual block
(without its residual add) is one offloaded function, bit-exact and within cosine 0.99 of
onnxruntime."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from tvm import relax
from helpers import conv_params, depthwise_params, grouped_params, rand_input
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from onnx_graphs import GraphBuilder
from test_cleanup import batch_norm, clip
from test_robust_runtime import validate as validate  # noqa: F401 (a fixture)

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.codegen.dae_program import build_dae_program, pack_dw_block, reference_chain
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig, DaeTile
from zynq_squeeze.errors import EngineError
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import patterns
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec, layer_signature
from zynq_squeeze.quantize.reference import conv_acc
from zynq_squeeze.schedule import dae_resources
from zynq_squeeze.schedule.dae_tiling import candidates, default_tile, needs, overflow
from zynq_squeeze.schedule.instructions import conv_blocks
from zynq_squeeze.schedule.timing import layer_cycles, simulate
from zynq_squeeze.toolchain.dae_sim import run_program, run_words

HYP = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SMALL = DaeConfig(k=1, in_rows=256, w_rows=64, p_rows=8, acc_rows=256, cv_rows=256,
                  sq_rows=256, out_rows=256)


def run_and_check(cfg, layers, tiles, seed=0):
    """Simulation == golden model, bit for bit; executed timing == the fast model, per
    instruction."""
    rng = np.random.default_rng(seed)
    x = rand_input(rng, layers[0].in_shape)
    prog = build_dae_program(cfg, layers, tiles)
    y, res = run_program(prog, x)
    np.testing.assert_array_equal(y, reference_chain(layers, x))
    t = simulate(cfg, prog.words)
    assert res.cycles == t.cycles
    np.testing.assert_array_equal(res.insn_end, t.insn_end)
    assert res.macs == t.macs
    return prog, res


# --------------------------------------------------------------------------- golden model
def test_reference_depthwise_and_grouped_are_per_group_convolutions():
    rng = np.random.default_rng(0)
    x = rand_input(rng, (16, 6, 7))
    p = depthwise_params(rng, 16, 3, 2, 1)
    acc = conv_acc(p, x)
    xp = np.pad(x.astype(np.int64), ((0, 0), (1, 1), (1, 1)))
    for c in (0, 5, 15):
        for oy, ox in ((0, 0), (1, 2), (2, 3)):
            win = xp[c, 2 * oy:2 * oy + 3, 2 * ox:2 * ox + 3]
            assert acc[c, oy, ox] == int((win * p.weight[c, 0]).sum()) + int(p.bias[c])
    g = grouped_params(rng, 24, 16, 2, 1)
    acc = conv_acc(g, x)
    w = g.weight.astype(np.int64)[:, :, 0, 0]
    full = np.zeros((24, 16), np.int64)
    full[:12, :8], full[12:, 8:] = w[:12], w[12:]
    ref = np.einsum("oc,chw->ohw", full, x.astype(np.int64)) + g.bias.reshape(-1, 1, 1)
    np.testing.assert_array_equal(acc, ref)


def test_depthwise_weight_block_has_one_byte_per_row():
    rng = np.random.default_rng(1)
    p = depthwise_params(rng, 20, 3)
    (b,) = conv_blocks(p, 24, 24, 24)
    words = pack_dw_block(p.weight, b, 24).view(np.int8).reshape(1, 3, 3, 24, 8)
    for o in range(24):
        lane = words[0, :, :, o]
        if o < 20:
            np.testing.assert_array_equal(lane[:, :, o % 8], p.weight[o, 0])
        assert np.count_nonzero(np.delete(lane, o % 8, axis=-1)) == 0
        if o >= 20:
            assert np.count_nonzero(lane) == 0


# --------------------------------------------------------------------------- simulation
@st.composite
def depthwise_layers(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    c = draw(st.sampled_from([8, 13, 16, 24, 40, 64]))
    k = draw(st.sampled_from([3, 3, 5, 7]))
    s = draw(st.sampled_from([1, 2, 2, 3, 4]))
    pad = draw(st.integers(0, k // 2))
    h, w = draw(st.integers(k, 13)), draw(st.integers(k, 13))
    pool = draw(st.sampled_from([None, None, PoolSpec("max", (2, 2), (2, 2))]))
    layer = ConvLayer("dw", (c, h, w), depthwise_params(rng, c, k, s, pad,
                                                         relu=draw(st.booleans())), pool)
    return layer


@HYP
@given(layer=depthwise_layers(), k=st.sampled_from([1, 2, 3]), data=st.data())
def test_depthwise_is_bit_exact_for_any_fitting_tile(layer, k, data):
    try:
        out = layer.out_shape
    except ValueError:
        assume(False)
    assume(min(out[1:]) >= 1)
    cfg = DaeConfig(k=k) if data.draw(st.booleans(), label="full") else \
        DaeConfig(k=k, in_rows=256, w_rows=64, p_rows=8, acc_rows=256, cv_rows=256,
                  sq_rows=256, out_rows=256)
    fits = candidates(cfg, layer)
    assume(fits)
    tile = data.draw(st.sampled_from(fits), label="tile")
    assert overflow(cfg, layer, tile) is None
    prog, res = run_and_check(cfg, [layer], [tile], seed=k)
    # a depthwise tap is one product per MAC row: pe_oc MACs per CONV iteration
    conv_insns = [w for w in prog.words.tolist() if w & 15 == isa.OP_CONV]
    assert conv_insns and all(w & isa.CONV_DW for w in conv_insns)
    assert res.macs % cfg.pe_oc == 0
    if layer.pool is None:  # (a floor-mode pool skips the conv rows it never reads)
        assert res.macs >= layer.macs


@st.composite
def grouped_layers(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    g = draw(st.sampled_from([2, 3, 4]))
    ig, og = draw(st.sampled_from([8, 16, 24])), draw(st.sampled_from([8, 16, 24, 48]))
    k = draw(st.sampled_from([1, 3]))
    s = draw(st.sampled_from([1, 2]))
    pad = 1 if k == 3 else 0
    h, w = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    return ConvLayer("g", (g * ig, h, w), grouped_params(rng, g * og, g * ig, g, k, (s, s),
                                                         (pad,) * 4))


@HYP
@given(layer=grouped_layers(), k=st.sampled_from([1, 2, 3]), data=st.data())
def test_grouped_is_bit_exact_for_any_fitting_tile(layer, k, data):
    cfg = DaeConfig(k=k)
    fits = candidates(cfg, layer)
    assume(fits)
    tile = data.draw(st.sampled_from(fits), label="tile")
    prog, _ = run_and_check(cfg, [layer], [tile], seed=k)
    og = layer.conv.group_out
    stores = sum(1 for w in prog.words.tolist() if w & 15 == isa.OP_STORE)
    tiles = len({(o0, p0) for o0 in range(0, layer.out_shape[1], tile.th)
                 for p0 in range(0, layer.out_shape[2], tile.tw)})
    # contiguous group regions: one STORE per tile, else one per group (at its ST_G0)
    assert stores == tiles * (1 if og % cfg.pe_oc == 0 else layer.conv.groups)


def test_inverted_residual_chain_in_one_program():
    """expand 1x1 + ReLU, depthwise 3x3 stride 2 + ReLU, project 1x1 linear: one program,
    the depthwise layer an ordinary layer of the chain."""
    rng = np.random.default_rng(3)
    e = ConvLayer("expand", (16, 12, 12), conv_params(rng, 96, 16, 1))
    d = ConvLayer("dw", e.out_shape, depthwise_params(rng, 96, 3, 2, 1))
    p = ConvLayer("project", d.out_shape, conv_params(rng, 24, 96, 1, relu=False))
    for cfg in (SMALL, DaeConfig()):
        layers = [e, d, p]
        run_and_check(cfg, layers, [default_tile(cfg, layer) for layer in layers])


def test_depthwise_timing_model_equals_simulation_per_layer():
    rng = np.random.default_rng(4)
    cfg = DaeConfig()
    for c, k, s in ((32, 3, 1), (144, 3, 2), (96, 5, 1)):
        layer = ConvLayer("dw", (c, 14, 14), depthwise_params(rng, c, k, s, k // 2))
        tile = default_tile(cfg, layer)
        _, res = run_and_check(cfg, [layer], [tile])
        assert layer_cycles(cfg, layer, tile) == res.cycles
        # a depthwise layer keeps every output row busy: at most one cycle per tap and
        # pe_oc channels, plus the tile overheads
        assert res.macs / cfg.pe_oc <= res.compute_busy


def test_signature_tells_depthwise_from_dense():
    rng = np.random.default_rng(5)
    dw = ConvLayer("a", (16, 8, 8), depthwise_params(rng, 16, 3, 1, 1))
    dense = ConvLayer("b", (16, 8, 8), conv_params(rng, 16, 16, 3, pads=(1,) * 4))
    assert layer_signature(dw) != layer_signature(dense)


def test_depthwise_tiles_have_their_own_needs():
    rng = np.random.default_rng(6)
    cfg = DaeConfig()
    layer = ConvLayer("dw", (192, 28, 28), depthwise_params(rng, 192, 3, 1, 1))
    n = needs(cfg, layer, DaeTile(48, 48, 28, 28))
    assert n["w_buf"] == 2 * 9          # one word per channel and tap
    assert n["in_buf"] == 30 * 30 * 2   # the oc tile's own 6 groups: 2 rows per pixel
    assert {t.tic for t in candidates(cfg, layer)} == {192}  # no input-channel step


def test_depthwise_step_with_input_groups_is_refused():
    rng = np.random.default_rng(7)
    layer = ConvLayer("dw", (16, 6, 6), depthwise_params(rng, 16, 3, 1, 1))
    prog = build_dae_program(SMALL, [layer], [default_tile(SMALL, layer)])
    words = prog.words.tolist()
    i = next(j for j, w in enumerate(words) if w & 15 == isa.OP_CONV)
    bad = words[:i] + [isa.set_reg(isa.CV_NG, 2)] + words[i:]
    with pytest.raises(EngineError, match="depthwise step has CV_NG = 1"):
        run_words(SMALL, bad, prog.weights, np.zeros(prog.arena_words, np.uint64))


def test_depthwise_adds_no_dsp():
    use = dae_resources.estimate(DaeConfig())
    assert use.dsp_by["mac"] == 24 * 8 and use.dsp == 216


# --------------------------------------------------------------------------- end to end
def inverted_residual(shape, expand, out, stride, seed=0):
    """MobileNetV2 block without the residual add: 1x1 expand + BN + ReLU6, 3x3 depthwise
    + BN + ReLU6, 1x1 project + BN (linear)."""
    g = GraphBuilder(shape, seed=seed, opset=13)
    for kind in ("expand", "dw", "project"):
        if kind == "dw":
            g.conv(g.c, 3, stride=stride, pad=1, bias=False, relu=False, group=g.c)
        else:
            g.conv(expand if kind == "expand" else out, 1, bias=False, relu=False)
        batch_norm(g)
        if kind != "project":
            clip(g, 0.0, 6.0)
    return g.model()


@pytest.mark.parametrize("stride", [1, 2])
def test_inverted_residual_block_offloads_bit_exact(stride, tmp_path):
    shape = (1, 16, 14, 14)
    model = inverted_residual(shape, 64, 24, stride, seed=stride)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(8)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    rep = res.partition_report
    assert rep.cpu_ops == [], rep.cpu_ops
    assert rep.patterns == {patterns.CONV: 3}
    assert len(res.codegen[0].functions) == 1
    lf = res.codegen[0].functions[0]
    assert [layer.conv.depthwise for layer, _, _ in lf.layers] == [False, True, False]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    # the plain TVM entry point compiles the same accelerator program
    cal = zynq_squeeze.calibrate(from_onnx(model), [c[0] for c in calib], progress=False)
    vm_tvm = relax.VirtualMachine(tvm.compile(cal, target="zynq-squeeze"), tvm.cpu())
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        np.testing.assert_array_equal(vm_tvm["main"](tvm.runtime.tensor(x)).numpy(), y)
        r = sess.run(None, {"x": x})[0]
        cos = float(y.ravel() @ r.ravel() / (np.linalg.norm(y) * np.linalg.norm(r)))
        assert cos >= 0.99, cos


def _cpu_reasons(model):
    return [op.reason for op in zynq_squeeze.partition(from_onnx(model))[1].cpu_ops]


def test_grouped_conv_with_small_groups_stays_on_cpu_with_the_group_sizes():
    g = GraphBuilder((1, 16, 8, 8), seed=0)
    g.conv(16, 3, pad=1, group=4)  # 4 input / 4 output channels per group
    reasons = _cpu_reasons(g.model())
    assert any("4 input / 4 output channels per group" in r for r in reasons), reasons
    g = GraphBuilder((1, 8, 8, 8), seed=0)
    g.conv(16, 3, pad=1, group=8)  # depthwise with multiplier 2
    reasons = _cpu_reasons(g.model())
    assert any("1 input / 2 output channels per group" in r for r in reasons), reasons


def test_grouped_conv_offloads_bit_exact(tmp_path):
    from test_cleanup import build_and_compare

    g = GraphBuilder((1, 16, 9, 9), seed=3)
    g.conv(32, 3, pad=1, group=2)
    g.conv(32, 3, stride=2, pad=1, group=32)
    build_and_compare(g.model(), (1, 16, 9, 9), tmp_path, n=2, n_calib=8)


def test_runtime_validator_refuses_a_depthwise_step_with_input_groups(validate):
    """zsq_rt_validate (the board's only guard) checks the CONV_DW form too."""
    rng = np.random.default_rng(8)
    layer = ConvLayer("dw", (16, 6, 6), depthwise_params(rng, 16, 3, 1, 1))
    prog = build_dae_program(SMALL, [layer], [default_tile(SMALL, layer)])
    words = prog.words.tolist()
    assert validate(words, prog.weights, prog.arena_words)[0] == 0
    i = next(j for j, w in enumerate(words) if w & 15 == isa.OP_CONV)
    rc, msg = validate(words[:i] + [isa.set_reg(isa.CV_NG, 2)] + words[i:], prog.weights,
                       prog.arena_words)
    assert rc == -106 and "depthwise step has CV_NG = 1" in msg, (rc, msg)


def test_tuning_space_has_depthwise_tiles():
    """The tuner's per-layer tiles for a depthwise layer: no input-channel step, each
    within the engine's buffers; the default candidate passes the tuner's check."""
    from zynq_squeeze.tuning.space import TuneSpace, check_candidate
    from zynq_squeeze.tuning.task import make_task

    task = make_task(from_onnx(inverted_residual((1, 16, 14, 14), 64, 24, 2)), "zybo-z7-20")
    space = TuneSpace(task, ks=(3,), clocks=(100.0,))
    dws = [i for i, layer in enumerate(task.layers) if layer.conv.depthwise]
    assert dws
    for i in dws:
        tiles = space.tiles[3][i]
        assert tiles and all(t.tic == task.layers[i].conv.in_channels for t in tiles)
    assert check_candidate(task, space.default()) is None


def test_mobilenet_v2_offloads_every_mac():
    """torchvision's MobileNetV2 graph (BatchNorm, ReLU6, depthwise, residual Add,
    classifier): every conv, the Gemm and the 10 residual adds of the 17 blocks on the
    accelerator (with the residual add merged, the adds are conv_add composites). Before:
    the first add of each stage, ``x + conv(x)`` with ``x`` the previous block's linear
    projection (a conv output also read by the next expand conv), was matched with ``x``
    as its conv operand, refused, and left on the CPU (5 of the 10)."""
    from onnx_graphs import mobilenet_v2

    _, rep = zynq_squeeze.partition(from_onnx(mobilenet_v2((1, 3, 64, 64), classes=10)))
    assert rep.macs_offloaded == rep.macs_total > 0
    assert rep.cpu_ops == [], [(op.name, op.reason) for op in rep.cpu_ops]
