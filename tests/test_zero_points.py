"""Unsigned activations (issue 11): a tensor after a ReLU is int8 with zero point -128.

``q = round(x / s) - 128`` with ``s = absmax / 255``: the full 8 bits for a nonnegative
tensor instead of [0, 127]. The engine takes the zero points as registers (LI_PAD: the
padding byte; RQ_ZP_OUT: added after ReLU; RQ_BP_ZP: the bypass's; RQ_AVG_BIAS: an
average's sum offset); the input's is folded into the conv bias at compile time. Here:
the engine against the numpy reference bit for bit with zero points in every layer kind
and tiling, the same through ``zynq_squeeze.build`` (padding after a ReLU, a fire, fused
and standalone pools, a residual add with a ReLU bypass, a concat), and the accuracy gain.
"""
import numpy as np
import pytest
from helpers import TINY, conv_params, depthwise_params, rand_input
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zynq_squeeze.codegen.dae_program import build_dae_program
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.quantize.layers import ConvAddLayer, ConvLayer, FireLayer, PoolLayer, PoolSpec
from zynq_squeeze.quantize.reference import avg_zero_point_reason, run_layer
from zynq_squeeze.quantize.requant import pool_multiplier, quantize_multiplier
from zynq_squeeze.schedule.dae_tiling import candidates
from zynq_squeeze.toolchain.dae_sim import run_program

HYP = settings(max_examples=25, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SMALL = DaeConfig(k=2, in_rows=512, w_rows=128, p_rows=16, acc_rows=512, cv_rows=512,
                  sq_rows=512, out_rows=512, residual=True)
ZP = -128


def zp_conv(rng, o, i, k, zp_in, zp_out, stride=1, pad=0, relu=True):
    p = conv_params(rng, o, i, k, stride=(stride, stride), pads=(pad,) * 4, relu=relu)
    p.zp_in, p.zp_out = zp_in, zp_out
    return p


def check(layer, cfg, tile_index, seed, bypass=False, hls_kernel=False):
    """One layer's program on random int8 input(s) equals the reference bit for bit
    (``hls_kernel``: the HLS loops with ap_int types instead of the host fast paths)."""
    rng = np.random.default_rng(seed)
    tiles = candidates(cfg, layer)
    tile = tiles[tile_index % len(tiles)]
    x = rand_input(rng, layer.in_shape)
    prog = build_dae_program(cfg, [layer], [tile])
    if bypass:
        from zynq_squeeze.codegen.dae_program import pack_tensor, unpack_tensor
        from zynq_squeeze.toolchain.dae_sim import run_words

        b = rand_input(rng, layer.out_shape)
        arena = np.zeros(prog.arena_words, dtype=np.uint64)
        for tid, v in ((prog.inputs[0], x), (prog.inputs[1], b)):
            t = prog.tensors[tid]
            arena[t.base:t.base + t.words] = pack_tensor(v)
        res = run_words(cfg, prog.words, prog.weights, arena, hls_kernel=hls_kernel)
        t = prog.tensors[prog.outputs[0]]
        y = unpack_tensor(res.arena[t.base:t.base + t.words], t.c, t.h, t.w)
        want = run_layer(layer, x, b)
    else:
        y, _ = run_program(prog, x, hls_kernel=hls_kernel)
        want = run_layer(layer, x)
    assert np.array_equal(y, want), f"{int(np.sum(y != want))} mismatches, tile {tile}"
    return prog


def _zp_sets(words) -> set[int]:
    d = [isa.decode(int(w)) for w in words]
    return {x.reg for x in d if x.op == isa.OP_SET and x.reg in (isa.LI_PAD, isa.RQ_ZP_OUT, isa.RQ_BP_ZP, isa.RQ_AVG_BIAS)}


# -- the layers, engine against reference --------------------------------------------------
@HYP
@given(seed=st.integers(0, 2 ** 31), k=st.sampled_from([1, 3, 5]), stride=st.integers(1, 2),
       zp_in=st.sampled_from([0, ZP]), zp_out=st.sampled_from([0, ZP]),
       pool=st.sampled_from([None, "max", "gavg"]), tile=st.integers(0, 50),
       relu=st.booleans())
def test_conv_with_zero_points_bit_exact(seed, k, stride, zp_in, zp_out, pool, tile, relu):
    rng = np.random.default_rng(seed)
    c, o = int(rng.integers(1, 20)), int(rng.integers(1, 24))
    h, w = int(rng.integers(k, 12)), int(rng.integers(k, 12))
    spec = {None: None, "max": PoolSpec("max", (2, 2), (2, 2), ceil_mode=True),
            "gavg": PoolSpec("avg", global_pool=True)}[pool]
    layer = ConvLayer("c", (c, h, w), zp_conv(rng, o, c, k, zp_in, zp_out, stride, k // 2, relu),
                      spec)
    prog = check(layer, TINY, tile, seed)
    want = {r for r, z in ((isa.LI_PAD, zp_in and k > 1), (isa.RQ_ZP_OUT, zp_out),
                           (isa.RQ_AVG_BIAS, zp_out and pool == "gavg")) if z}
    assert want <= _zp_sets(prog.words)


def test_padding_is_the_zero_point():
    """A 3x3 pad-1 conv on a tensor that is all real 0 (int8 -128 at zero point -128):
    the padding is real 0 too, so every pixel of a channel -- border or not -- is the
    same; with 0 as padding the border would differ. Engine = reference."""
    rng = np.random.default_rng(5)
    p = zp_conv(rng, 16, 8, 3, ZP, ZP, pad=1)
    p.weight[:] = np.abs(p.weight) // 2 + 1  # positive weights: a wrong pad shows
    p.mult, p.shift = quantize_multiplier(np.full(16, 1 / 256))
    b = rng.integers(0, 20000, 16)  # real 0 in -> R(b) out; the fold: b - zp * sum(w)
    p.bias = (b + 128 * p.weight.astype(np.int64).sum(axis=(1, 2, 3))).astype(np.int32)
    layer = ConvLayer("c", (8, 6, 7), p)
    x = np.full(layer.in_shape, ZP, np.int8)
    y, _ = run_program(build_dae_program(TINY, [layer], [candidates(TINY, layer)[-1]]), x)
    assert np.array_equal(y, run_layer(layer, x))
    assert np.all(y == y[:, :1, :1]), "border pixels differ from the interior"
    assert np.array_equal(y[:, 0, 0], np.clip((b + 128) // 256 - 128, -128, 127))
    p0 = zp_conv(rng, 16, 8, 3, 0, ZP, pad=1)
    p0.weight, p0.bias = p.weight, p.bias
    y0 = run_layer(ConvLayer("c0", (8, 6, 7), p0), x)  # the same conv, padding 0
    assert not np.all(y0 == y0[:, :1, :1])


@HYP
@given(seed=st.integers(0, 2 ** 31), tile=st.integers(0, 50), pool=st.booleans(),
       zp_in=st.sampled_from([0, ZP]))
def test_fire_with_zero_points_bit_exact(seed, tile, pool, zp_in):
    """The squeeze output (sq_buf) with zero point -128: its halo (expand3's padding) is
    -128; both expands read it and write -128-based outputs (+ a fused max pool)."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(3, 20)), int(rng.integers(3, 10)), int(rng.integers(3, 10))
    s, e1, e3 = int(rng.integers(2, 12)), 8 * int(rng.integers(1, 3)), int(rng.integers(1, 20))
    layer = FireLayer("f", (c, h, w), zp_conv(rng, s, c, 1, zp_in, ZP),
                      zp_conv(rng, e1, s, 1, ZP, ZP), zp_conv(rng, e3, s, 3, ZP, ZP, pad=1),
                      PoolSpec("max", (3, 3), (2, 2), ceil_mode=True) if pool else None)
    check(layer, TINY, tile, seed)


@HYP
@given(seed=st.integers(0, 2 ** 31), tile=st.integers(0, 50), stride=st.integers(1, 2))
def test_depthwise_with_zero_points_bit_exact(seed, tile, stride):
    rng = np.random.default_rng(seed)
    c = 8 * int(rng.integers(1, 5))
    p = depthwise_params(rng, c, 3, stride=stride, pad=1)
    p.zp_in, p.zp_out = ZP, ZP
    check(ConvLayer("dw", (c, int(rng.integers(3, 11)), int(rng.integers(3, 11))), p), SMALL,
          tile, seed)


@HYP
@given(seed=st.integers(0, 2 ** 31), tile=st.integers(0, 50),
       kind=st.sampled_from(["max", "avg", "gavg", "copy"]), zp_out=st.sampled_from([0, ZP]))
def test_standalone_pool_with_zero_points_bit_exact(seed, tile, kind, zp_out):
    """A standalone max pool keeps the zero point; an average (windowed, global, or a
    1x1 copy into a concat slot) offsets its sums by -d * zp_in and adds zp_out."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 40)), int(rng.integers(3, 12)), int(rng.integers(3, 12))
    spec = {"max": PoolSpec("max", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True),
            "avg": PoolSpec("avg", (2, 2), (2, 2)), "gavg": PoolSpec("avg", global_pool=True),
            "copy": PoolSpec("avg")}[kind]
    mult = shift = None
    if kind != "max":
        d = spec.avg_divisor(h, w)
        mult, shift = pool_multiplier(d) if kind != "copy" else (20000, 15)
    layer = PoolLayer("p", (c, h, w), spec, mult, shift, zp_in=ZP,
                      zp_out=ZP if kind == "max" else zp_out)
    check(layer, TINY, tile, seed)


@pytest.mark.parametrize("zp_b,zp_out,relu", [(ZP, ZP, True), (ZP, 0, False), (0, ZP, True)])
def test_residual_add_with_zero_points_bit_exact(zp_b, zp_out, relu):
    """ResNet's bypass is a ReLU output (zero point -128): the term R(b - bp_zp)."""
    rng = np.random.default_rng(7)
    for k, seed in enumerate(range(4)):
        conv = zp_conv(rng, 24, 16, 3, ZP, zp_out, pad=1, relu=relu)
        layer = ConvAddLayer("a", (16, 7, 9), conv, bypass=None, bp_mult=20000, bp_shift=15,
                             bp_zp=zp_b)
        prog = check(layer, SMALL, 3 * k, seed, bypass=True)
        assert (isa.RQ_BP_ZP in _zp_sets(prog.words)) == bool(zp_b)


def test_hls_kernel_with_zero_points_bit_exact():
    """The synthesized loops (ap_int, no host fast path): LOAD_INPUT's pad word, the
    fire's halo, the lane's zero points, an average's sum offset, the bypass's."""
    rng = np.random.default_rng(3)
    layers = [
        ConvLayer("c", (5, 7, 6), zp_conv(rng, 12, 5, 3, ZP, ZP, pad=1),
                  PoolSpec("max", (2, 2), (2, 2), ceil_mode=True)),
        ConvLayer("g", (8, 5, 5), zp_conv(rng, 16, 8, 3, ZP, ZP, pad=1),
                  PoolSpec("avg", global_pool=True)),
        FireLayer("f", (6, 5, 7), zp_conv(rng, 5, 6, 1, ZP, ZP), zp_conv(rng, 8, 5, 1, ZP, ZP),
                  zp_conv(rng, 7, 5, 3, ZP, ZP, pad=1)),
        PoolLayer("p", (12, 6, 6), PoolSpec("avg", (2, 2), (2, 2)), *pool_multiplier(4),
                  zp_in=ZP, zp_out=ZP)]
    for k, layer in enumerate(layers):
        check(layer, TINY, k, k, hls_kernel=True)
    add = ConvAddLayer("a", (8, 5, 6), zp_conv(rng, 16, 8, 3, ZP, ZP, pad=1), bypass=None,
                       bp_mult=20000, bp_shift=15, bp_zp=ZP)
    check(add, SMALL, 1, 9, bypass=True, hls_kernel=True)


def test_symmetric_programs_have_no_zero_point_sets():
    """Zero points 0: no new SET, the program is the symmetric one word for word."""
    rng = np.random.default_rng(1)
    layer = ConvLayer("c", (8, 9, 9), zp_conv(rng, 16, 8, 3, 0, 0, pad=1),
                      PoolSpec("avg", global_pool=True))
    assert not _zp_sets(build_dae_program(TINY, [layer], [candidates(TINY, layer)[0]]).words)


def test_average_pool_that_counts_padding_refuses_a_zero_point():
    spec = PoolSpec("avg", (3, 3), (1, 1), (1, 1, 1, 1), count_include_pad=True)
    assert avg_zero_point_reason(spec, 6, 6) is not None
    assert avg_zero_point_reason(PoolSpec("avg", (2, 2), (2, 2)), 6, 6) is None
    layer = PoolLayer("p", (8, 6, 6), spec, zp_in=ZP, zp_out=ZP)
    with pytest.raises(ValueError, match="padding"):
        build_dae_program(TINY, [layer], [candidates(TINY, layer)[0]])


# -- through zynq_squeeze.build -------------------------------------------------------------
import onnxruntime as ort  # noqa: E402
import tvm  # noqa: E402
from onnx_graphs import GraphBuilder, inception_net, resnet_net, small_fire_net  # noqa: E402

import zynq_squeeze  # noqa: E402
from zynq_squeeze.codegen import golden  # noqa: E402
from zynq_squeeze.codegen.lower import lower_function  # noqa: E402
from zynq_squeeze.frontend import from_onnx  # noqa: E402


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def deep_relu_net(shape=(1, 3, 16, 16)):
    """Eight conv 3x3 pad 1 + ReLU (padding after a ReLU everywhere), an average pool
    2x2, a max pool, a 1x1 conv with ReLU: one offloaded function whose output is a ReLU's
    (the glue dequantizes with the zero point)."""
    g = GraphBuilder(shape, seed=11)
    for c in (16, 16, 24, 24, 32, 32, 32, 32):
        g.conv(c, 3, pad=1)
    g.avgpool(2, 2)
    g.maxpool(3, 2, ceil=1)
    g.conv(24, 1)
    return g.model()


MODELS = {"deep_relu": deep_relu_net, "fire": small_fire_net, "resnet": resnet_net,
          "inception": inception_net}


def _input_shape(model):
    return tuple(max(d.dim_value, 1) for d in model.graph.input[0].type.tensor_type.shape.dim)


@pytest.mark.parametrize("name", list(MODELS))
def test_build_bit_exact_with_zero_points(name, tmp_path):
    """Through zynq_squeeze.build: the model's offloaded functions hold -128 tensors
    (ReLU outputs: padded convs, fires, pools, the residual bypass, the concat's parts),
    the compiled model equals the golden model bit for bit, and tracks onnxruntime."""
    model = MODELS[name]()
    shape = _input_shape(model)
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(6)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    fns = res.codegen[0].functions
    zps = [info.zero_point for lf in fns for info in lf.tensors.values()]
    assert zps.count(ZP) >= 2, zps
    assert all(lf.tensors[t].zero_point == 0 for lf in fns for t in lf.inputs)
    kinds = {layer.kind for lf in fns for layer, _, _ in lf.layers}
    if name == "resnet":
        adds = [layer for lf in fns for layer, _, _ in lf.layers if layer.kind == "conv_add"]
        assert any(a.bp_zp == ZP for a in adds), "no residual add reads a ReLU bypass"
    if name == "fire":
        assert "fire" in kinds
    if name == "inception":
        assert any(lf.views for lf in fns) and "pool" in kinds
    by_shape = {tuple(lf.input_shapes[0]): lf for lf in fns}
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    for _ in range(2):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        if x.shape in by_shape and len(fns) == 1:  # the whole model is one function
            want = golden.run_function(by_shape[x.shape], [x])[0]
            np.testing.assert_array_equal(y, want.reshape(y.shape))
        assert cosine(y, sess.run(None, {"x": x})[0]) >= 0.99


def _golden_cosines(model, unsigned: bool, runs=4) -> list[float]:
    """Cosine of the golden model (one offloaded function) against onnxruntime with or
    without zero points (the same calibration)."""
    from zynq_squeeze.partitioning.partitioner import partition_with_report

    shape = _input_shape(model)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(8)]
    mod = zynq_squeeze.calibrate(from_onnx(model), calib, progress=False)
    pmod, _ = partition_with_report(mod)
    fns = [lower_function(f, unsigned) for f in pmod.functions.values()
           if f.attrs is not None and "Codegen" in f.attrs]
    assert len(fns) == 1
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = []
    for _ in range(runs):
        x = rng.standard_normal(shape).astype(np.float32)
        out.append(cosine(golden.run_function(fns[0], [x])[0], sess.run(None, {"x": x})[0]))
    return out


def test_zero_points_reduce_the_error():
    """The same model and calibration, the ReLU outputs at zero point -128 against all
    symmetric: the error (1 - cosine) shrinks (each such tensor gains ~6 dB)."""
    model = deep_relu_net()
    on, off = _golden_cosines(model, True), _golden_cosines(model, False)
    err_on, err_off = 1 - float(np.mean(on)), 1 - float(np.mean(off))
    assert err_on < 0.6 * err_off, (on, off)
