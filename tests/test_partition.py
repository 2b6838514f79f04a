"""Partitioning: what offloads, what stays on the CPU and why."""
from __future__ import annotations

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
    assert ("relax.nn.conv2d", "grouped convolution (groups=2) is not supported") in reasons
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
    g = GraphBuilder((1, 3, 20, 20))
    g.conv(4, 7, stride=2, pad=3)   # SqueezeNet 1.0's conv1 shape class: offloads
    g.conv(4, 3, stride=3)          # stride 3: stays
    _, rep = _partition(g.model())
    assert rep.patterns == {patterns.CONV: 1}
    assert any("stride [3, 3] is not 1 or 2" in op.reason for op in rep.cpu_ops)


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
    assert rep.patterns == {patterns.CONV: 1}
    cpu = {op.op for op in rep.cpu_ops}
    assert cpu & {"relax.matmul", "relax.linear", "relax.add"}, cpu


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
