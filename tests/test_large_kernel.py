"""Large kernels and strides on the accelerator (issue 11, item 5): AlexNet's 11x11
stride-4 conv1 and every kernel 1..11 x stride 1..4 are offloaded, bit-exact with the
golden model, close to onnxruntime, and timed by the fast model exactly as the C
simulation executes them."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from helpers import conv_params, rand_input
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx_graphs import GraphBuilder
from test_timing import assert_same
from tvm import relax

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.codegen.dae_program import build_dae_program
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import patterns
from zynq_squeeze.quantize.layers import ConvLayer, PoolSpec
from zynq_squeeze.quantize.reference import run_chain
from zynq_squeeze.schedule.dae_tiling import default_tile, overflow
from zynq_squeeze.schedule.timing import simulate
from zynq_squeeze.toolchain.dae_sim import run_program

ALEX_SHAPE = (1, 3, 224, 224)


def alexnet_conv1():
    """AlexNet's first layer: conv 3->64 11x11 stride 4 pad 2, ReLU, max pool 3x3 stride 2."""
    g = GraphBuilder(ALEX_SHAPE, seed=5)
    g.conv(64, 11, stride=4, pad=2)
    g.maxpool(3, 2, ceil=0)
    return g.model()


def _cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def alexnet():
    model = alexnet_conv1()
    mod = from_onnx(model)
    rng = np.random.default_rng(0)
    samples = [rng.standard_normal(ALEX_SHAPE).astype(np.float32) for _ in range(2)]
    return model, zynq_squeeze.calibrate(mod, samples, progress=False)


def test_alexnet_conv1_offloaded_bit_exact_and_close_to_onnxruntime(alexnet, tmp_path):
    model, cal = alexnet
    _, rep = zynq_squeeze.partition(cal)
    assert rep.patterns == {patterns.CONV_POOL: 1} and rep.offload_ratio == 1.0, rep
    assert not rep.cpu_ops
    x = np.random.default_rng(3).standard_normal(ALEX_SHAPE).astype(np.float32)
    # the public entry point: plain tvm.compile for the target
    ex = tvm.compile(cal, target="zynq-squeeze")
    y = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()
    ref = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert y.shape == ref.shape == (1, 64, 27, 27)
    assert _cosine(y, ref) >= 0.99
    # the same calibration through build(): the same bits, equal to the golden model
    res = zynq_squeeze.build(cal, out_dir=tmp_path)
    lf = res.codegen[0].functions[0]
    (layer, _, _), = lf.layers
    assert (layer.conv.kernel, layer.conv.stride) == ((11, 11), (4, 4))
    y2 = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(y2, golden.run_function(lf, [x])[0])


def test_alexnet_conv1_fast_model_equals_simulation():
    rng = np.random.default_rng(1)
    cfg = DaeConfig()
    layer = ConvLayer("conv1", (3, 224, 224),
                      conv_params(rng, 64, 3, 11, stride=(4, 4), pads=(2, 2, 2, 2)),
                      PoolSpec("max", (3, 3), (2, 2)))
    assert layer.out_shape == (64, 27, 27)
    tile = default_tile(cfg, layer)
    prog = build_dae_program(cfg, [layer], [tile])
    tm, res = assert_same(cfg, prog, rng, 100)
    assert tm.macs == res.macs >= layer.macs  # array slots, channel padding included


@st.composite
def kernel_stride_layer(draw):
    k = draw(st.integers(1, 11))
    s = draw(st.integers(1, 4))
    pad = draw(st.integers(0, k // 2))
    h = draw(st.integers(max(k - 2 * pad, 1), k + 10))
    w = draw(st.integers(max(k - 2 * pad, 1), k + 10))
    c = draw(st.sampled_from([1, 3, 5, 9, 16]))  # few channels: first-layer patches too
    oc = draw(st.integers(1, 30))
    pool = draw(st.booleans())
    return k, s, pad, (c, h, w), oc, pool, draw(st.integers(0, 1000))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(kernel_stride_layer(), st.sampled_from([DaeConfig(), DaeConfig(k=1, in_rows=512)]))
def test_kernel_stride_fast_model_equals_simulation(case, cfg):
    k, s, pad, shape, oc, pool, seed = case
    rng = np.random.default_rng(seed)
    layer = ConvLayer("c", shape, conv_params(rng, oc, shape[0], k, stride=(s, s),
                                              pads=(pad,) * 4))
    _, oh, ow = layer.out_shape
    if pool and min(oh, ow) >= 3:
        layer = ConvLayer("c", shape, layer.conv, PoolSpec("max", (3, 3), (2, 2),
                                                             ceil_mode=True))
    tile = default_tile(cfg, layer)
    assert overflow(cfg, layer, tile) is None
    prog = build_dae_program(cfg, [layer], [tile])
    x = rand_input(rng, shape)
    y, res = run_program(prog, x)
    np.testing.assert_array_equal(y, run_chain([layer], x))  # bit-exact
    tm = simulate(cfg, prog.words, 100)  # the fast model = the executed timing
    assert tm.cycles == res.cycles
    np.testing.assert_array_equal(tm.insn_end, res.insn_end)
    assert tm.busy == (res.load_busy, res.compute_busy, res.store_busy)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(kernel_stride_layer())
def test_kernel_stride_compiled_bit_exact(tmp_path_factory, case):
    k, s, pad, (c, h, w), oc, pool, seed = case
    g = GraphBuilder((1, c, h, w), seed=seed)
    g.conv(oc, k, stride=s, pad=pad)
    oh, ow = ((h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1)
    if pool and min(oh, ow) >= 3:
        g.maxpool(3, 2, ceil=1)
    mod = from_onnx(g.model())
    rng = np.random.default_rng(seed)
    calib = [rng.standard_normal((1, c, h, w)).astype(np.float32) for _ in range(2)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path_factory.mktemp("ks"))
    assert res.partition_report.offload_ratio == 1.0, res.partition_report
    x = rng.standard_normal((1, c, h, w)).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    lf = res.codegen[0].functions[0]
    np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0])
