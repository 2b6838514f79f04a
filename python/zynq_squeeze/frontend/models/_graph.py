"""A tiny ONNX graph builder shared by the reference models (numpy + onnx only).

Node names and tensor names are chosen by the caller so that models read like their
Caffe prototxt (``conv1``, ``fire2/squeeze1x1``, ...). Weights become initializers
named ``<layer>/weight`` and ``<layer>/bias``.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_OPSET = 10  # MaxPool ceil_mode appears in opset 10


class GraphBuilder:
    def __init__(self, name: str, opset: int = 13):
        if opset < MIN_OPSET:
            raise ValueError(f"opset {opset} unsupported (MaxPool ceil_mode needs >= {MIN_OPSET})")
        self.name = name
        self.opset = int(opset)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []

    # -- graph interface ---------------------------------------------------------------
    def add_input(self, name: str, shape) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def add_output(self, name: str, shape) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))

    def _init(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    # -- layers ------------------------------------------------------------------------
    def conv(self, name: str, x: str, weight: np.ndarray, bias: np.ndarray, *,
             stride: int = 1, pad: int = 0, out: str | None = None) -> str:
        """Conv (groups 1, dilation 1) with bias; ``weight`` is [O, I, KH, KW]."""
        weight = np.asarray(weight, np.float32)
        kh, kw = weight.shape[2:]
        w = self._init(f"{name}/weight", weight)
        b = self._init(f"{name}/bias", np.asarray(bias, np.float32))
        out = out or name
        self.nodes.append(helper.make_node(
            "Conv", [x, w, b], [out], name=name,
            kernel_shape=[kh, kw], strides=[stride, stride], pads=[pad] * 4,
            dilations=[1, 1], group=1))
        return out

    def relu(self, name: str, x: str, out: str | None = None) -> str:
        out = out or name
        self.nodes.append(helper.make_node("Relu", [x], [out], name=name))
        return out

    def max_pool(self, name: str, x: str, kernel: int, stride: int, *, ceil_mode: bool = True,
                 out: str | None = None) -> str:
        out = out or name
        self.nodes.append(helper.make_node(
            "MaxPool", [x], [out], name=name, kernel_shape=[kernel, kernel],
            strides=[stride, stride], pads=[0, 0, 0, 0], ceil_mode=int(ceil_mode)))
        return out

    def concat(self, name: str, xs: list[str], out: str | None = None) -> str:
        out = out or name
        self.nodes.append(helper.make_node("Concat", list(xs), [out], name=name, axis=1))
        return out

    def global_avg_pool(self, name: str, x: str, out: str | None = None) -> str:
        out = out or name
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [out], name=name))
        return out

    def flatten(self, name: str, x: str, out: str | None = None) -> str:
        out = out or name
        self.nodes.append(helper.make_node("Flatten", [x], [out], name=name, axis=1))
        return out

    def softmax(self, name: str, x: str, out: str | None = None) -> str:
        out = out or name
        self.nodes.append(helper.make_node("Softmax", [x], [out], name=name, axis=1))
        return out

    # -- result ------------------------------------------------------------------------
    def model(self, doc: str = "") -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs,
                                  initializer=self.initializers)
        opset = helper.make_opsetid("", self.opset)
        model = helper.make_model(
            graph, opset_imports=[opset], producer_name="zynq_squeeze",
            ir_version=helper.find_min_ir_version_for([opset]), doc_string=doc)
        onnx.checker.check_model(model)
        return model
