"""Fully connected layers (ONNX Gemm, MatMul + Add with constant weights) on the
accelerator as 1x1 convolutions of a (K, 1, 1) image (pattern ``zynq_squeeze.dense``).

Offloaded chains are bit-exact with the numpy golden model and within cosine 0.999 of
onnxruntime; a MatMul with non-constant weights or beyond the engine's limits stays on
the CPU with its reason in the partition report."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.frontend.models import digits_data, digits_model
from zynq_squeeze.partitioning import limits, patterns


def gemm(g: GraphBuilder, o: int, relu: bool = False, trans_b: bool = True) -> str:
    """Gemm(x, W, b) with W [O, K] (transB=1) or [K, O]; the input is g.cur, (N, g.c)."""
    k = g.c
    w = (g.rng.standard_normal((o, k)) * np.sqrt(2 / k)).astype(np.float32)
    b = (g.rng.standard_normal(o) * 0.1).astype(np.float32)
    wn, bn, out = g._name("w"), g._name("b"), g._name("gemm")
    g.inits += [numpy_helper.from_array(w if trans_b else np.ascontiguousarray(w.T), wn),
                numpy_helper.from_array(b, bn)]
    g.nodes.append(helper.make_node("Gemm", [g.cur, wn, bn], [out], transB=int(trans_b)))
    g.cur, g.c = out, o
    if relu:
        g.op("Relu")
    return g.cur


def matmul_add(g: GraphBuilder, o: int, relu: bool = False) -> str:
    """MatMul(x, W [K, O]) + b."""
    k = g.c
    w = (g.rng.standard_normal((k, o)) * np.sqrt(2 / k)).astype(np.float32)
    b = (g.rng.standard_normal(o) * 0.1).astype(np.float32)
    wn, bn, mm, out = g._name("w"), g._name("b"), g._name("matmul"), g._name("add")
    g.inits += [numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)]
    g.nodes += [helper.make_node("MatMul", [g.cur, wn], [mm]),
                helper.make_node("Add", [mm, bn], [out])]
    g.cur, g.c = out, o
    if relu:
        g.op("Relu")
    return g.cur


def fc_net(batch: int, reshape: bool) -> onnx.ModelProto:
    """conv -> Flatten (or Reshape) -> Gemm + ReLU -> Gemm (or MatMul + Add)."""
    g = GraphBuilder((batch, 3, 6, 6), seed=4)
    g.conv(8, 3, pad=1)
    if reshape:
        sn = g._name("shape")
        g.inits.append(numpy_helper.from_array(np.array([batch, -1], np.int64), sn))
        out = g._name("reshape")
        g.nodes.append(helper.make_node("Reshape", [g.cur, sn], [out]))
        g.cur = out
    else:
        g.op("Flatten", axis=1)
    g.c = 8 * 6 * 6
    gemm(g, 24, relu=True)
    if reshape:
        matmul_add(g, 10)
    else:
        gemm(g, 10)
    return g.model()


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def golden_pipeline(res, x):
    """The offloaded functions' golden models chained, with the CPU's reshape between."""
    fns = {tuple(lf.input_shapes[0]): lf for lf in res.codegen[0].functions}
    assert len(fns) == len(res.codegen[0].functions) == 2
    conv = fns[x.shape]
    y = golden.run_function(conv, [x])[0]
    y = y.reshape(x.shape[0], -1)
    return golden.run_function(fns[y.shape], [y])[0]


@pytest.mark.parametrize("batch,reshape", [(1, False), (2, True)])
def test_fc_layers_offload_bit_exact(tmp_path, batch, reshape):
    model = fc_net(batch, reshape)
    shape = (batch, 3, 6, 6)
    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(16)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    rep = res.partition_report
    assert rep.patterns == {patterns.CONV: 1, patterns.DENSE: 2}, rep.patterns
    assert rep.cpu_ops == [], rep.cpu_ops
    assert rep.offload_ratio == 1.0
    lfs = res.codegen[0].functions
    dense = next(lf for lf in lfs if lf.patterns == [patterns.DENSE] * 2)
    assert dense.input_shapes == [(batch, 288)] and dense.output_shapes == [(batch, 10)]
    assert [tuple(layer.in_shape) for layer, _, _ in dense.layers] == [(288, 1, 1), (24, 1, 1)]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    cos = []
    for _ in range(4):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden_pipeline(res, x))
        r = sess.run(None, {"x": x})[0]
        assert y.shape == r.shape
        cos.append(cosine(y, r))
    assert min(cos) >= 0.999, cos


def _cpu(rep, op):
    return [c for c in rep.cpu_ops if c.op == op]


def test_matmul_with_non_constant_weights_stays_on_cpu():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [16, 8])
    b = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["y"])]
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    g = helper.make_graph(nodes, "t", [x, w], [out], [b])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    _, rep = zynq_squeeze.partition(from_onnx(model))
    assert patterns.DENSE not in rep.patterns and rep.macs_offloaded == 0
    mm = _cpu(rep, "relax.matmul")
    assert len(mm) == 1 and "not constant" in mm[0].reason, rep.cpu_ops
    add = _cpu(rep, "relax.add")
    assert len(add) == 1 and "fully connected layer that stays on the CPU" in add[0].reason


def test_fc_layer_beyond_the_limits_stays_on_cpu():
    k = limits.MAX_CHANNELS + 8  # more input channels than an activation word count holds
    g = GraphBuilder((1, k), seed=0)
    g.c = k
    gemm(g, 2, relu=True)
    gemm(g, 4)  # within the limits: offloaded
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    assert rep.patterns == {patterns.DENSE: 1}, rep.patterns
    mm = _cpu(rep, "relax.matmul")
    assert len(mm) == 1 and f"{k} channels exceed" in mm[0].reason, rep.cpu_ops
    assert all(c.op in ("relax.matmul", "relax.add", "relax.nn.relu") for c in rep.cpu_ops)
    assert 0 < rep.offload_ratio < 1


def test_wide_fc_layer_beyond_the_channel_limit_stays_on_cpu():
    g = GraphBuilder((1, 4), seed=0)
    g.c = 4
    gemm(g, limits.MAX_CHANNELS + 8)
    _, rep = zynq_squeeze.partition(from_onnx(g.model()))
    assert rep.patterns == {}
    mm = _cpu(rep, "relax.matmul")
    assert len(mm) == 1 and "channels exceed" in mm[0].reason, rep.cpu_ops


def test_digits_model_still_fully_offloaded_and_bit_exact(tmp_path):
    """The digits net ends in conv10 1x1 + global average pool (no Gemm): all of it was
    already offloaded; the dense pattern must not change that."""
    X, _ = digits_data("test")
    res = zynq_squeeze.build(from_onnx(digits_model()),
                             calibration=[X[i:i + 1] for i in range(8)], out_dir=tmp_path)
    rep = res.partition_report
    assert rep.offload_ratio == 1.0 and rep.cpu_ops == []
    lf = res.codegen[0].functions[0]
    vm = res.vm()
    for i in range(8, 12):
        x = X[i:i + 1]
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
