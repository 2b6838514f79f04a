"""Residual adds through tvm.compile(target="zynq-squeeze") (issue 11 item 2): ONNX ResNet
basic blocks (identity and downsampling bypass, BatchNorm folded by the clean-up), a
linear bottleneck without ReLU and a ReLU6 after the add become ONE offloaded function,
bit-exact with the numpy golden model and within cosine 0.99 of onnxruntime; adds the
engine cannot take stay on the CPU with their reason."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tvm
from onnx_graphs import GraphBuilder, resnet_net

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import patterns
from zynq_squeeze.quantize.layers import ConvAddLayer


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def compile_and_compare(model, shape, tmp_path, n=3, min_cos=0.99):
    """tvm.compile through the public entry point; every run bit-exact with the golden
    model of the one offloaded function and close to onnxruntime. Returns the result."""
    rng = np.random.default_rng(7)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(16)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    (lf,) = res.codegen[0].functions
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    for _ in range(n):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0])
        r = sess.run(None, {"x": x})[0]
        assert cosine(y, r) >= min_cos, cosine(y, r)
    return res, lf


def block_net(oc=16, stride=1, shape=(1, 16, 10, 10)):
    g = GraphBuilder(shape, seed=11)
    g.basic_block(oc, stride)
    return g.model()


def test_identity_basic_block_is_one_function(tmp_path):
    res, lf = compile_and_compare(block_net(), (1, 16, 10, 10), tmp_path)
    rep = res.partition_report
    assert rep.patterns == {patterns.CONV: 1, patterns.CONV_ADD: 1}, rep.patterns
    assert rep.cpu_ops == [] and rep.offload_ratio == 1.0 and len(rep.functions) == 1
    add = [layer for layer, _, _ in lf.layers if isinstance(layer, ConvAddLayer)]
    assert len(add) == 1 and add[0].bypass == lf.inputs[0] and add[0].conv.relu


def test_downsampling_block_is_one_function(tmp_path):
    res, lf = compile_and_compare(block_net(32, 2), (1, 16, 10, 10), tmp_path)
    rep = res.partition_report
    # conv1 + the 1x1 stride-2 bypass conv as plain convs, conv2 + add as one layer
    assert rep.patterns == {patterns.CONV: 2, patterns.CONV_ADD: 1}, rep.patterns
    assert rep.cpu_ops == [] and len(rep.functions) == 1
    (add,) = [layer for layer, _, _ in lf.layers if isinstance(layer, ConvAddLayer)]
    assert add.bypass not in lf.inputs and add.out_shape == (32, 5, 5)


@pytest.mark.parametrize("act", ["none", "clip6"])
def test_linear_bottleneck_and_relu6_after_the_add(tmp_path, act):
    """MobileNetV2's residual: 1x1 expand + ReLU6, 1x1 project (no activation), + input,
    no activation after the add; or a Clip(0, 6) after it."""
    g = GraphBuilder((1, 16, 8, 8), seed=5)
    x = g.cur
    g.conv(48, 1)
    g.conv(16, 1, relu=False)
    g.add(g.cur, x, relu=False, clip6=act == "clip6")
    res, lf = compile_and_compare(g.model(), (1, 16, 8, 8), tmp_path)
    assert res.partition_report.patterns == {patterns.CONV: 1, patterns.CONV_ADD: 1}
    (add,) = [layer for layer, _, _ in lf.layers if isinstance(layer, ConvAddLayer)]
    assert add.conv.relu == (act == "clip6")


def test_bypass_as_the_first_operand(tmp_path):
    g = GraphBuilder((1, 8, 6, 6), seed=9)
    x = g.cur
    g.conv(8, 3, pad=1)
    y = g.conv(8, 3, pad=1, relu=False)
    g.add(x, y)
    res, _ = compile_and_compare(g.model(), (1, 8, 6, 6), tmp_path)
    assert res.partition_report.patterns[patterns.CONV_ADD] == 1


def test_small_resnet_offloads_all_macs_in_two_functions(tmp_path):
    """Stem + identity block + downsampling block + GAP + FC: every MAC offloaded in two
    functions (the blocks, the FC; the global average pool between stays on the CPU)."""
    model = resnet_net()
    shape = (1, 3, 16, 16)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(16)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    rep = res.partition_report
    assert rep.patterns[patterns.CONV_ADD] == 2 and rep.offload_ratio >= 0.999
    assert len(rep.functions) <= 2
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    for _ in range(3):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        assert cosine(y, sess.run(None, {"x": x})[0]) >= 0.99


def test_broadcast_add_stays_on_cpu_with_reason(tmp_path):
    """A bypass of another shape (here (1, C, 1, 1), broadcast over the plane) is not a
    residual add the engine takes: the add stays on the CPU, the convs are offloaded."""
    g = GraphBuilder((1, 8, 6, 6), seed=1)
    x = g.cur
    g.op("GlobalAveragePool")
    s = g.cur
    g.cur = x
    g.conv(8, 3, pad=1, relu=False)
    g.add(g.cur, s)
    mod = from_onnx(g.model())
    _, rep = zynq_squeeze.partition(mod)
    adds = [c for c in rep.cpu_ops if c.op == "relax.add"]
    assert len(adds) == 1 and "same shape" in adds[0].reason, rep.cpu_ops
    assert patterns.CONV_ADD not in rep.patterns and rep.patterns[patterns.CONV] == 1


def test_squeezenet_simple_bypass_stays_on_cpu_with_reason(tmp_path):
    """SqueezeNet's simple bypass (fire output + fire input): the add and its ReLU-free
    successor stay on the CPU, named; both fires are offloaded, bit-exact end to end."""
    g = GraphBuilder((1, 16, 8, 8), seed=4)
    x = g.cur
    g.fire(4, 8, 8)
    g.add(g.cur, x, relu=False)
    g.fire(4, 8, 8)
    model = g.model()
    rng = np.random.default_rng(2)
    calib = [rng.standard_normal((1, 16, 8, 8)).astype(np.float32) for _ in range(8)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    rep = res.partition_report
    assert rep.patterns == {patterns.FIRE: 2}, rep.patterns
    (add,) = [c for c in rep.cpu_ops if c.op == "relax.add"]
    assert "simple bypass" in add.reason
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    xv = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(xv)).numpy()
    assert cosine(y, sess.run(None, {"x": xv})[0]) >= 0.99
