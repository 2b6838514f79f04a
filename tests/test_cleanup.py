"""Graph clean-up before partitioning (partitioning.cleanup): BatchNorm, inference Dropout,
explicit Pad / auto_pad=SAME_*, Clip(0, 6) are folded into the offloaded convolutions.

Each case: the conv offloads, nothing stays on the CPU (and nothing would be named
relax.call_tir), the simulation is bit-exact with the golden model, and the int8 output
is within cosine 0.999 of onnxruntime."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tvm
import tvm_ffi.structural
from onnx import helper, numpy_helper
from onnx_graphs import GraphBuilder
from tvm import relax

import zynq_squeeze
from zynq_squeeze.codegen import golden
from zynq_squeeze.frontend import from_onnx
from zynq_squeeze.partitioning import cleanup, patterns


# --------------------------------------------------------------------------- graphs
def _const(g: GraphBuilder, prefix: str, value) -> str:
    name = g._name(prefix)
    g.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
    return name


def batch_norm(g: GraphBuilder) -> str:
    c, r = g.c, g.rng
    ins = [_const(g, "gamma", r.uniform(0.5, 1.5, c)), _const(g, "beta", r.standard_normal(c) * 0.1),
           _const(g, "mean", r.standard_normal(c) * 0.2), _const(g, "var", r.uniform(0.5, 2.0, c))]
    out = g._name("bn")
    g.nodes.append(helper.make_node("BatchNormalization", [g.cur, *ins], [out], epsilon=1e-3))
    g.cur = out
    return out


def pad(g: GraphBuilder, pads, value=None, mode="constant") -> str:
    """ONNX Pad (opset >= 11: pads and value are inputs); ``pads`` for all 4 axes."""
    pn = g._name("pads")
    g.inits.append(numpy_helper.from_array(np.array(pads, np.int64), pn))
    ins = [g.cur, pn] + ([_const(g, "padv", value)] if value is not None else [])
    out = g._name("pad")
    g.nodes.append(helper.make_node("Pad", ins, [out], mode=mode))
    g.cur = out
    return out


def clip(g: GraphBuilder, lo, hi) -> str:
    """ONNX Clip: bounds as attributes before opset 11, as inputs from 11 on."""
    out = g._name("clip")
    if g.opset < 11:
        g.nodes.append(helper.make_node("Clip", [g.cur], [out], min=lo, max=hi))
    else:
        ins = [g.cur, _const(g, "lo", lo) if lo is not None else "",
               _const(g, "hi", hi) if hi is not None else ""]
        g.nodes.append(helper.make_node("Clip", ins, [out]))
    g.cur = out
    return out


def relu_to_clip(model: onnx.ModelProto, hi=6.0) -> onnx.ModelProto:
    """Every Relu of ``model`` (opset >= 11) becomes Clip(0, hi)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.initializer.extend([numpy_helper.from_array(np.float32(0), "zero_"),
                                numpy_helper.from_array(np.float32(hi), "hi_")])
    for n in m.graph.node:
        if n.op_type == "Relu":
            n.op_type = "Clip"
            n.input.extend(["zero_", "hi_"])
    onnx.checker.check_model(m)
    return m


# --------------------------------------------------------------------------- checks
def report(model):
    return zynq_squeeze.partition(from_onnx(model))[1]


def build_and_compare(model, shape, tmp_path, n=4, n_calib=16, scale=1.0):
    """Build the whole-offloaded model; bit-exact with golden, cosines with onnxruntime."""
    rng = np.random.default_rng(1)
    calib = [(rng.standard_normal(shape) * scale).astype(np.float32) for _ in range(n_calib)]
    res = zynq_squeeze.build(from_onnx(model), calibration=calib, out_dir=tmp_path)
    rep = res.partition_report
    assert rep.cpu_ops == [], rep.cpu_ops
    assert rep.offload_ratio == 1.0 and len(res.codegen[0].functions) == 1
    lf = res.codegen[0].functions[0]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    cos = []
    for _ in range(n):
        x = (rng.standard_normal(shape) * scale).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        r = sess.run(None, {"x": x})[0]
        assert y.shape == r.shape
        cos.append(float(y.ravel() @ r.ravel() / (np.linalg.norm(y) * np.linalg.norm(r))))
    assert min(cos) >= 0.999, cos
    return res


def no_call_tir(rep):
    assert not any("call_tir" in op.op for op in rep.cpu_ops), rep.cpu_ops


# --------------------------------------------------------------------------- BatchNorm
def test_batch_norm_folds_into_the_conv_before_it(tmp_path):
    g = GraphBuilder((1, 3, 12, 12), seed=0)
    g.conv(8, 3, pad=1, relu=False)          # conv + bias + BN + ReLU
    batch_norm(g)
    g.op("Relu")
    g.conv(8, 3, pad=1, bias=False, relu=False)  # conv (no bias) + BN, no ReLU
    batch_norm(g)
    model = g.model()
    mod = from_onnx(model)
    assert "batch_norm->conv" in cleanup.rules_fired(mod)
    assert "relax.nn.batch_norm" not in cleanup.clean_up(mod)["main"].script()
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 2}
    build_and_compare(model, (1, 3, 12, 12), tmp_path)


def test_batch_norm_without_a_conv_before_it_is_a_depthwise_conv():
    """No conv absorbs it (the conv after it pads with a shift): the BN becomes a
    depthwise 1x1 conv that offloads with that conv (tests/test_densenet.py for more)."""
    g = GraphBuilder((1, 3, 8, 8), seed=0)
    batch_norm(g)
    g.conv(8, 3, pad=1)
    model = g.model()
    assert "batch_norm->depthwise" in cleanup.rules_fired(from_onnx(model))
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 2} and rep.cpu_ops == []
    float_vs_ort(model, (1, 3, 8, 8))


# --------------------------------------------------------------------------- Dropout
def test_inference_dropout_is_removed(tmp_path):
    g = GraphBuilder((1, 3, 12, 12), seed=0)
    g.conv(8, 3, pad=1)
    g.op("Dropout")
    g.conv(8, 1)
    model = g.model()
    assert "dropout" in cleanup.rules_fired(from_onnx(model))
    res = build_and_compare(model, (1, 3, 12, 12), tmp_path)
    # no CPU operator between the two convs any more: one offloaded function, both layers
    assert len(res.codegen[0].functions[0].layers) == 2


# --------------------------------------------------------------------------- Pad
def test_explicit_zero_pad_folds_into_the_conv(tmp_path):
    g = GraphBuilder((1, 3, 12, 12), seed=0, opset=13)
    pad(g, [0, 0, 1, 2, 0, 0, 2, 0])  # top 1, left 2, bottom 2, right 0
    g.conv(8, 3)
    model = g.model()
    cleaned = cleanup.clean_up(from_onnx(model))
    script = cleaned["main"].script()
    assert "call_tir" not in script and "padding=[1, 2, 2, 0]" in script
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 1}
    lf = build_and_compare(model, (1, 3, 12, 12), tmp_path).codegen[0].functions[0]
    assert lf.layers[0][0].conv.pads == (1, 2, 2, 0)


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_auto_pad_same_folds_into_the_conv(auto_pad, tmp_path):
    g = GraphBuilder((1, 3, 13, 13), seed=1)
    g.conv(8, 4, stride=2, auto_pad=auto_pad)  # 13 -> 7: total padding 3, split 1/2
    g.conv(8, 3, auto_pad=auto_pad)
    model = g.model()
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 2}
    no_call_tir(rep)
    lf = build_and_compare(model, (1, 3, 13, 13), tmp_path).codegen[0].functions[0]
    first = (1, 1, 2, 2) if auto_pad == "SAME_UPPER" else (2, 2, 1, 1)
    assert [layer.conv.pads for layer, _, _ in lf.layers] == [first, (1, 1, 1, 1)]


def test_pads_that_do_not_fold_stay_named_by_their_op():
    # a non-zero pad value and a reflect pad stay on the CPU; the convs still offload
    g = GraphBuilder((1, 3, 12, 12), seed=0, opset=13)
    pad(g, [0, 0, 1, 1, 0, 0, 1, 1], value=0.5)
    g.conv(8, 3)
    pad(g, [0, 0, 1, 1, 0, 0, 1, 1], mode="reflect")
    g.conv(8, 3)
    rep = report(g.model())
    assert rep.patterns == {patterns.CONV: 2}
    no_call_tir(rep)
    assert [op.op for op in rep.cpu_ops] == ["relax.nn.pad", "tir.mirror_pad"]


# --------------------------------------------------------------------------- Clip / ReLU6
@pytest.mark.parametrize("opset", [10, 13])
def test_relu6_folds_into_the_requantization_clamp(opset, tmp_path):
    g = GraphBuilder((1, 3, 12, 12), seed=0, opset=opset)
    g.conv(16, 3, pad=1, relu=False)
    clip(g, 0.0, 6.0)
    g.conv(8, 3, pad=1, relu=False)
    clip(g, 0.0, 6.0)
    g.maxpool(2, 2, ceil=0)
    model = g.model()
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 1, patterns.CONV_POOL: 1}
    no_call_tir(rep)
    # inputs x3: the calibration set drives both convs past 6, so each output scale is
    # 6/127 and the int8 saturation at 127 is exactly the clamp at 6
    res = build_and_compare(model, (1, 3, 12, 12), tmp_path, scale=3.0)
    lf = res.codegen[0].functions[0]
    assert [lf.tensors[dst].scale for _, _, dst in lf.layers] == [6 / 127, 6 / 127]
    x = (np.random.default_rng(5).standard_normal((1, 3, 12, 12)) * 3).astype(np.float32)
    y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
    assert y.max() == np.float32(127) * np.float32(6 / 127) and y.min() >= 0


def test_relu_then_clip_max_is_relu6(tmp_path):
    g = GraphBuilder((1, 3, 12, 12), seed=0, opset=13)
    g.conv(8, 3, pad=1)       # conv + ReLU
    clip(g, None, 6.0)        # then Clip(max=6): ReLU6 again
    model = g.model()
    assert report(model).patterns == {patterns.CONV: 1}
    build_and_compare(model, (1, 3, 12, 12), tmp_path, scale=3.0)


def test_relu6_below_its_bound_is_a_plain_calibrated_relu(tmp_path):
    """When the calibration set never reaches 6, the range (< 6) sets the scale, as for
    any ReLU: the output saturates there (no worse than without the Clip)."""
    g = GraphBuilder((1, 3, 12, 12), seed=0, opset=13)
    g.conv(8, 3, pad=1, relu=False)
    clip(g, 0.0, 6.0)
    model = g.model()
    res = build_and_compare(model, (1, 3, 12, 12), tmp_path, scale=0.1)
    lf = res.codegen[0].functions[0]
    assert lf.tensors[lf.outputs[0]].scale < 6 / 127


def test_relu6_fire_modules(tmp_path):
    g = GraphBuilder((1, 16, 9, 9), seed=1)
    g.conv(16, 1)
    g.fire(8, 8, 8)
    g.fire(8, 8, 8)
    model = relu_to_clip(g.model())
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 1, patterns.FIRE: 2}
    build_and_compare(model, (1, 16, 9, 9), tmp_path, scale=3.0)


def test_other_clips_stay_on_the_cpu_named_clip():
    g = GraphBuilder((1, 3, 12, 12), seed=0, opset=13)
    g.conv(8, 3, pad=1, relu=False)
    clip(g, -1.0, 1.0)   # no ReLU: the engine cannot clamp below 0
    g.conv(8, 3, pad=1, relu=False)
    clip(g, 1.0, 6.0)    # lower bound above 0
    rep = report(g.model())
    assert rep.patterns == {patterns.CONV: 2}
    no_call_tir(rep)
    assert [op.op for op in rep.cpu_ops] == ["relax.clip", "relax.clip"]
    assert all("is not Clip(0, c)" in op.reason for op in rep.cpu_ops)


def test_everything_at_once_matches_onnxruntime(tmp_path):
    """Pad -> conv -> BN -> ReLU6 -> Dropout -> conv(SAME_UPPER) -> BN -> ReLU -> pool."""
    g = GraphBuilder((1, 3, 14, 14), seed=4, opset=13)
    pad(g, [0, 0, 1, 1, 0, 0, 1, 1])
    g.conv(16, 3, stride=2, relu=False)
    batch_norm(g)
    clip(g, 0.0, 6.0)
    g.op("Dropout")
    g.conv(16, 3, auto_pad="SAME_UPPER", relu=False, bias=False)
    batch_norm(g)
    g.op("Relu")
    g.op("GlobalAveragePool")
    model = g.model()
    fired = set(cleanup.rules_fired(from_onnx(model)))
    assert {"batch_norm->conv", "dropout", "pad->conv", "relu+min->clip"} <= fired
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 1, patterns.CONV_POOL: 1}
    build_and_compare(model, (1, 3, 14, 14), tmp_path, scale=2.0)


def test_clean_up_leaves_plain_models_alone():
    g = GraphBuilder((1, 3, 12, 12), seed=0)
    g.conv(8, 3, pad=1)
    g.maxpool(3, 2)
    mod = from_onnx(g.model())
    assert cleanup.rules_fired(mod) == []
    assert tvm_ffi.structural.structural_equal(cleanup.clean_up(mod),
                                               relax.transform.FoldConstant()(mod))


def test_a_tir_function_is_raised_only_when_it_is_the_topi_one():
    """A PrimFunc named ``pad`` that computes something else (an edge pad) stays a
    call_tir; the report names it by its function, not as relax.call_tir."""
    from tvm import topi

    x = relax.Var("x", relax.TensorType((1, 3, 8, 8), "float32"))
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            p = bb.emit_te(topi.nn.replicate_pad, x, [0, 0, 1, 1], [0, 0, 1, 1],
                           primfunc_name_hint="pad")
            out = bb.emit_output(p)
        bb.emit_func_output(out)
    mod = bb.get()
    assert cleanup.rules_fired(mod) == []
    assert "call_tir" in cleanup.clean_up(mod)["main"].script()
    _, rep = zynq_squeeze.partition(mod)
    assert [op.op for op in rep.cpu_ops] == ["tir.pad"]


# --------------------------------------------------------------------------- issue 11 gaps
def float_vs_ort(model, shape, seed=5, tol=1e-4):
    """The cleaned-up float module (TVM llvm) equals onnxruntime on the original graph up
    to float rounding; returns the max abs error."""
    mod = cleanup.clean_up(from_onnx(model))
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    y = vm["main"](tvm.runtime.tensor(x)).numpy()
    r = sess.run(None, {"x": x})[0]
    err = float(np.max(np.abs(y - r)))
    assert err <= tol * max(1.0, float(np.max(np.abs(r)))), err
    return err


def node(g: GraphBuilder, op_type, ins, **attrs) -> str:
    out = g._name(op_type.lower())
    g.nodes.append(helper.make_node(op_type, ins, [out], **attrs))
    g.cur = out
    return out


def ops_of(mod) -> set[str]:
    names = set()
    for b in mod["main"].body.blocks:
        for bd in b.bindings:
            if isinstance(bd.value, relax.Call) and isinstance(bd.value.op, tvm.ir.Op):
                names.add(bd.value.op.name)
    return names


def test_onnx_sum_of_a_residual_is_an_add_that_offloads(tmp_path):
    """ONNX Sum (light_resnet50's residual) imports as stack + sum + broadcast_to: it
    becomes relax.add, the conv_add pattern matches, everything offloads."""
    g = GraphBuilder((1, 8, 10, 10), seed=2)
    a = g.conv(8, 3, pad=1)
    b = g.conv(8, 3, pad=1, relu=False)
    node(g, "Sum", [a, b])
    g.op("Relu")
    model = g.model()
    mod = from_onnx(model)
    assert "relax.stack" in ops_of(mod)
    assert "sum->add" in cleanup.rules_fired(mod)
    cleaned = ops_of(cleanup.clean_up(mod))
    assert not cleaned & {"relax.stack", "relax.sum", "relax.broadcast_to"}
    assert report(model).patterns == {patterns.CONV: 1, patterns.CONV_ADD: 1}
    float_vs_ort(model, (1, 8, 10, 10))
    build_and_compare(model, (1, 8, 10, 10), tmp_path)


def test_sum_of_three_is_chained_adds_and_a_broadcast_sum_stays():
    g = GraphBuilder((1, 4, 6, 6), seed=3)
    a = g.conv(4, 1)
    b = g.conv(4, 1, src="x")
    c = g.conv(4, 1, src="x")
    node(g, "Sum", [a, b, c])
    model = g.model()
    cleaned = cleanup.clean_up(from_onnx(model))
    assert "relax.sum" not in ops_of(cleaned) and "relax.add" in ops_of(cleaned)
    float_vs_ort(model, (1, 4, 6, 6))
    # a Sum with a broadcast constant: FoldConstant materialises the broadcast, the add
    # of that full-shape constant is the same sum
    g = GraphBuilder((1, 4, 6, 6), seed=3)
    a = g.conv(4, 1)
    node(g, "Sum", [a, _const(g, "shift", np.ones((1, 4, 1, 1)))])
    float_vs_ort(g.model(), (1, 4, 6, 6))


@pytest.mark.parametrize("axis,keepdims,shapes", [
    (0, True, [(1, 4, 6, 6)] * 2),        # keeps the stacked axis: not Sum's form
    (1, False, [(1, 4, 6, 6)] * 2),       # sums along another axis
    (0, False, [(1, 4, 6, 6), (1, 4, 1, 1)]),  # a real broadcast_to of one operand
])
def test_reductions_of_stacks_that_are_not_onnx_sum_stay(axis, keepdims, shapes):
    xs = [relax.Var(f"x{i}", relax.TensorType(s, "float32")) for i, s in enumerate(shapes)]
    bb = relax.BlockBuilder()
    with bb.function("main", xs):
        with bb.dataflow():
            parts = [bb.emit(relax.op.broadcast_to(v, (1, 4, 6, 6))) for v in xs]
            st = bb.emit(relax.op.stack(relax.Tuple(parts), axis=0))
            out = bb.emit_output(relax.op.sum(st, axis=[axis], keepdims=keepdims))
        bb.emit_func_output(out)
    mod = bb.get()
    assert "sum->add" not in cleanup.rules_fired(mod)
    assert "relax.sum" in ops_of(cleanup.clean_up(mod))


def scale(g: GraphBuilder, mul_shape=None, add_shape=None, mul_src=None) -> str:
    """Caffe2 Scale: ``x * m + a`` with constants of one value per channel by default."""
    c, r = g.c, g.rng
    m = mul_src or _const(g, "m", r.uniform(0.5, 1.5, mul_shape or (1, c, 1, 1)))
    node(g, "Mul", [g.cur, m])
    return node(g, "Add", [g.cur, _const(g, "a", r.standard_normal(add_shape or (c, 1, 1)) * 0.1)])


@pytest.mark.parametrize("bias", [True, False])
def test_caffe2_scale_folds_into_the_conv(bias, tmp_path):
    """conv [+ BN] + Mul + Add + ReLU (light_inception_v2, 69 times) is one conv."""
    g = GraphBuilder((1, 3, 12, 12), seed=6)
    g.conv(8, 3, pad=1, relu=False, bias=bias)
    if bias:
        batch_norm(g)
    scale(g)
    g.op("Relu")
    g.conv(8, 1, relu=False, bias=False)   # no bias: the Mul is the conv's, the Add its bias
    scale(g, mul_shape=(8, 1, 1), add_shape=(1, 8, 1, 1))
    model = g.model()
    fired = cleanup.rules_fired(from_onnx(model))
    assert fired.count("scale->conv") == 2
    cleaned = ops_of(cleanup.clean_up(from_onnx(model)))
    assert "relax.multiply" not in cleaned
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 2} and rep.cpu_ops == []
    float_vs_ort(model, (1, 3, 12, 12))
    build_and_compare(model, (1, 3, 12, 12), tmp_path)


def test_scale_through_tvm_compile_offloads_the_conv():
    g = GraphBuilder((1, 3, 8, 8), seed=7)
    g.conv(4, 3, pad=1, relu=False)
    scale(g)
    g.op("Relu")
    mod = from_onnx(g.model())
    ex = tvm.compile(mod, target="zynq-squeeze")
    assert ex is not None
    _, rep = zynq_squeeze.partition(mod)
    assert rep.patterns == {patterns.CONV: 1} and rep.cpu_ops == []


@pytest.mark.parametrize("case", ["spatial_mul", "spatial_add", "tensor_mul"])
def test_scales_that_are_not_per_channel_stay(case):
    g = GraphBuilder((1, 3, 6, 6), seed=8)
    g.conv(4, 3, pad=1, relu=False)
    if case == "spatial_mul":       # one value per pixel: not a weight scale
        scale(g, mul_shape=(1, 1, 6, 6))
    elif case == "spatial_add":
        scale(g, add_shape=(1, 4, 6, 1))
    else:                           # times another tensor: not a constant
        scale(g, mul_src="x_copy")
        g.nodes.insert(0, helper.make_node("Slice", ["x", _const_i64(g, [0]), _const_i64(g, [1]),
                                                     _const_i64(g, [1])], ["x1"]))
        g.nodes.insert(1, helper.make_node("Tile", ["x1", _const_i64(g, [1, 4, 1, 1])],
                                           ["x_copy"]))
    model = g.model()
    fired = cleanup.rules_fired(from_onnx(model))
    cleaned = ops_of(cleanup.clean_up(from_onnx(model)))
    if case == "spatial_add":
        assert "scale->conv" in fired and "shift->bias" not in fired
        assert "relax.add" in cleaned
    else:
        assert "scale->conv" not in fired and "relax.multiply" in cleaned
    float_vs_ort(model, (1, 3, 6, 6))


def _const_i64(g: GraphBuilder, value) -> str:
    name = g._name("i")
    g.inits.append(numpy_helper.from_array(np.asarray(value, np.int64), name))
    return name


def test_identity_average_pool_is_removed():
    """AdaptiveAvgPool to the input's own size (torchvision alexnet/vgg's 6->6 and 7->7)
    exports as AveragePool kernel 1 stride 1: it is its input."""
    g = GraphBuilder((1, 3, 7, 7), seed=9)
    g.conv(8, 3, pad=1)
    g.avgpool(k=1, s=1)
    g.conv(8, 1)
    model = g.model()
    assert "identity pool" in cleanup.rules_fired(from_onnx(model))
    rep = report(model)
    assert rep.cpu_ops == [] and len(rep.functions) == 1
    assert patterns.POOL not in rep.patterns
    float_vs_ort(model, (1, 3, 7, 7))
    # a strided 1x1 pool subsamples: kept
    g = GraphBuilder((1, 3, 8, 8), seed=9)
    g.conv(8, 3, pad=1)
    g.avgpool(k=1, s=2)
    assert "identity pool" not in cleanup.rules_fired(from_onnx(g.model()))


def test_qdq_left_on_the_cpu_says_why():
    """A quantize/dequantize pair at the offload boundary is reported with its reason, not
    the generic 'no accelerator pattern'."""
    x = relax.Var("x", relax.TensorType((1, 3, 8, 8), "float32"))
    w = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32)
    bb = relax.BlockBuilder()
    with bb.function("main", [x]):
        with bb.dataflow():
            q = bb.emit(relax.op.quantize(x, relax.const(0.05), relax.const(0, "int8"),
                                          axis=1))
            dq = bb.emit(relax.op.dequantize(q, relax.const(0.05), relax.const(0, "int8"),
                                             axis=1))
            c = bb.emit(relax.op.nn.conv2d(dq, relax.const(w), padding=[1, 1, 1, 1]))
            out = bb.emit_output(relax.op.nn.relu(c))
        bb.emit_func_output(out)
    _, rep = zynq_squeeze.partition(bb.get())
    assert rep.patterns == {patterns.CONV: 1}
    reasons = {op.op: op.reason for op in rep.cpu_ops}
    assert set(reasons) == {"relax.quantize", "relax.dequantize"}
    assert all("offload boundary" in r and "no accelerator pattern" not in r
               for r in reasons.values())


def _bn_then_conv(pad_, zero_shift=False, second_reader=False):
    g = GraphBuilder((1, 6, 9, 9), seed=10)
    src = g.cur
    if zero_shift:   # beta = mean = 0: a pure per-channel scale
        c = g.c
        ins = [_const(g, "gamma", g.rng.uniform(0.5, 1.5, c)), _const(g, "beta", np.zeros(c)),
               _const(g, "mean", np.zeros(c)), _const(g, "var", g.rng.uniform(0.5, 2, c))]
        node(g, "BatchNormalization", [src, *ins], epsilon=1e-3)
    else:
        batch_norm(g)
    bn = g.cur
    first = g.conv(8, 3, pad=pad_)
    if second_reader:  # the normalized tensor is also read by another conv
        g.c = 6
        node(g, "Add", [first, g.conv(8, 3, pad=pad_, src=bn)])
    return g.model()


@pytest.mark.parametrize("pad_,zero_shift,folds", [
    (0, False, True),   # no padding: exact
    (1, True, True),    # padded, but the shift is zero: the zero border stays zero
    (1, False, False),  # padded with a shift: the border would change: a depthwise conv
])
def test_batch_norm_before_a_conv_folds_into_it_when_exact(pad_, zero_shift, folds):
    model = _bn_then_conv(pad_, zero_shift)
    mod = from_onnx(model)
    fired = cleanup.rules_fired(mod)
    assert ("batch_norm->next conv" in fired) == folds
    assert ("batch_norm->depthwise" in fired) != folds
    assert "relax.nn.batch_norm" not in ops_of(cleanup.clean_up(mod))
    rep = report(model)
    assert rep.patterns == {patterns.CONV: 1 if folds else 2} and rep.cpu_ops == []
    float_vs_ort(model, (1, 6, 9, 9))


def test_batch_norm_read_by_two_convs_is_one_depthwise_conv():
    model = _bn_then_conv(0, second_reader=True)
    fired = cleanup.rules_fired(from_onnx(model))
    assert "batch_norm->next conv" not in fired
    assert fired.count("batch_norm->depthwise") == 1
    float_vs_ort(model, (1, 6, 9, 9))


def test_scale_of_a_conv_read_elsewhere_stays():
    """The conv's output also feeds a second branch: folding the Scale would compute the
    conv twice, so it stays (and the result still equals onnxruntime)."""
    g = GraphBuilder((1, 3, 6, 6), seed=11)
    c = g.conv(4, 3, pad=1, relu=False)
    scale(g)
    node(g, "Add", [g.cur, c])
    model = g.model()
    assert "scale->conv" not in cleanup.rules_fired(from_onnx(model))
    float_vs_ort(model, (1, 3, 6, 6))
