"""DenseNet's pre-activation BatchNorm on the accelerator (issue 11, light_densenet121).

A BatchNorm that no conv absorbs (it reads a concat or a pool, and a ReLU separates it
from the conv after it) becomes, in the clean-up's second pass, a depthwise 1x1 conv
``x * s + t`` (``partitioning/cleanup.py``): the engine runs it in its ``CONV_DW`` mode,
its ReLU is the requantization's, and it joins the offloaded function around it, so the
dense layers, the transitions and the final BN-ReLU-global pool are one chain.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from onnx_graphs import GraphBuilder, densenet_net
from helpers import conv_params, depthwise_params, rand_input
from test_pool_concat import CONFIGS, _check_against_onnx, _same_timing
from tvm import relax

import zynq_squeeze
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.codegen.dae_program import build_dae_program
from zynq_squeeze.partitioning import cleanup, patterns
from zynq_squeeze.quantize.layers import ConvLayer
from zynq_squeeze.quantize.reference import run_layer
from zynq_squeeze.schedule.dae_tiling import candidates
from zynq_squeeze.toolchain.dae_sim import run_program

SHAPE = (1, 3, 32, 32)


def _calibration(shape, n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(n)]


def _compare(model, res, shape, vm=None, seed=9):
    """Bit-exact against the golden models; the cosines against onnxruntime."""
    return _check_against_onnx(model, res, np.random.default_rng(seed), shape, vm=vm)


def _depthwise_layers(lf):
    """(layer, source, destination) of the depthwise convs of a lowered function."""
    return [(layer, src, dst) for layer, src, dst in lf.layers
            if layer.kind == "conv" and layer.conv.depthwise]


def _ops(mod) -> list[str]:
    return [b.value.op.name for blk in mod["main"].body.blocks for b in blk.bindings
            if isinstance(b.value, relax.Call) and isinstance(b.value.op, tvm.ir.Op)]


# --------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("caffe2_scale", [False, True])
def test_densenet_is_one_function_with_no_batch_norm_on_the_cpu(caffe2_scale, tmp_path):
    """Two dense blocks of two layers, a transition, the final BN-ReLU-global pool: the
    6 BNs no conv absorbs (4 layer inputs, the transition's, the last) are depthwise convs
    in ONE offloaded function with every conv, the pools and the classifier (the Flatten
    of the pooled (1, C, 1, 1) tensor joins it); with the light zoo's Mul + Add after each
    BN, those fold into it."""
    model = densenet_net(SHAPE, caffe2_scale=caffe2_scale)
    mod = from_onnx(model)
    fired = cleanup.rules_fired(mod)
    assert fired.count("batch_norm->depthwise") == 6
    assert fired.count("batch_norm->conv") == 4  # the BN after each layer's 1x1 conv
    if caffe2_scale:
        assert fired.count("scale->conv") == fired.count("shift->bias") == 10
    cleaned = _ops(cleanup.clean_up(mod))
    assert not {"relax.nn.batch_norm", "relax.multiply"} & set(cleaned)
    res = zynq_squeeze.build(mod, calibration=_calibration(SHAPE), out_dir=tmp_path)
    rep = res.partition_report
    assert rep.cpu_ops == [], rep.cpu_ops
    assert len(rep.functions) == 1 and rep.offload_ratio == 1.0
    # stem conv + max pool, and the last BN-ReLU + global average pool
    assert rep.patterns[patterns.CONV_POOL] == 2 and rep.patterns[patterns.DENSE] == 1
    conv_fn, = res.codegen[0].functions
    dw = _depthwise_layers(conv_fn)
    assert len(dw) == 6
    assert all(layer.conv.weight.shape[2:] == (1, 1) and layer.conv.relu for layer, _, _ in dw)
    # the last one pools globally; a dense layer's reads its concat: a prefix view of the
    # block's last concat (the first of a block reads the stem's pool / the transition's
    # average pool, stored in place), or that root itself (the transition's, the last BN's)
    assert dw[-1][0].pool is not None and dw[-1][0].pool.global_pool
    roots = {r for r, _ in conv_fn.views.values()}
    reads = ["view" if src in conv_fn.views else "root" if src in roots else "plain"
             for _, src, _ in dw]
    assert reads == ["view", "view", "root", "view", "view", "root"], reads
    assert not any("copy" in layer.name for layer, _, _ in conv_fn.layers)
    # the 1x1 conv after each depthwise conv reads its output inside the same function
    readers = {src for _, src, _ in conv_fn.layers}
    assert all(dst in readers for _, _, dst in dw[:-1])
    cos = _compare(model, res, SHAPE)
    assert min(cos) >= 0.999, cos


def test_densenet_through_tvm_compile(tmp_path):
    """The same graph through ``tvm.compile(target="zynq-squeeze")`` after
    ``zynq_squeeze.calibrate``: bit-exact with the build's golden models (same module)."""
    model = densenet_net(SHAPE, seed=7, blocks=(3,), caffe2_scale=True)
    mod = zynq_squeeze.calibrate(from_onnx(model), _calibration(SHAPE), progress=False)
    res = zynq_squeeze.build(mod, out_dir=tmp_path)
    assert len(res.partition_report.functions) == 1 and res.partition_report.cpu_ops == []
    vm = relax.VirtualMachine(tvm.compile(mod, target="zynq-squeeze"), tvm.cpu())
    cos = _compare(model, res, SHAPE, vm=vm)
    assert min(cos) >= 0.999, cos


# --------------------------------------------------------------------------- in the engine
@pytest.mark.parametrize("hls_kernel", [False, True])
def test_depthwise_1x1_reads_a_concat_view_bit_exact(hls_kernel):
    """x -> a (16 ch) || b (24 ch), stored at channels 0 and 16 of one tensor; a 1x1
    depthwise conv (+ReLU, the BN's form) reads the view b (LI_G0 = 2 + the oc tile's
    groups, smallest tiles: several oc tiles) and a 1x1 conv the whole concat: the
    host fast path and the synthesized HLS loops equal the reference, timing agrees."""
    cfg = CONFIGS[1]
    rng = np.random.default_rng(11)
    x_shape = (8, 7, 9)
    la = ConvLayer("a", x_shape, conv_params(rng, 16, 8, 1))
    lb = ConvLayer("b", x_shape, conv_params(rng, 24, 8, 3, pads=(1, 1, 1, 1)))
    ldw = ConvLayer("bn", lb.out_shape, depthwise_params(rng, 24, 1))
    lc = ConvLayer("c", (40, 7, 9), conv_params(rng, 8, 40, 1, relu=False))
    graph = [(la, "x", "a"), (lb, "x", "b"), (ldw, "b", "d"), (lc, "cat", "y")]
    shapes = {"x": x_shape, "a": la.out_shape, "b": lb.out_shape, "cat": lc.in_shape,
              "d": ldw.out_shape, "y": lc.out_shape}
    tiles = [candidates(cfg, layer)[-1] for layer, _, _ in graph]
    prog = build_dae_program(cfg, graph, tiles, shapes, ["x"], ["d"],
                             {"a": ("cat", 0), "b": ("cat", 16)})
    assert prog.tensors["b"].g0 == 2
    xq = rand_input(rng, x_shape)
    y, res = run_program(prog, xq, hls_kernel=hls_kernel)
    np.testing.assert_array_equal(y, run_layer(ldw, run_layer(lb, xq)))
    _same_timing(cfg, prog, res)


# --------------------------------------------------------------------------- alone
def _bn_graph(gamma, then: str):
    """A dense layer's concat(x, conv(x)) -> BN (``gamma`` per channel, no ReLU) ->
    ``then``: "conv" (a 3x3 conv with padding, which cannot absorb a BN with a shift) or
    "output" (the BN is the model's output)."""
    g = GraphBuilder((1, 8, 9, 9), seed=12)
    x = g.cur
    g.concat([x, g.conv(8, 3, pad=1)], [8, 8])
    g.batchnorm(gamma=gamma)
    if then == "conv":
        g.conv(8, 3, pad=1, relu=False)
    return g.model()


@pytest.mark.parametrize("then", ["conv", "output"])
def test_batch_norm_without_relu_zero_and_negative_scales(then, tmp_path):
    """A BN with no activation after it is a linear depthwise conv (zero and negative
    gammas: weights 0 and < 0, any per-channel weight scale): offloaded in the concat's
    function, bit-exact, close to onnxruntime."""
    gamma = np.linspace(-1.5, 1.5, 16)
    gamma[[3, 11]] = 0.0
    model = _bn_graph(gamma, then)
    shape = (1, 8, 9, 9)
    res = zynq_squeeze.build(from_onnx(model), calibration=_calibration(shape),
                             out_dir=tmp_path)
    rep = res.partition_report
    assert rep.cpu_ops == [] and len(rep.functions) == 1, rep
    lf, = res.codegen[0].functions
    dw, = _depthwise_layers(lf)
    assert not dw[0].conv.relu
    w = dw[0].conv.weight.reshape(-1)
    assert np.all(w[[3, 11]] == 0) and np.all(w[:3] < 0) and np.all(w[12:] > 0)
    cos = _compare(model, res, shape)
    assert min(cos) >= 0.999, cos


def test_batch_norm_between_cpu_operators_stays_with_its_reason():
    """Next to nothing the accelerator runs (a Softmax before, a Flatten after) a BN
    would be an offloaded function of its own: it stays, named, with the reason; so do a
    BatchNorm1d of a 2-D tensor and a BN of a tensor beyond the engine's fields."""
    g = GraphBuilder((1, 8, 4, 4), seed=1)
    g.op("Softmax", axis=1)
    g.batchnorm()
    g.op("Flatten")
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    bn = [op for op in rep.cpu_ops if op.op == "relax.nn.batch_norm"]
    assert len(bn) == 1 and "stay on the CPU" in bn[0].reason and rep.functions == []
    g = GraphBuilder((1, 16), seed=1)
    g.batchnorm()
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    assert [op.op for op in rep.cpu_ops] == ["relax.nn.batch_norm"]
    assert "(1, 16) float32 tensor" in rep.cpu_ops[0].reason
    # wider than the engine's fields: a BN, not a conv the model does not have, on the CPU
    g = GraphBuilder((1, 8, 1, 16385), seed=1)
    g.batchnorm()
    g.conv(8, 3, pad=1)  # padded: it cannot absorb the BN's shift
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    bn, = [op for op in rep.cpu_ops if op.op == "relax.nn.batch_norm"]
    assert bn.reason.startswith("BatchNorm as a depthwise conv: a 1x16385 feature map")


def test_depthwise_form_equals_onnxruntime_in_float():
    """The rewrite is exact up to float rounding: the cleaned-up float module (TVM llvm)
    equals onnxruntime on the DenseNet graph."""
    model = densenet_net(SHAPE, seed=3, caffe2_scale=True)
    mod = cleanup.clean_up(from_onnx(model))
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(4).standard_normal(SHAPE).astype(np.float32)
    y = vm["main"](tvm.runtime.tensor(x)).numpy()
    r = sess.run(None, {"x": x})[0]
    assert np.max(np.abs(y - r)) <= 1e-4 * max(1.0, float(np.max(np.abs(r))))
