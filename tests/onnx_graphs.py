"""Small ONNX graphs for tests: chains of conv/fire/pool with seeded weights."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class GraphBuilder:
    """Append ONNX nodes with seeded weights; ``model()`` returns the ModelProto."""

    def __init__(self, shape, seed=0, opset=13, name="x"):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.opset = opset
        self.input = helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))
        self.cur = name
        self.c = shape[1]
        self.n = 0

    def _name(self, p):
        self.n += 1
        return f"{p}{self.n}"

    def conv(self, oc, k, stride=1, pad=0, bias=True, relu=True, src=None, group=1,
             dilation=1, auto_pad=None, bias_as_add=False):
        src = src or self.cur
        ic = self._channels.get(src, self.c) if hasattr(self, "_channels") else self.c
        w = (self.rng.standard_normal((oc, ic // group, k, k)) * np.sqrt(2 / (ic * k * k / group))).astype(np.float32)
        wn = self._name("w")
        self.inits.append(numpy_helper.from_array(w, wn))
        ins = [src, wn]
        b = (self.rng.standard_normal(oc) * 0.1).astype(np.float32)
        if bias and not bias_as_add:
            bn = self._name("b")
            self.inits.append(numpy_helper.from_array(b, bn))
            ins.append(bn)
        out = self._name("conv")
        attrs = dict(kernel_shape=[k, k], strides=[stride, stride], group=group,
                     dilations=[dilation, dilation])
        if auto_pad:
            attrs["auto_pad"] = auto_pad
        else:
            attrs["pads"] = [pad] * 4
        self.nodes.append(helper.make_node("Conv", ins, [out], **attrs))
        if bias and bias_as_add:
            bn = self._name("b")
            self.inits.append(numpy_helper.from_array(b.reshape(1, oc, 1, 1), bn))
            o2 = self._name("add")
            self.nodes.append(helper.make_node("Add", [out, bn], [o2]))
            out = o2
        if relu:
            o2 = self._name("relu")
            self.nodes.append(helper.make_node("Relu", [out], [o2]))
            out = o2
        self.cur, self.c = out, oc
        return out

    def fire(self, s, e1, e3):
        # expand1 and expand3 both read the squeeze output
        sq = self.conv(s, 1)
        a = self.conv(e1, 1, src=sq)
        self.cur, self.c = sq, s
        b = self.conv(e3, 3, pad=1, src=sq)
        out = self._name("concat")
        self.nodes.append(helper.make_node("Concat", [a, b], [out], axis=1))
        self.cur, self.c = out, e1 + e3
        return out

    def concat(self, srcs, channels):
        """Concat ``srcs`` (tensor names with ``channels`` each) on the channel axis."""
        out = self._name("concat")
        self.nodes.append(helper.make_node("Concat", list(srcs), [out], axis=1))
        self.cur, self.c = out, sum(channels)
        return out

    def inception(self, c1, c3r, c3, c5r, c5, cp):
        """GoogLeNet's inception block: 1x1 || 1x1 -> 3x3 || 1x1 -> 3x3 (torchvision's
        "5x5" branch) || maxpool 3x3 s1 pad 1 ceil -> 1x1, concatenated on channels."""
        x, c = self.cur, self.c
        b1 = self.conv(c1, 1, src=x)
        self.c = c
        self.conv(c3r, 1, src=x)
        b2 = self.conv(c3, 3, pad=1)
        self.c = c
        self.conv(c5r, 1, src=x)
        b3 = self.conv(c5, 3, pad=1)
        self.cur, self.c = x, c
        self.maxpool(3, 1, ceil=1, pads=[1, 1, 1, 1])
        b4 = self.conv(cp, 1)
        return self.concat([b1, b2, b3, b4], [c1, c3, c5, cp])

    def op(self, op_type, **attrs):
        out = self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, [self.cur], [out], **attrs))
        self.cur = out
        return out

    def gemm(self, w, b):
        """A classifier head: Gemm(x, w^T, b) with ``w`` [out, in] and ``b`` [out]."""
        wn, bn, out = self._name("w"), self._name("b"), self._name("gemm")
        self.inits += [numpy_helper.from_array(np.ascontiguousarray(w, np.float32), wn),
                       numpy_helper.from_array(np.asarray(b, np.float32), bn)]
        self.nodes.append(helper.make_node("Gemm", [self.cur, wn, bn], [out], transB=1))
        self.cur, self.c = out, int(w.shape[0])
        return out

    def maxpool(self, k=3, s=2, ceil=1, pads=None):
        kw = dict(kernel_shape=[k, k], strides=[s, s], ceil_mode=ceil)
        if pads:
            kw["pads"] = pads
        return self.op("MaxPool", **kw)

    def avgpool(self, k=3, s=2, ceil=0, pads=None, count_include_pad=0):
        kw = dict(kernel_shape=[k, k], strides=[s, s], ceil_mode=ceil,
                  count_include_pad=count_include_pad)
        if pads:
            kw["pads"] = pads
        return self.op("AveragePool", **kw)

    def batchnorm(self, src=None, gamma=None):
        """BatchNormalization (inference) with seeded statistics on ``src`` (``gamma``:
        the scale, one value per channel, instead of seeded ones)."""
        src = src or self.cur
        c = self.c
        names = []
        gamma = 1 + 0.2 * self.rng.standard_normal(c) if gamma is None else np.asarray(gamma)
        for v in (gamma, 0.1 * self.rng.standard_normal(c),
                  0.1 * self.rng.standard_normal(c), 0.5 + self.rng.random(c)):
            names.append(self._name("bn"))
            self.inits.append(numpy_helper.from_array(v.astype(np.float32), names[-1]))
        out = self._name("bn_out")
        self.nodes.append(helper.make_node("BatchNormalization", [src, *names], [out],
                                           epsilon=1e-5))
        self.cur = out
        return out

    def add(self, a, b, relu=True, clip6=False):
        """a + b (a residual add), then ReLU, Clip(0, 6) or nothing."""
        out = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [out]))
        self.cur = out
        if clip6:
            lo, hi = self._name("lo"), self._name("hi")
            self.inits += [numpy_helper.from_array(np.array(0, np.float32), lo),
                           numpy_helper.from_array(np.array(6, np.float32), hi)]
            o2 = self._name("clip")
            self.nodes.append(helper.make_node("Clip", [out, lo, hi], [o2]))
            self.cur = o2
        elif relu:
            self.op("Relu")
        return self.cur

    def basic_block(self, oc, stride=1):
        """torchvision's ResNet basic block: conv3x3(s)-BN-ReLU-conv3x3-BN + bypass, ReLU;
        the bypass is the input, or conv1x1(s)-BN when the shape changes."""
        x, c = self.cur, self.c
        self.conv(oc, 3, stride=stride, pad=1, bias=False, relu=False)
        self.batchnorm()
        self.op("Relu")
        self.conv(oc, 3, pad=1, bias=False, relu=False)
        y = self.batchnorm()
        if stride != 1 or c != oc:
            self.cur, self.c = x, c
            self.conv(oc, 1, stride=stride, bias=False, relu=False)
            x = self.batchnorm()
        self.c = oc
        return self.add(y, x)

    def model(self) -> onnx.ModelProto:
        out = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, None)
        g = helper.make_graph(self.nodes, "test", [self.input], [out], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m = onnx.shape_inference.infer_shapes(m)
        onnx.checker.check_model(m)
        return m


def small_fire_net(shape=(1, 3, 19, 19), softmax: bool = False) -> onnx.ModelProto:
    """conv 3x3/2 -> maxpool -> fire -> conv 1x1 -> global average pool -> Flatten
    (-> Softmax), seed 2: the small model of the CLI and tuning tests."""
    g = GraphBuilder(shape, seed=2)
    g.conv(12, 3, stride=2)
    g.maxpool(3, 2, ceil=1)
    g.fire(6, 8, 8)
    g.conv(10, 1)
    g.op("GlobalAveragePool")
    g.op("Flatten")
    if softmax:
        g.op("Softmax")
    return g.model()


def resnet_net(shape=(1, 3, 16, 16), seed=3, classes=10) -> onnx.ModelProto:
    """A small ResNet: conv-BN-ReLU-maxpool stem, an identity block, a downsampling block,
    global average pool, Flatten, Gemm (torchvision's resnet18 structure, fewer blocks)."""
    g = GraphBuilder(shape, seed=seed)
    g.conv(16, 3, pad=1, bias=False, relu=False)
    g.batchnorm()
    g.op("Relu")
    g.maxpool(3, 2, ceil=0, pads=[1, 1, 1, 1])
    g.basic_block(16)
    g.basic_block(32, stride=2)
    g.op("GlobalAveragePool")
    g.op("Flatten")
    k = g.c
    g.gemm((g.rng.standard_normal((classes, k)) * np.sqrt(2 / k)).astype(np.float32),
           np.zeros(classes, np.float32))
    return g.model()


def mobilenet_v2(shape=(1, 3, 224, 224), width: float = 1.0, classes: int = 1000,
                 seed: int = 0, depthwise: bool = True) -> onnx.ModelProto:
    """torchvision's MobileNetV2 as its ONNX export looks (Conv, BatchNormalization,
    Clip(0, 6), residual Add, GlobalAveragePool, Flatten, Gemm) with seeded weights;
    ``depthwise=False``: dense 3x3 convolutions in place of the depthwise ones."""

    def const(value, prefix):
        name = g._name(prefix)
        g.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def bn_relu6(relu6=True):
        c, r = g.c, g.rng
        ins = [const(r.uniform(0.5, 1.5, c), "gamma"), const(r.standard_normal(c) * 0.1, "beta"),
               const(r.standard_normal(c) * 0.1, "mean"), const(r.uniform(0.5, 2.0, c), "var")]
        out = g._name("bn")
        g.nodes.append(helper.make_node("BatchNormalization", [g.cur, *ins], [out]))
        g.cur = out
        if relu6:
            out = g._name("clip")
            g.nodes.append(helper.make_node("Clip", [g.cur, const(0.0, "lo"), const(6.0, "hi")],
                                            [out]))
            g.cur = out

    def ch(c):  # torchvision's _make_divisible(c * width, 8)
        v = max(8, int(c * width + 4) // 8 * 8)
        return v + 8 if v < 0.9 * c * width else v

    g = GraphBuilder(shape, seed=seed, opset=13)
    g.conv(ch(32), 3, stride=2, pad=1, bias=False, relu=False)
    bn_relu6()
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            src, cin, stride = g.cur, g.c, s if i == 0 else 1
            if t != 1:
                g.conv(cin * t, 1, bias=False, relu=False)
                bn_relu6()
            g.conv(g.c, 3, stride=stride, pad=1, bias=False, relu=False,
                   group=g.c if depthwise else 1)
            bn_relu6()
            g.conv(ch(c), 1, bias=False, relu=False)
            bn_relu6(relu6=False)
            if stride == 1 and cin == g.c:
                out = g._name("add")
                g.nodes.append(helper.make_node("Add", [src, g.cur], [out]))
                g.cur = out
    g.conv(ch(1280) if width > 1.0 else 1280, 1, bias=False, relu=False)
    bn_relu6()
    g.op("GlobalAveragePool")
    g.op("Flatten")
    w = (g.rng.standard_normal((classes, g.c)) * 0.01).astype(np.float32)
    ins = [g.cur, const(w, "fc_w"), const(np.zeros(classes), "fc_b")]
    out = g._name("gemm")
    g.nodes.append(helper.make_node("Gemm", ins, [out], transB=1))
    g.cur = out
    return g.model()


def inception_net(shape=(1, 3, 32, 32), seed=4) -> onnx.ModelProto:
    """A GoogLeNet in miniature: conv 3x3/2 -> maxpool 3x3/2 ceil -> two inception blocks
    -> maxpool 3x3/2 ceil (after a concat: standalone) -> inception -> global average pool
    -> Flatten -> Gemm."""
    g = GraphBuilder(shape, seed=seed)
    g.conv(16, 3, stride=2, pad=1)
    g.maxpool(3, 2, ceil=1)
    g.inception(8, 8, 16, 8, 8, 8)
    g.inception(16, 8, 16, 8, 16, 16)
    g.maxpool(3, 2, ceil=1)
    g.inception(16, 16, 24, 8, 16, 8)
    g.op("GlobalAveragePool")
    g.op("Flatten")
    w = (g.rng.standard_normal((g.c, 10)) * 0.2).astype(np.float32)
    b = (g.rng.standard_normal(10) * 0.1).astype(np.float32)
    g.gemm(w.T, b)
    return g.model()


def densenet_net(shape=(1, 3, 32, 32), seed=6, growth=8, blocks=(2, 2), classes=10,
                 caffe2_scale=False) -> onnx.ModelProto:
    """A DenseNet in miniature, torchvision's / Caffe2's densenet121 structure: conv 3x3/2
    (+ReLU) -> maxpool 3x3/2 -> dense blocks of pre-activation layers (BN-ReLU-conv 1x1 to
    4 x ``growth`` -BN-ReLU-conv 3x3 to ``growth``; each layer reads the concat of the
    block's input and every earlier layer's output) with a transition between blocks
    (BN-ReLU-conv 1x1 to half the channels -avgpool 2x2) -> BN-ReLU -> global average pool
    -> Flatten -> Gemm. ``caffe2_scale``: every BN is followed by a per-channel Mul and Add
    (the light zoo's export). The BN after each 1x1 conv folds into it; the others read a
    concat (or a pool) and no conv can absorb them."""
    g = GraphBuilder(shape, seed=seed)

    def bn_relu():
        g.batchnorm()
        if caffe2_scale:
            c = g.c
            for op, v in (("Mul", 1 + 0.1 * g.rng.standard_normal((c, 1, 1))),
                          ("Add", 0.1 * g.rng.standard_normal((c, 1, 1)))):
                name = g._name(op.lower() + "_c")
                g.inits.append(numpy_helper.from_array(v.astype(np.float32), name))
                out = g._name(op.lower())
                g.nodes.append(helper.make_node(op, [g.cur, name], [out]))
                g.cur = out
        g.op("Relu")

    g.conv(2 * growth, 3, stride=2, pad=1)
    g.maxpool(3, 2, ceil=0, pads=[1, 1, 1, 1])
    for b, n in enumerate(blocks):
        for _ in range(n):
            x, c = g.cur, g.c
            bn_relu()
            g.conv(4 * growth, 1, bias=False, relu=False)
            bn_relu()
            f = g.conv(growth, 3, pad=1, bias=False, relu=False)
            g.concat([x, f], [c, growth])
        if b + 1 < len(blocks):
            bn_relu()
            g.conv(g.c // 2, 1, bias=False, relu=False)
            g.avgpool(2, 2)
    bn_relu()
    g.op("GlobalAveragePool")
    g.op("Flatten")
    w = (g.rng.standard_normal((classes, g.c)) * np.sqrt(2 / g.c)).astype(np.float32)
    g.gemm(w, (0.1 * g.rng.standard_normal(classes)).astype(np.float32))
    return g.model()


def ort_qdq(model: onnx.ModelProto, symmetric: bool = True, per_channel: bool = True,
            n: int = 4, seed: int = 0, scale: float = 1.0,
            uint8_activations: bool = False) -> onnx.ModelProto:
    """``model`` quantized by onnxruntime's own tool (``quantize_static``, QDQ format, int8
    activations (uint8 with ``uint8_activations``) and int8 weights; ``symmetric``:
    ActivationSymmetric) calibrated on ``n`` inputs of N(0, scale**2) from numpy seed
    ``seed`` (one input, static shape)."""
    import tempfile
    from pathlib import Path

    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_static)

    inp = model.graph.input[0]
    shape = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    samples = [{inp.name: (rng.standard_normal(shape) * scale).astype(np.float32)}
               for _ in range(n)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "float.onnx", Path(d) / "qdq.onnx"
        onnx.save(model, str(src))
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel,
                        activation_type=QuantType.QUInt8 if uint8_activations else QuantType.QInt8,
                        weight_type=QuantType.QInt8,
                        extra_options={"ActivationSymmetric": symmetric})
        return onnx.load(str(dst))
