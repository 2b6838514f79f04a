"""What kept the light zoo's inception models apart (issue 11): average pools whose windows
hold different element counts, the classifier's Reshape/Flatten after the global pool, and
LRN (on the CPU, with its reason, the rest merging around it).

* An average pool without count_include_pad (ONNX's default) and with padding, or with
  ceil-mode overhang, divides border windows by fewer elements: the lowering gives every
  run of windows with one divisor its own POOL + REQUANT by that divisor's constant
  (``schedule.instructions._pool``), fused after a conv or standalone.
* A fully connected layer reading a Reshape/Flatten of an (N, K, 1, 1) tensor takes the
  flatten into its pattern (the same bytes in the engine's layout), so the classifier joins
  the function that computes the global pool.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from helpers import TINY, conv_params, rand_input
from onnx import helper, numpy_helper
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.codegen.dae_program import build_dae_program, reference_chain
from zynq_squeeze.engine import isa
from zynq_squeeze.engine.dae_config import DaeConfig
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import patterns
from zynq_squeeze.quantize.layers import ConvLayer, PoolLayer, PoolSpec
from zynq_squeeze.schedule.dae_tiling import candidates
from zynq_squeeze.schedule.timing import simulate
from zynq_squeeze.toolchain.dae_sim import run_program

CFG2 = DaeConfig(k=2, in_rows=512, w_rows=128, p_rows=16, acc_rows=512, cv_rows=512,
                 sq_rows=512, out_rows=512)
# GoogLeNet-BN's branch pool (light_inception_v2): 3x3 stride 1 pad 1, padding not counted
EXCL_PAD = PoolSpec("avg", (3, 3), (1, 1), (1, 1, 1, 1))
OVERHANG = PoolSpec("avg", (3, 3), (2, 2), ceil_mode=True)  # on 10: a last window of 2 x 3


def _pools(words) -> int:
    return sum(1 for w in words if int(w) & 0xF == isa.OP_POOL)


def _run(layers, tiles, cfg, hls_kernel=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rand_input(rng, layers[0].in_shape)
    prog = build_dae_program(cfg, layers, tiles)
    y, res = run_program(prog, x, hls_kernel=hls_kernel)
    np.testing.assert_array_equal(y, reference_chain(layers, x))
    assert simulate(cfg, prog.words).cycles == res.cycles  # fast model = executed timing
    return prog


@pytest.mark.parametrize("hls_kernel", [False, True], ids=["fastpath", "hls-loops"])
@pytest.mark.parametrize("spec", [EXCL_PAD, OVERHANG,
                                  PoolSpec("avg", (3, 3), (2, 2), (1, 1, 1, 1), ceil_mode=True,
                                           count_include_pad=True)],
                         ids=["pad-excluded", "ceil-overhang", "pad-counted-overhang"])
def test_varying_divisor_average_pools_bit_exact(spec, hls_kernel):
    """Standalone and fused after a conv, with and without a rescale, on every tile of the
    smallest tiling (tiles at the borders and inside): the engine equals the reference,
    which divides each window by its own element count."""
    rng = np.random.default_rng(1)
    conv = conv_params(rng, 24, 8, 3, pads=(1, 1, 1, 1))
    for layer in (PoolLayer("p", (40, 10, 10), spec),
                  PoolLayer("p", (40, 10, 10), spec, scales=(1.0, 0.6)),
                  ConvLayer("c", (8, 10, 10), conv, spec),
                  ConvLayer("c", (8, 10, 10), conv, spec, pool_scales=(1.0, 0.7))):
        for cfg in (TINY, CFG2):
            tiles = candidates(cfg, layer)
            for tile in (tiles[0], tiles[-1]):
                _run([layer], [tile], cfg, hls_kernel)


def test_divisor_classes_split_the_pool_only_where_they_differ():
    """A pool whose windows share one divisor stays one POOL per tile; 3x3 pad 1 without
    counting the padding on one 10 x 10 tile: rows 0 and 9 (3 runs each: corner, edge,
    corner) and the 8 inner rows (edge, inside, edge) -> 3 + 3 + 8 * 3 POOLs, each with
    its REQUANT."""
    uniform = PoolLayer("p", (8, 10, 10), PoolSpec("avg", (2, 2), (2, 2)))
    excl = PoolLayer("p", (8, 10, 10), EXCL_PAD)
    whole = [t for t in candidates(CFG2, excl) if (t.th, t.tw) == (10, 10)]
    assert whole, "a one-tile schedule"
    assert _pools(_run([uniform], [candidates(CFG2, uniform)[0]], CFG2).words) == 1
    prog = _run([excl], whole[:1], CFG2)
    assert _pools(prog.words) == 3 + 3 + 8 * 3


def _cos(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _build_and_check(model, shape, tmp_path, cos_min=0.99):
    """zynq_squeeze.build on 6 calibration inputs; each offloaded function alone equals its
    golden model bit for bit; the compiled model is within ``cos_min`` of onnxruntime."""
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(6)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    vm = res.vm()
    for lf in res.codegen[0].functions:
        f = res.offloaded_function(vm, lf.symbol)
        xs = [(rng.standard_normal(s) * lf.tensors[t].scale * 40).astype(np.float32)
              for t, s in zip(lf.inputs, lf.input_shapes)]
        outs = [tvm.runtime.tensor(np.zeros(s, np.float32)) for s in lf.output_shapes]
        f(*[tvm.runtime.tensor(x) for x in xs], *outs)
        for o, want in zip(outs, golden.run_function(lf, xs)):
            np.testing.assert_array_equal(o.numpy(), want.reshape(o.shape))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    cos = []
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        cos.append(_cos(y, sess.run(None, {"x": x})[0]))
    assert min(cos) >= cos_min, cos
    return res


def _reshape(g: GraphBuilder, dims):
    sn, out = g._name("shape"), g._name("reshape")
    g.inits.append(numpy_helper.from_array(np.array(dims, np.int64), sn))
    g.nodes.append(helper.make_node("Reshape", [g.cur, sn], [out]))
    g.cur = out


def _head(g: GraphBuilder, flatten: str):
    g.op("GlobalAveragePool")
    if flatten == "Flatten":
        g.op("Flatten")
    else:
        _reshape(g, [1, -1])
    w = (g.rng.standard_normal((g.c, 10)) * 0.2).astype(np.float32)
    g.gemm(w.T, (g.rng.standard_normal(10) * 0.1).astype(np.float32))


@pytest.mark.parametrize("flatten", ["Flatten", "Reshape"])
def test_inception_v2_block_with_excluded_pad_pools_is_one_function(tmp_path, flatten):
    """An inception block whose pool branch is GoogLeNet-BN's average pool (3x3 stride 1
    pad 1, padding not counted: border windows divide by 4 or 6) -> a ceil-mode average
    pool with overhang (2x2/2 on 11) -> global average -> Flatten or Reshape -> Gemm: every operator on
    the accelerator, in ONE function."""
    shape = (1, 8, 11, 11)
    g = GraphBuilder(shape, seed=6)
    x = g.cur
    a = g.conv(8, 1, src=x)
    g.c = 8
    b = g.conv(16, 3, pad=1, src=x)
    g.cur, g.c = x, 8
    g.avgpool(3, 1, pads=[1, 1, 1, 1])
    p = g.conv(8, 1)
    g.concat([a, b, p], [8, 16, 8])
    g.avgpool(2, 2, ceil=1)  # 11 -> 6: the last window holds 1 row / column of 2
    g.conv(16, 1)
    _head(g, flatten)
    model = g.model()
    res = _build_and_check(model, shape, tmp_path)
    rep = res.partition_report
    assert rep.cpu_ops == [] and len(rep.functions) == 1, rep
    assert rep.patterns[patterns.DENSE] == 1 and rep.patterns[patterns.POOL] == 2
    lf, = res.codegen[0].functions
    # both windowed average pools divide their border windows by fewer elements
    varying = [layer.pool.avg_divisor(*layer.conv_hw) is None for layer, _, _ in lf.layers
               if layer.pool is not None and not layer.pool.global_pool]
    assert varying == [True, True]


def test_flatten_of_a_plane_keeps_the_classifier_apart():
    """A Flatten of a (1, C, H, W) plane is not the engine's layout (NCHW order vs channel
    words per pixel): the Gemm stays a function of its own, reading the CPU's Flatten."""
    g = GraphBuilder((1, 3, 8, 8), seed=2)
    g.conv(8, 3, pad=1)
    g.maxpool(2, 2, ceil=0)
    g.op("Flatten")
    w = (g.rng.standard_normal((8 * 16, 10)) * 0.1).astype(np.float32)
    g.gemm(w.T, np.zeros(10, np.float32))
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    assert rep.patterns == {patterns.CONV_POOL: 1, patterns.DENSE: 1}
    assert len(rep.functions) == 2 and rep.cpu_ops == []
    assert patterns.flatten_reason((1, 8, 4, 4), (1, 128)) == (
        "flatten of (1, 8, 4, 4) to (1, 128): only (N, K, 1, 1) -> (N, K) is the "
        "accelerator's layout")
    assert patterns.flatten_reason((2, 64, 1, 1), (2, 64)) is None


def test_googlenet_v1_stem_with_lrn_is_three_functions(tmp_path):
    """GoogLeNet's stem (light_inception_v1): conv 7x7/2 + maxpool -> LRN -> conv 1x1,
    conv 3x3 -> LRN -> maxpool -> inception-like convs -> global average -> Reshape ->
    Gemm. Each LRN stays on the CPU with its reason; the accelerator's parts merge into
    three functions (the classifier joins the last)."""
    shape = (1, 3, 32, 32)
    g = GraphBuilder(shape, seed=9)
    g.conv(16, 7, stride=2, pad=3)
    g.maxpool(3, 2, ceil=0)
    g.op("LRN", size=5, alpha=1e-4, beta=0.75, bias=1.0)
    g.conv(16, 1)
    g.conv(24, 3, pad=1)
    g.op("LRN", size=5, alpha=1e-4, beta=0.75, bias=1.0)
    g.maxpool(3, 2, ceil=0)
    g.conv(32, 1)
    g.avgpool(3, 1, pads=[1, 1, 1, 1])
    _head(g, "Reshape")
    res = _build_and_check(g.model(), shape, tmp_path)
    rep = res.partition_report
    assert len(rep.functions) == 3, rep
    assert {op.op for op in rep.cpu_ops} == {"relax.multiply", "relax.nn.avg_pool3d",
                                             "relax.add", "relax.power", "relax.divide"}
    assert len(rep.cpu_ops) == 12
    assert all(op.reason == patterns.LRN_REASON for op in rep.cpu_ops)
    assert rep.offload_ratio == 1.0
