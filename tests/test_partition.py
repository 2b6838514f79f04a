"""Partitioning: what offloads, what stays on the CPU and why."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_graphs import GraphBuilder

import zynq_squeeze
from zynq_squeeze.frontend import ModelImportError, from_onnx
from zynq_squeeze.frontend.models import squeezenet, squeezenet_macs
from zynq_squeeze.partitioning import patterns


def _partition(model):
    return zynq_squeeze.partition(from_onnx(model))


@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_squeezenet_offloads_everything_but_the_head(version):
    _, rep = _partition(squeezenet(version, seed=0))
    fires = rep.patterns.get(patterns.FIRE, 0) + rep.patterns.get(patterns.FIRE_POOL, 0)
    assert fires == 8
    # conv1+ReLU+max pool and conv10+ReLU+global average pool
    assert rep.patterns.get(patterns.CONV_POOL) == 2
    assert patterns.CONV not in rep.patterns
    assert rep.macs_total == squeezenet_macs(version)
    assert rep.macs_offloaded / rep.macs_total >= 0.999
    assert [op.op for op in rep.cpu_ops] == ["relax.nn.softmax"]
    assert len(rep.functions) == 1
    assert all(len(f) < 40 for f in rep.functions)


def test_fire_pool_fusion_in_squeezenet_1_1():
    _, rep = _partition(squeezenet("1.1", seed=0))
    # max pools follow fire3 and fire5 in v1.1
    assert rep.patterns[patterns.FIRE_POOL] == 2
    assert rep.patterns[patterns.FIRE] == 6


def _unsupported_graph():
    g = GraphBuilder((1, 3, 16, 16))
    g.conv(8, 3, pad=1)
    g.conv(8, 3, pad=1, group=2)
    g.conv(8, 3, pad=2, dilation=2)
    g.op("Sigmoid")
    g.op("LRN", size=3)
    g.conv(4, 1)
    return g.model()


def test_unsupported_ops_stay_on_cpu_with_reasons():
    _, rep = _partition(_unsupported_graph())
    reasons = {(op.op, op.reason) for op in rep.cpu_ops}
    # 4 channels per group: not depthwise, not whole 8-channel words (issue 11 item 3)
    assert any(op == "relax.nn.conv2d" and r.startswith(
        "grouped convolution (groups=2) with 4 input / 4 output channels per group")
        for op, r in reasons), reasons
    assert ("relax.nn.conv2d", "dilated convolution (dilation=[2, 2]) is not supported") in reasons
    assert any(op == "relax.sigmoid" and "no accelerator pattern" in r for op, r in reasons)
    # the ONNX importer decomposes LRN into pool3d / power / divide: all stay on the CPU
    assert {"relax.nn.avg_pool3d", "relax.power", "relax.divide"} <= {op for op, _ in reasons}
    assert rep.patterns == {patterns.CONV: 2}
    assert 0 < rep.offload_ratio < 1


def test_conv_without_relu_and_without_bias_offloads():
    g = GraphBuilder((1, 4, 9, 9))
    g.conv(6, 3, bias=False, relu=False)
    _, rep = _partition(g.model())
    assert rep.patterns == {patterns.CONV: 1}


def test_bias_as_separate_add_and_auto_pad():
    g = GraphBuilder((1, 3, 15, 15))
    g.conv(8, 3, auto_pad="SAME_UPPER", bias_as_add=True)
    g.conv(8, 5, stride=2, pad=2)
    g.maxpool(3, 2, ceil=1)
    _, rep = _partition(g.model())
    assert rep.patterns == {patterns.CONV: 1, patterns.CONV_POOL: 1}
    assert rep.offload_ratio == 1.0


def test_kernel_limits():
    g = GraphBuilder((1, 3, 40, 40))
    g.conv(4, 7, stride=2, pad=3)   # SqueezeNet 1.0's conv1 shape class: offloads
    g.conv(4, 3, stride=3)          # stride 3: offloads (AlexNet-class strides up to 4)
    g.conv(4, 1, stride=5)          # stride 5: stays
    _, rep = _partition(g.model())
    assert rep.patterns == {patterns.CONV: 2}
    assert any("stride [5, 5] is outside 1..4" in op.reason for op in rep.cpu_ops)
    g = GraphBuilder((1, 3, 40, 40))
    g.conv(4, 11, stride=4, pad=2)  # AlexNet's conv1: offloads
    g.conv(4, 13, pad=6)            # 13x13: stays
    _, rep = _partition(g.model())
    assert rep.patterns == {patterns.CONV: 1}
    assert any("kernel 13x13 is outside 1x1..11x11" in op.reason for op in rep.cpu_ops)


def _reshape_then_conv_gemm_head(opset):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array([1, 1, 8, 8], np.int64), "shape"),
             numpy_helper.from_array(rng.standard_normal((4, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((4 * 36, 10)).astype(np.float32), "fc"),
             numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "fcb")]
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Conv", ["r", "w", "b"], ["c"], kernel_shape=[3, 3]),
             helper.make_node("Relu", ["c"], ["a"]),
             helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"])]
    if opset < 9:
        nodes[3] = helper.make_node("Reshape", ["a", "shape2"], ["f"])
        inits.append(numpy_helper.from_array(np.array([1, 144], np.int64), "shape2"))
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [7, 9, 11, 13, 17, 21])
def test_real_world_onnx_shapes_import_and_offload(opset):
    _, rep = _partition(_reshape_then_conv_gemm_head(opset))
    # the Gemm head offloads too, as a 1x1 conv (zynq_squeeze.dense)
    assert rep.patterns == {patterns.CONV: 1, patterns.DENSE: 1}
    cpu = {op.op for op in rep.cpu_ops}
    assert not cpu & {"relax.matmul", "relax.linear", "relax.add"}, cpu
    assert rep.offload_ratio == 1.0


def test_other_targets_untouched():
    import tvm
    from tvm import relax

    from zynq_squeeze.toolchain import context as build_context

    mod = from_onnx(_unsupported_graph())
    opts = build_context.BuildOptions()
    with build_context.using(opts):
        ex = tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"}))
    # the plugin's passes did not run: nothing partitioned, no accelerator code generated
    assert opts.partition_reports == [] and opts.results == []
    vm = relax.VirtualMachine(ex, tvm.cpu())
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    y = vm["main"](tvm.runtime.tensor(x)).numpy()
    assert np.isfinite(y).all()
    # ... while the zynq-squeeze target does partition the same module
    with build_context.using(opts), pytest.warns(UserWarning, match="synthetic"):
        tvm.compile(mod, target="zynq-squeeze")
    assert len(opts.partition_reports) == 1 and len(opts.results) == 1


def test_pipeline_wrap_is_idempotent():
    from tvm import relax

    from zynq_squeeze import target

    before = relax.pipeline.PIPELINE_MAP["default"]
    target.install(zynq_squeeze.offload_pass)
    assert relax.pipeline.PIPELINE_MAP["default"] is before


def test_malformed_onnx_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf \x00\xff\x12")
    with pytest.raises(ModelImportError, match="not a readable ONNX model"):
        from_onnx(bad)
    with pytest.raises(ModelImportError, match="no such ONNX file"):
        from_onnx(tmp_path / "missing.onnx")


def test_unsupported_onnx_op_gives_clear_error():
    g = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")], "t",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid("com.example", 1)])
    with pytest.raises(ModelImportError):
        from_onnx(m)


def test_bias_broadcasting_over_width_stays_on_cpu():
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "b"], ["y"])]  # b[6] broadcasts over W=6, not C
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], inits)
    _, rep = _partition(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    # the conv alone offloads; the width-wise add stays on the CPU
    assert rep.patterns == {patterns.CONV: 1}
    assert [op.op for op in rep.cpu_ops] == ["relax.add"]


# ------------------------------------------------------------------ average pools
# The engine divides an average pool's window sums by a constant multiplier (the
# requantization DSP); windows of different element counts (padding without
# count_include_pad, ceil-mode overhang) get one POOL + REQUANT per class of windows, so
# every average pool whose divisors fit the 25-bit input is fused.


def _conv_then(pool, hw=12, c=3, k=3):
    g = GraphBuilder((1, c, hw, hw))
    g.conv(8, k, pad=k // 2)  # conv + ReLU keeps the plane hw x hw
    pool(g)
    return g.model()


@pytest.mark.parametrize("pool", [
    lambda g: g.avgpool(2, 2),                          # 6 windows of 4
    lambda g: g.avgpool(3, 3, ceil=1),                  # ceil mode, no overhang on 12
    lambda g: g.avgpool(3, 2, pads=[1, 1, 1, 1], count_include_pad=1),  # pads count
    lambda g: g.avgpool(3, 2, ceil=1),                  # last window overhangs: 6 of 9
    lambda g: g.avgpool(3, 2, pads=[1, 1, 1, 1]),       # border windows hold 6 or 4
    # ceil mode on 12: a 7th window [11, 14) covers 1 input + 1 pad + 1 overhang
    lambda g: g.avgpool(3, 2, pads=[1, 1, 1, 1], count_include_pad=1, ceil=1),
    # ceil mode would start a window in the padding: ONNX drops it, 6 windows of 4 remain
    lambda g: g.avgpool(2, 2, pads=[0, 0, 1, 1], count_include_pad=1, ceil=1),
    lambda g: g.op("GlobalAveragePool"),
    lambda g: g.op("ReduceMean", axes=[2, 3], keepdims=1),
    lambda g: g.maxpool(3, 2, ceil=1, pads=[1, 1, 1, 1]),  # max pools: any window
], ids=["2x2s2", "3x3s3-ceil", "3x3s2-pad-cip", "3x3s2-ceil-overhang", "3x3s2-pad",
        "3x3s2-pad-cip-ceil-overhang", "2x2s2-pad-cip-ceil", "global", "mean", "max"])
def test_which_average_pools_offload(pool):
    _, rep = _partition(_conv_then(pool))
    assert rep.patterns == {patterns.CONV_POOL: 1}, rep.cpu_ops
    assert rep.cpu_ops == []


def test_window_counts_decide_the_divisor():
    from zynq_squeeze.partitioning.pool_spec import PoolSpec, avg_pool_reason
    from zynq_squeeze.quantize.reference import avg_constants, avg_divisors
    from zynq_squeeze.quantize.requant import pool_multiplier

    # 3x3 stride 2 on 12: ceil mode adds a window starting at 10 (2 elements + overhang)
    p = PoolSpec("avg", (3, 3), (2, 2), ceil_mode=True)
    assert p.window_counts(12, 0) == [3, 3, 3, 3, 3, 2]
    assert p.avg_divisor(12, 12) is None and avg_pool_reason(p, 12, 12) is None
    assert set(avg_constants(p, 12, 12)) == {4, 6, 9}  # a constant per class of windows
    assert avg_constants(p, 12, 12)[6] == pool_multiplier(6)
    assert p.avg_divisor(13, 13) == 9  # on 13 the last window fits: one divisor
    # padding counts with count_include_pad ...
    p = PoolSpec("avg", (3, 3), (2, 2), (1, 1, 1, 1), count_include_pad=True)
    assert p.window_counts(12, 1) == [3] * 6 and p.avg_divisor(12, 12) == 9
    # ... and not without it, except where every window touches the padding alike
    p = PoolSpec("avg", (3, 3), (1, 1), (1, 1, 1, 1))
    assert p.window_counts(5, 0) == [2, 3, 3, 3, 2] and p.avg_divisor(5, 5) is None
    assert avg_divisors(p, 5, 5) == ([2, 3, 3, 3, 2], [2, 3, 3, 3, 2])
    # a pool that rescales: s_in / (s_out d) per divisor
    m, s = avg_constants(p, 5, 5, scales=(1.0, 0.5))[6]
    assert abs(m * 2.0 ** -s - 1 / 3) < 2 ** -15
    assert p.window_counts(1, 0) == [1] and p.avg_divisor(1, 1) == 1
    assert PoolSpec("avg", global_pool=True).avg_divisor(13, 15) == 195
    with pytest.raises(ValueError):
        PoolSpec("max", (2, 2), (2, 2)).avg_divisor(4, 4)


def test_global_average_pool_too_large_for_the_multiplier_stays_on_cpu():
    # 363 x 363 = 131769 elements: |sum| <= 128 * 131769 does not fit 25 bits
    _, rep = _partition(_conv_then(lambda g: g.op("GlobalAveragePool"), hw=363, c=1, k=1))
    assert rep.patterns == {patterns.CONV: 1}
    assert [op.op for op in rep.cpu_ops] == ["relax.mean"]
    assert rep.cpu_ops[0].reason == (
        "average pool over 131769 elements: the window sum exceeds the 25-bit "
        "requantization input (at most 131071 elements)")
    _, rep = _partition(_conv_then(lambda g: g.op("GlobalAveragePool"), hw=362, c=1, k=1))
    assert rep.patterns == {patterns.CONV_POOL: 1}


def test_offloaded_average_pools_run_bit_exact(tmp_path):
    """conv + avg pool with counted padding and ceil mode (no overhang), then conv + global
    average: the simulation equals the golden model and stays close to float."""
    import tvm
    from tvm import relax

    from zynq_squeeze.codegen import golden

    g = GraphBuilder((1, 3, 13, 13), seed=3)
    g.conv(8, 3, pad=1)
    g.avgpool(3, 2, pads=[1, 1, 1, 1], count_include_pad=1, ceil=1)  # on 13: 7 windows of 9
    g.conv(6, 3, pad=1)
    g.op("GlobalAveragePool")
    mod = from_onnx(g.model())
    rng = np.random.default_rng(0)
    calib = [rng.standard_normal((1, 3, 13, 13)).astype(np.float32) for _ in range(4)]
    res = zynq_squeeze.build(mod, calibration=calib, out_dir=tmp_path)
    assert res.partition_report.patterns == {patterns.CONV_POOL: 2}
    lf = res.codegen[0].functions[0]
    fvm = relax.VirtualMachine(tvm.compile(mod, target=tvm.target.Target({"kind": "llvm"})),
                               tvm.cpu())
    for _ in range(3):
        x = rng.standard_normal((1, 3, 13, 13)).astype(np.float32)
        y = res.vm()["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        f = fvm["main"](tvm.runtime.tensor(x)).numpy()
        cos = float(y.ravel() @ f.ravel() / (np.linalg.norm(y) * np.linalg.norm(f)))
        assert cos > 0.99, cos


# ------------------------------------------------------------------ shared composites
# FuseOpsByPattern gives structurally equal composites (the same weights and shapes) one
# GlobalVar; every call site sees its own activations and needs its own ranges.
def _tie(model, groups):
    """``model`` with the k-th Conv of every group of Conv indices reading the first
    group's weights and bias (a tied / repeated block)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    for group in groups[1:]:
        for src, dst in zip(groups[0], group):
            for i in range(1, len(convs[dst].input)):
                convs[dst].input[i] = convs[src].input[i]
    used = {i for n in m.graph.node for i in n.input}
    keep = [t for t in m.graph.initializer if t.name in used]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    return m


def _scaled(model, factor):
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        a = numpy_helper.to_array(t) * np.float32(factor)
        t.CopyFrom(numpy_helper.from_array(a, t.name))
    return m


def _site_ranges(pmod):
    """(site, ranges) of every composite inside the offloaded functions, in call order."""
    import json

    from tvm import relax

    from zynq_squeeze.partitioning import partitioner

    out = []
    for func in pmod.functions.values():
        if func.attrs is None or func.attrs.get("Codegen") != partitioner.CODEGEN:
            continue
        for block in func.body.blocks:
            for b in block.bindings:
                if isinstance(b.value, relax.Function) and "Composite" in b.value.attrs:
                    a = b.value.attrs
                    out.append((int(a[partitioner.COMPOSITE_SITE_ATTR]),
                                json.loads(str(a[partitioner.COMPOSITE_CALIB_ATTR]))))
    return sorted(out, key=lambda s: s[0])


def _build_vs_onnxruntime(model, shape, tmp_path, n=4, n_calib=16):
    """Calibrate, partition (for inspection) and build; every output bit-exact with the
    golden model. Returns the partitioned module, the build and the cosines with
    onnxruntime (the whole model offloads: the function's output is the model's)."""
    import onnxruntime as ort
    import tvm

    from zynq_squeeze.codegen import golden

    rng = np.random.default_rng(1)
    calib = [rng.standard_normal(shape).astype(np.float32) for _ in range(n_calib)]
    cal = zynq_squeeze.calibrate(from_onnx(model), calib, progress=False)
    pmod, _ = zynq_squeeze.partition(cal)
    res = zynq_squeeze.build(cal, out_dir=tmp_path)
    assert res.partition_report.cpu_ops == [] and len(res.codegen[0].functions) == 1
    lf = res.codegen[0].functions[0]
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    vm = res.vm()
    cos = []
    for _ in range(n):
        x = rng.standard_normal(shape).astype(np.float32)
        y = vm["main"](tvm.runtime.tensor(x)).numpy()
        np.testing.assert_array_equal(y, golden.run_function(lf, [x])[0].reshape(y.shape))
        r = sess.run(None, {"x": x})[0]
        cos.append(float(y.ravel() @ r.ravel() / (np.linalg.norm(y) * np.linalg.norm(r))))
    return pmod, res, cos


def _composite_names_before_split(model):
    """The GlobalVars FuseOpsByPattern itself gives the composite calls (no split)."""
    from tvm import relax

    from zynq_squeeze.partitioning import partitioner

    fused = relax.transform.FuseOpsByPattern(patterns.get_patterns(), bind_constants=True,
                                             annotate_codegen=False)(
        partitioner.fold(from_onnx(model)))
    return [call.op.name_hint for _, call, _ in partitioner.composite_calls(fused)]


def _check_sites(pmod, n):
    """Every call site carries its own ranges, in call order, from the calibration."""
    from zynq_squeeze.partitioning import partitioner

    sites = _site_ranges(pmod)
    assert [k for k, _ in sites] == list(range(n))
    # the calibration records, in the same order, are what the sites carry
    records = partitioner.read_calibration(pmod)
    if records is not None:
        assert [r["ranges"] for r in records["composites"]] == [r for _, r in sites]
    return [r for _, r in sites]


@pytest.mark.parametrize("factor", [1.0, 3.0])
def test_tied_conv_applied_twice_gets_two_calibrations(factor, tmp_path):
    g = GraphBuilder((1, 8, 12, 12), seed=0)
    g.conv(8, 3, pad=1)
    g.conv(8, 3, pad=1)
    model = _scaled(_tie(g.model(), [[0], [1]]), factor)
    names = _composite_names_before_split(model)
    assert len(names) == 2 and len(set(names)) == 1  # FuseOpsByPattern shares the function
    pmod, res, cos = _build_vs_onnxruntime(model, (1, 8, 12, 12), tmp_path)
    assert res.partition_report.patterns == {patterns.CONV: 2}
    r0, r1 = _check_sites(pmod, 2)
    assert r0["in"] != r1["in"] and r0["out"] != r1["out"]
    # each layer's output scale is its own site's range (not the last site's)
    lf = res.codegen[0].functions[0]
    scales = [lf.tensors[dst].scale for _, _, dst in lf.layers]
    assert scales == pytest.approx([r0["out"] / 127, r1["out"] / 127])
    assert min(cos) >= 0.999, cos


def test_repeated_fire_block_gets_its_own_calibration_per_call(tmp_path):
    # (one shared calibration: cos 0.9958 with onnxruntime; per call: 0.9993, as untied)
    g = GraphBuilder((1, 16, 9, 9), seed=1)
    g.fire(8, 8, 8)
    g.fire(8, 8, 8)
    model = _tie(g.model(), [[0, 1, 2], [3, 4, 5]])
    names = _composite_names_before_split(model)
    assert len(names) == 2 and len(set(names)) == 1
    pmod, res, cos = _build_vs_onnxruntime(model, (1, 16, 9, 9), tmp_path, n=6)
    assert res.partition_report.patterns == {patterns.FIRE: 2}
    r0, r1 = _check_sites(pmod, 2)
    assert r0["in"] != r1["in"] and r0["mid"] != r1["mid"] and r0["out"] != r1["out"]
    assert min(cos) >= 0.999, cos


def test_constant_weight_deep_chain_keeps_every_layer_alive(tmp_path):
    """Eight identical constant-weight convs: the activations grow 3.6x per layer. With one
    shared calibration every layer took the last layer's output scale, the first layers'
    multipliers fell below 2**-25 and the output became a constant (0)."""
    import onnx

    g = GraphBuilder((1, 8, 16, 16), seed=0)
    for _ in range(8):
        g.conv(8, 3, pad=1)
    model = g.model()
    for t in model.graph.initializer:
        a = numpy_helper.to_array(t)
        t.CopyFrom(numpy_helper.from_array(np.full_like(a, 0.05 if a.ndim == 4 else 0.01),
                                           t.name))
    onnx.checker.check_model(model)
    assert len(set(_composite_names_before_split(model))) == 1
    pmod, _, cos = _build_vs_onnxruntime(model, (1, 8, 16, 16), tmp_path)
    outs = [r["out"] for r in _check_sites(pmod, 8)]
    assert all(b > 2 * a for a, b in itertools.pairwise(outs))  # each site its own, growing
    assert min(cos) >= 0.999, cos


def test_attach_refuses_a_shared_composite():
    """Ranges attached to one function called twice would be the last site's for both."""
    from tvm import relax

    from zynq_squeeze.partitioning import partitioner

    g = GraphBuilder((1, 8, 12, 12), seed=0)
    g.conv(8, 3, pad=1)
    g.conv(8, 3, pad=1)
    mod = partitioner.fold(from_onnx(_tie(g.model(), [[0], [1]])))
    shared = relax.transform.FuseOpsByPattern(patterns.get_patterns(), bind_constants=True,
                                              annotate_codegen=False)(mod)
    rec = {"signature": "zynq_squeeze.conv[1, 8, 12, 12]",
           "ranges": {"in": 1.0, "mid": 0.0, "out": 1.0}}
    with pytest.raises(partitioner.PartitionError, match="share one composite"):
        partitioner._attach_calibration(shared, {"composites": [rec, rec]})
    split = partitioner.split_call_sites(shared)
    assert len({c.op.name_hint for _, c, _ in partitioner.composite_calls(split)}) == 2
